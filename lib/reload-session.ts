import type { Socket } from 'socket.io';
import { toError } from './errors.js';
import { liveSession } from './live-session.js';
import { checkNotEnded, hashOf, serialise, sessionOf } from './session-writes.js';

/**
 * Reloads `socket.request.session` from the store, to see what HTTP requests (or other sockets)
 * wrote since the socket connected. Rejects when the session is gone from the store.
 *
 * @example
 * ```ts
 * socket.on('cart', async (ack: (cart: unknown) => void) => {
 *   await reloadSession(socket);
 *   ack(socket.request.session.cart);
 * });
 * ```
 */
export function reloadSession(socket: Socket): Promise<void> {
  const session = sessionOf(socket, 'reloadSession');
  return serialise(
    session.id,
    () =>
      new Promise<void>((resolve, reject) => {
        checkNotEnded(socket, 'reloadSession');
        session.reload((err?: unknown) => {
          if (err) {
            reject(toError(err));
            return;
          }
          // session.reload() puts a new Session object on the request.
          const state = liveSession(socket);
          if (state) state.savedHash = hashOf(socket.request.session);
          resolve();
        });
      }),
  );
}
