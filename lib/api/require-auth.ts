import type { Namespace, Socket } from 'socket.io';
import { compileRooms } from '../live/authorization.js';
import { guardStep, socketLifecycle } from '../handshake/handshake.js';
import { pruneEmptyChildren, useEverywhere } from '../socket-io/namespace-layers.js';
import { checkFunction, checkOptions, checkTimeout, markGuarded, toNamespace } from './setup.js';
import type { Guard } from '../core/state.js';
import type { ErrorHook, NamespaceTarget, RoomPolicy } from '../core/types.js';

/** Options for {@link requireAuth}. */
export interface RequireAuthOptions<User = Express.User> {
  /**
   * Decides whether a logged-in user may join this namespace (for a dynamic namespace,
   * `socket.nsp.name` is the child's name). Only `true` lets the user in; anything else refuses
   * with `ERR_FORBIDDEN` (403). A throw or rejection refuses with `ERR_AUTHORIZE_ERROR` (500).
   * @default undefined (every logged-in user may join)
   */
  authorize?: (user: User, socket: Socket) => boolean | Promise<boolean>;
  /**
   * Decides, event by event, whether the user may send this event. A refused event never reaches
   * its handlers; when the client sent an ack callback, it receives
   * `{ error: { message: 'Forbidden', code: 'ERR_FORBIDDEN', status: 403 } }` (a throw or
   * rejection: `ERR_AUTHORIZE_ERROR`, 500). Only `true` lets the event through.
   * @default undefined (every event goes through)
   */
  authorizeEvent?: (
    user: User,
    event: string,
    args: unknown[],
    socket: Socket,
  ) => boolean | Promise<boolean>;
  /**
   * Which rooms a socket of this namespace may join: rules by room name (`*` matches any
   * characters; the first pattern that matches decides), or one rule for every room. Only `true`
   * allows. `socket.join(room)` of a room no rule allows never joins it and rejects with a
   * SessionAuthError (`ERR_FORBIDDEN`, `data.room`); a rule that throws or never settles refuses
   * too (`ERR_AUTHORIZE_ERROR`, `ERR_MIDDLEWARE_TIMEOUT`). After `refreshUser`, `refreshSession`
   * or a revalidation, a socket leaves the rooms it may no longer be in and receives
   * `session:rooms-left`. The socket's own room and the package's are never the rules' business.
   * @default undefined (joins are not checked)
   * @example
   * ```ts
   * rooms: { 'doc:*': (user, room) => canRead(user, room.slice('doc:'.length)) }
   * ```
   */
  rooms?: RoomPolicy<User>;
  /**
   * How long, in milliseconds, an asynchronous `authorize` or `authorizeEvent` may take. Past it,
   * the socket is refused (or the event refused) with `ERR_MIDDLEWARE_TIMEOUT`, status 503.
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * Receives the error when `authorize` or `authorizeEvent` throws or rejects; the client sees
   * only `Internal Server Error`.
   * @default logs it with `console.error`
   */
  onError?: ErrorHook;
}

/**
 * Refuses sockets with no logged-in user (`ERR_UNAUTHORIZED`, 401) and, with `authorize`, users it
 * turns down (`ERR_FORBIDDEN`, 403). Refusals are namespace-level `connect_error`s, so the client
 * is told why and does not reconnect in a loop.
 *
 * @example
 * ```ts
 * requireAuth(sessionNamespace(io.of('/admin'), sessionMiddleware, { passport }), {
 *   authorize: (user) => user.role === 'admin',
 * });
 * ```
 */
export function requireAuth<User = Express.User>(
  target: NamespaceTarget,
  options?: RequireAuthOptions<User>,
): Namespace {
  const nsp = toNamespace(target, 'requireAuth');
  const {
    authorize,
    authorizeEvent,
    rooms,
    timeoutMs = 10_000,
    onError,
  } = checkOptions('requireAuth', options);
  checkFunction('requireAuth', 'options.authorize', authorize);
  checkFunction('requireAuth', 'options.authorizeEvent', authorizeEvent);
  checkFunction('requireAuth', 'options.onError', onError);
  checkTimeout('requireAuth', timeoutMs);
  const guard: Guard = {
    authorize: authorize as Guard['authorize'],
    rules: compileRooms('requireAuth', rooms),
    timeoutMs,
    onError,
  };

  markGuarded(nsp);
  pruneEmptyChildren(nsp, socketLifecycle);
  // The guard, after the session steps (lib/handshake/handshake.ts, step 4).
  useEverywhere(nsp, socketLifecycle, guardStep<User>(guard, authorize, authorizeEvent));
  return nsp;
}
