// requireAuth's guard, the step after the session steps: no user is refused; a user `authorize`
// allows gets its event guard, its room rules, and its decisions kept for later.
import type { Socket } from 'socket.io';
import { ERR_UNAUTHORIZED, type SessionAuthError, refusal } from '../core/errors.js';
import { warnOnce } from '../diagnostics/diagnostics.js';
import { type Guard, socketState } from '../core/state.js';
import { addEventGuard, whyOf } from '../core/state-fields.js';
import { guardJoins, keepGuard } from '../live/authorization.js';
import { refuseEvent, sessionHasEnded } from '../live/events.js';
import { decide } from './decide.js';

/** requireAuth's `authorizeEvent`. */
export type EventCheck<User> = (
  user: User,
  event: string,
  args: unknown[],
  socket: Socket,
) => boolean | Promise<boolean>;

const noUserWarning = (name: string): string =>
  `requireAuth: sockets of namespace ${name} have neither a session nor a user on socket.request, ` +
  `so every one is refused. Call sessionNamespace(namespace, sessionMiddleware, { passport }) ` +
  `before requireAuth(namespace), or set socket.request.user in io.engine.use() middleware.`;

/** The refusal of a socket with no user (ERR_UNAUTHORIZED), with its reason when explained. */
export function noUserRefusal(socket: Socket): SessionAuthError {
  const req = socket.request;
  const why = whyOf(socket);
  // Neither sessionNamespace nor engine-level middleware put anything on this request.
  const { session } = req as { session?: unknown };
  if (!why && session === undefined && req.user === undefined) {
    warnOnce('SOCKET_IO_SESSION_AUTH_NO_USER', noUserWarning(socket.nsp.name));
  }
  const refused = refusal(ERR_UNAUTHORIZED, 401);
  if (why?.explain) refused.data.reason = why.reason;
  return refused;
}

/** A socket the guard lets in: its event guard, its room rules, its guard kept; then `next`. */
export function passGuard<User>(
  socket: Socket,
  guard: Guard,
  authorizeEvent: EventCheck<User> | undefined,
  next: (err?: Error) => void,
): void {
  if (authorizeEvent) guardEachEvent(socket, guard, authorizeEvent);
  if (guard.rules) guardJoins(socket, guard);
  // Kept on the socket's record, so that refreshUser and revalidation can decide again.
  const state = socketState(socket);
  if (state) keepGuard(state, guard);
  next();
}

function guardEachEvent<User>(socket: Socket, guard: Guard, check: EventCheck<User>): void {
  // Recovered sockets run the namespace middleware again: one event guard per socket.
  if (!addEventGuard(socket, guard)) return;
  socket.use(function authorizeEventGuard(event, next) {
    const user = socket.request.user as User | undefined;
    // Before authorizeEvent is asked: a socket whose session has ended may not act.
    if (!user || sessionHasEnded(socketState(socket))) {
      refuseEvent(socket, event, refusal(ERR_UNAUTHORIZED, 401));
      return;
    }
    const [name, ...rest] = event as [string, ...unknown[]];
    // The ack callback is Socket.IO's, not an argument the client sent.
    const args = typeof rest[rest.length - 1] === 'function' ? rest.slice(0, -1) : rest;
    decide(
      () => check(user, name, args, socket),
      guard,
      socket,
      (refused) => {
        if (refused) refuseEvent(socket, event, refused);
        else next();
      },
    );
  });
}
