// A `whoami` ack that answers with the username of the server-side socket, and its client side.
import assert from 'node:assert/strict';
import type { Namespace } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import { connected } from './bounded.js';
import { request } from './client.js';

/** Answers `whoami` with the socket's user, and counts the connections the namespace let in. */
export function reporting(nsp: Namespace, seen: string[] = []): Namespace {
  nsp.on('connection', (socket) => {
    seen.push(socket.nsp.name);
    socket.on('whoami', (cb: (user: string | null) => void) => {
      cb(socket.request.user?.username ?? null);
    });
  });
  return nsp;
}

/** Waits (bounded) for the socket to connect, then asks it `whoami`. */
export async function whoami(socket: ClientSocket): Promise<string | null> {
  await connected(socket);
  return request<string | null>(socket, 'whoami');
}

/** Asserts the socket connects and that `whoami` answers `user`. */
export async function expectUser(
  socket: ClientSocket,
  user: string | null,
  what: string,
): Promise<void> {
  await connected(socket).catch((error: unknown) => {
    throw new Error(`${what}: expected a connection`, { cause: error });
  });
  assert.equal(await request(socket, 'whoami'), user, what);
}
