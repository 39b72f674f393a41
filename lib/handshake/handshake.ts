// One namespace connect, as a pipeline of steps in the order they run. sessionNamespace puts steps
// 1–3 on the namespace and 5 on 'connection'; passportNamespace puts its token step (token.ts)
// after 3; requireAuth puts 4 after them all. Each step calls parts named for what they do, in the
// file named:
//   1. origin    origin.ts          a browser page of another origin is refused before any read
//   2. session   session-read.ts    the session middleware reads the session (one store read),
//                                   then passport.session() the user (one deserializeUser), on the
//                                   socket's own request; shared-read.ts: overlapping connects of
//                                   one connection share one read; no-user.ts: why there is none
//   3. track     track.ts           the socket's record, indexed by session and user
//                limits.ts          rateLimit's limits: per address before 2's read, per user
//                                   and session here (lib/limits/connections.ts puts them)
//   4. guard     guard.ts           requireAuth: no user refused, `authorize`, `authorizeEvent`
//   5. admit     admit.ts           on 'connection': ended meanwhile? else expiry, revalidation;
//                                   then presence (presence/lifecycle.ts)
//   6. leave     (here)             the socket is gone, connected or not: nothing of it stays
//                                   (presence hears of a connected one)
//      settled   settled.ts         the handshake ended: diagnostics, old clients told to stop
// Steps 6 are called by socket-io/namespace-layers.ts, through `socketLifecycle` below.
import type { Socket } from 'socket.io';
import { ERR_MIDDLEWARE_ERROR, ERR_ORIGIN_FORBIDDEN, refusal, report } from '../core/errors.js';
import { requestOf } from '../core/request.js';
import { type Guard, type HandshakeOptions, socketState, unindex } from '../core/state.js';
import type { SessionRequest } from '../core/types.js';
import { disarmExpiry } from '../live/expiry.js';
import { rememberExpiry } from '../live/recovery.js';
import { stopRevalidating } from '../live/revalidation.js';
import { presenceArrived, presenceLeft } from '../presence/lifecycle.js';
import type { SocketLifecycle } from '../socket-io/namespace-layers.js';
import { admit } from './admit.js';
import { decide } from './decide.js';
import { type EventCheck, noUserRefusal, passGuard } from './guard.js';
import { listedOrigins, originAllowed, originRefusal } from './origin.js';
import { lateListener, lateStep } from './late.js';
import { limitBeforeRead, limitsLeft, limitTracked } from './limits.js';
import { followRead, leadRead, sharedRead } from './shared-read.js';
import { sessionReader, warnIfReadTwice } from './session-read.js';
import { clientLeft, publishHandshake, stopOldClient } from './settled.js';
import { track } from './track.js';

type NamespaceMiddleware = (socket: Socket, next: (err?: Error) => void) => void;

/** 1. Origin: the `Origin` header must name an allowed origin (browsers always send one). */
export function originStep(options: HandshakeOptions): NamespaceMiddleware {
  const { requireOrigin } = options;
  const listed = listedOrigins(options);
  return function checkOriginMiddleware(socket, next) {
    const req = socket.request;
    const header = req.headers.origin;
    if (header === undefined) {
      // Browsers always send Origin with a WebSocket and with cross-origin requests.
      next(requireOrigin ? refusal(ERR_ORIGIN_FORBIDDEN, 403) : undefined);
    } else if (originAllowed(options, listed, header, req)) {
      next();
    } else {
      next(originRefusal(socket, options, listed, header));
    }
  };
}

/** 2. Session and user: one read per connection at a time, then why there is no user. */
export function sessionStep(options: HandshakeOptions): NamespaceMiddleware {
  const reader = sessionReader(options);
  const read = (socket: Socket, req: SessionRequest, next: (err?: Error) => void): void => {
    warnIfReadTwice(req);
    const shared = sharedRead(socket, reader);
    // Another namespace of this connection is reading the same session right now: wait for it.
    if (shared) followRead(shared, reader, socket, req, next);
    else leadRead(reader, socket, req, next);
  };
  return function readSessionMiddleware(socket, next) {
    const req = requestOf(socket, options.app) as SessionRequest;
    // rateLimit's per-address limit first (limits.ts): an attempt it refuses costs no store read.
    limitBeforeRead(socket, req, next, read);
  };
}

/** 3. Track: the socket's record, so that a revocation finds it even before it has connected. */
export function trackStep(options: HandshakeOptions): NamespaceMiddleware {
  return function trackSessionMiddleware(socket, next) {
    try {
      track(socket, options);
    } catch (error) {
      // A session of a shape this package does not know: refused, never a crash.
      report(options.onError, error, socket);
      next(refusal(ERR_MIDDLEWARE_ERROR, 500, error));
      return;
    }
    // rateLimit's per-user and per-session counts (limits.ts): the socket is in the indexes now.
    limitTracked(socket, next);
  };
}

/** 4. Guard (requireAuth): a user, whom `authorize` allows; then the event guard and room rules. */
export function guardStep<User>(
  guard: Guard,
  authorize: ((user: User, socket: Socket) => boolean | Promise<boolean>) | undefined,
  authorizeEvent: EventCheck<User> | undefined,
): NamespaceMiddleware {
  return function requireAuthMiddleware(socket, next) {
    const user = socket.request.user as User | undefined;
    if (!user) {
      next(noUserRefusal(socket));
    } else if (!authorize) {
      passGuard(socket, guard, authorizeEvent, next);
    } else {
      decide(
        () => authorize(user, socket),
        guard,
        socket,
        (refused) => {
          if (refused) next(refused);
          else passGuard(socket, guard, authorizeEvent, next);
        },
      );
    }
  };
}

/** 5. Admit, on 'connection': a socket whose session cannot be kept true is not left connected. */
export function admitStep(options: HandshakeOptions): (socket: Socket) => void {
  return function admitSession(socket) {
    try {
      admit(socket, options);
      presenceArrived(socket);
    } catch (error) {
      report(options.onError, error, socket);
      socket.disconnect();
    }
  };
}

/**
 * 6. Leave: the socket disconnected, or its handshake ended without connecting (refused, or its
 * client left). Nothing of it stays: not in the indexes, the expiry heap or revalidation.
 */
export function leave(socket: Socket): void {
  const state = socketState(socket);
  if (!state) return;
  unindex(state);
  limitsLeft(state);
  disarmExpiry(state);
  stopRevalidating(state);
  if (state.connected) {
    rememberExpiry(state);
    presenceLeft(state);
  }
}

/** Every handshake of a layered namespace, once it has ended, connected or not. */
export function handshakeSettled(socket: Socket, err: Error | undefined, startedAt: number): void {
  const left = clientLeft(socket);
  if (!left) stopOldClient(socket, err);
  publishHandshake(socket, err, left, startedAt);
}

/**
 * What every namespace the package layers (its session steps, requireAuth's guard) is given to call
 * about its sockets: leave and settle above, and late.ts's check of the sockets that were there
 * before a layer (socket-io/namespace-layers.ts calls them).
 */
export const socketLifecycle: SocketLifecycle = Object.freeze({
  left: leave,
  settled: handshakeSettled,
  lateStep,
  lateListener,
});
