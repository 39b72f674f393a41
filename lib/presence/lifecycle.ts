// Where presence hears of sockets: the handshake's admit and leave (handshake/handshake.ts) call
// these, and each presence tracker on the server (its record's `presence`) decides whether the
// socket is its own. Nothing is kept per socket: a tracker keeps its users' socket records.
import type { Socket } from 'socket.io';
import { serverState, socketState, type SocketState } from '../core/state.js';

/** A socket passed admission (connected, its session not ended meanwhile, or not tracked at all). */
export function presenceArrived(socket: Socket): void {
  const { presence } = serverState(socket.nsp.server);
  if (presence.size === 0) return;
  const state = socketState(socket);
  for (const watcher of presence) watcher.arrived(socket, state);
}

/** A tracked socket that had connected is gone (disconnected, ended, its client left). */
export function presenceLeft(state: SocketState): void {
  for (const watcher of state.server.presence) watcher.left(state);
}
