import type { Socket } from 'socket.io';
import { reload, sessionOf } from '../live/writes.js';

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
  return reload(socket, sessionOf(socket, 'reloadSession'));
}
