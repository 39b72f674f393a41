// A handshake that has ended, connected or not: did the client leave, the `handshake` diagnostics
// channel, and a Socket.IO 2 client told to stop asking again.
import type { Socket } from 'socket.io';
import { SessionAuthError } from '../core/errors.js';
import { debug } from '../diagnostics/debug.js';
import { connectionDigest, publish } from '../diagnostics/diagnostics.js';
import { whyOf } from '../core/state-fields.js';
import { connectionIdOf, sendDisconnectPacket } from '../socket-io/socket-io-internals.js';

/**
 * Socket.IO discards, unanswered, a socket whose connection is no longer open when its middleware
 * finishes: the client left (closed its manager or transport, or called socket.disconnect() on the
 * connection's only socket). The error a waiting step gave up with is nobody's refusal.
 */
export function clientLeft(socket: Socket): boolean {
  const left = !socket.connected && socket.conn.readyState !== 'open';
  if (left) debug('nsp %s socket %s: the client left mid-handshake', socket.nsp.name, socket.id);
  return left;
}

/** The `handshake` channel: accepted, refused (with its code) or left, and how long it took. */
export function publishHandshake(
  socket: Socket,
  err: Error | undefined,
  left: boolean,
  startedAt: number,
): void {
  publish('handshake', () => {
    const data = (err as Partial<SessionAuthError> | undefined)?.data;
    const refused = !socket.connected && !left && err !== undefined;
    return {
      namespace: socket.nsp.name,
      socketId: socket.id,
      connection: connectionDigest(connectionIdOf(socket)),
      outcome: socket.connected ? 'accepted' : refused ? 'refused' : 'left',
      code: refused ? (data?.code ?? err.message) : undefined,
      status: refused ? data?.status : undefined,
      reason: left ? undefined : whyOf(socket)?.reason,
      durationMs: performance.now() - startedAt,
      transport: socket.conn.transport.name,
    };
  });
}

/**
 * A Socket.IO 2 client (protocol 3, `allowEIO3`) keeps a refused socket and asks again each time
 * its connection drops: every `connectTimeout` (45 s) when no namespace of it joined. A DISCONNECT
 * packet for the refused namespace, after the refusal Socket.IO has sent, makes it drop that socket
 * as a v4 client does (one refusal, no retry). Closing the connection instead only makes it return
 * sooner (its reconnection delay, about 1 s). Later clients (protocol 4, v3 and v4) are left alone:
 * v4 already stops, and a v3 client cannot be told from a v4 one.
 */
export function stopOldClient(socket: Socket, err: Error | undefined): void {
  if (!(err instanceof SessionAuthError) || socket.connected) return;
  if ((socket.conn as { protocol?: number }).protocol === 3) sendDisconnectPacket(socket);
}
