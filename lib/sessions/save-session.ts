import type { Socket } from 'socket.io';
import { save, sessionOf } from '../live/writes.js';

/**
 * Saves `socket.request.session` to the store, after any save of the same session already under
 * way from this node. The last write wins: see docs/api.md, "reloadSession(socket) and saveSession(socket)", on HTTP and sockets writing one session.
 *
 * @example
 * ```ts
 * socket.on('set-theme', async (theme: string, ack: () => void) => {
 *   socket.request.session.theme = theme;
 *   await saveSession(socket);
 *   ack();
 * });
 * ```
 */
export function saveSession(socket: Socket): Promise<void> {
  return save(socket, sessionOf(socket, 'saveSession'));
}
