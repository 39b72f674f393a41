// The one `whoami` of the specs. A namespace that `reporting` wires answers the `whoami` ack with
// what its server-side socket has: the namespace, the user and the session ID, plus what a spec
// adds with `more`. `whoami` waits (bounded) for the client socket to connect, then asks.
import assert from 'node:assert/strict';
import type { Namespace, Socket as ServerSocket } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import { connected } from './bounded.js';
import { request } from './client.js';

/** What a `whoami` ack answers, at least. */
export interface Who {
  /** The server-side socket's namespace (for a child of a dynamic namespace, the child's). */
  nsp: string;
  /** The username of `socket.request.user`, or null. */
  user: string | null;
  /** `socket.request.sessionID`, or null. */
  sessionID: string | null;
}

export interface ReportingOptions {
  /** Gets the namespace name of every connection the namespace lets in. */
  seen?: string[];
  /** More fields for the answer, read from the server-side socket when asked. */
  more?: (socket: ServerSocket) => object;
}

/** Answers `whoami` acks with the socket's {@link Who} (and `more`). Works for parents too. */
export function reporting(nsp: Namespace, { seen, more }: ReportingOptions = {}): Namespace {
  nsp.on('connection', (socket) => {
    seen?.push(socket.nsp.name);
    socket.on('whoami', (cb: (who: Who) => void) => {
      const { sessionID } = socket.request as { sessionID?: unknown };
      cb({
        nsp: socket.nsp.name,
        user: socket.request.user?.username ?? null,
        sessionID: typeof sessionID === 'string' ? sessionID : null,
        ...more?.(socket),
      });
    });
  });
  return nsp;
}

/**
 * Waits (bounded) for the socket to connect, then asks it `whoami`. `T` is the answer's shape
 * when the namespace adds fields; `what` names the socket in a failure.
 */
export async function whoami<T extends Who = Who>(socket: ClientSocket, what?: string): Promise<T> {
  await connected(socket, what);
  return request<T>(socket, 'whoami');
}

/** Asserts the socket connects and that `whoami` answers `user`. */
export async function expectUser(
  socket: ClientSocket,
  user: string | null,
  what: string,
): Promise<void> {
  assert.equal((await whoami(socket, what)).user, user, what);
}
