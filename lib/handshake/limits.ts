// rateLimit's connection limits at their points of the handshake (handshake.ts calls these): per
// address before the session is read, per user and per session once the socket is tracked, and
// a tracked socket gone. The limits sit on the server's record (core/state.ts `limits`), where
// rateLimit (limits/connections.ts) puts them: the order the helpers were called in does not
// matter, and a server without limits pays one array length per step.
import type { Socket } from 'socket.io';
import { type HandshakeLimit, serverState, socketState, type SocketState } from '../core/state.js';

type Next = (err?: Error) => void;

/** Runs `check` on each limit in turn; the first refusal stops there. */
function inTurn(
  limits: readonly HandshakeLimit[],
  check: (limit: HandshakeLimit, done: Next) => void,
  next: Next,
): void {
  let i = 0;
  const step = (err?: Error): void => {
    const limit = err ? undefined : limits[i++];
    if (limit) check(limit, step);
    else next(err);
  };
  step();
}

/** Before the session read: each limit per address, then `read` (none refused) or `next(err)`. */
export function limitBeforeRead<R extends object>(
  socket: Socket,
  req: R,
  next: Next,
  read: (socket: Socket, req: R, next: Next) => void,
): void {
  const { limits } = serverState(socket.nsp.server);
  if (limits.length === 0) {
    read(socket, req, next);
    return;
  }
  inTurn(
    limits,
    (limit, done) => {
      limit.beforeRead(socket, req, done);
    },
    (err) => {
      if (err) next(err);
      else read(socket, req, next);
    },
  );
}

/** Once tracked: each limit per user and per session (an untracked socket has neither). */
export function limitTracked(socket: Socket, next: Next): void {
  const state = socketState(socket);
  const limits = state?.server.limits;
  if (!state || !limits || limits.length === 0) {
    next();
    return;
  }
  inTurn(
    limits,
    (limit, done) => {
      limit.tracked(state, done);
    },
    next,
  );
}

/** A tracked socket is gone: each limit lets go of its count. */
export function limitsLeft(state: SocketState): void {
  for (const limit of state.server.limits) limit.left(state);
}
