// Any Passport strategy on a namespace: the token of a mobile app or a service (a JWT, a bearer
// token, an API key) comes in the handshake's `auth`, where browsers and Socket.IO put it, and the
// listed strategies see it as `Authorization: Bearer …` on the socket's own request, as over HTTP.
// A token that expires ends its socket then, unless the client sends a fresh one for the same user.
import type { Socket } from 'socket.io';
import type { NoUserReason } from '../diagnostics/diagnostics.js';
import {
  ERR_AUTHORIZE_ERROR,
  ERR_SESSION_REVOKED,
  ERR_UNAUTHORIZED,
  SessionAuthError,
  refusal,
  report,
} from '../core/errors.js';
import { armExpiry } from '../live/expiry.js';
import { rememberWhy, reasonsWanted } from '../diagnostics/explain.js';
import { requestOf } from '../core/request.js';
import { limitsLeft, limitTracked } from '../handshake/limits.js';
import { giveUserData } from '../core/user.js';
import { endSocket, endedPayload } from '../live/revocation.js';
import { ackError } from '../live/events.js';
import { authenticate, serialize } from './token-strategies.js';
import { expiryOf, unusableExpiry } from './token-expiry.js';
import {
  type HandshakeOptions,
  type SocketState,
  serverState,
  socketState,
  trackSocket,
  unindex,
  userKeyOf,
} from '../core/state.js';

/**
 * The event on which a client sends a fresh token: `socket.emit('session:token', token, ack)`. The
 * ack gets a {@link TokenRenewalAck}: `{ expires }` in milliseconds since epoch, or an error.
 */
export const TOKEN_EVENT = 'session:token';

/** Tokens longer than this are refused unread: no strategy needs more, and parsing costs. */
export const MAX_TOKEN_LENGTH = 8192;

/** Where a socket's token comes from. */
export type TokenSource = (socket: Socket) => unknown;

/**
 * What the client's `session:token` ack receives: `{ expires }`, the fresh token's expiry in
 * milliseconds since epoch (`null`: it does not expire), or `{ error: { message, code, status } }`.
 */
export type TokenRenewalAck =
  { expires: number | null } | { error: { message: string; code: string; status: number } };

/** The socket's token, if it gave one that a strategy may read. */
function tokenOf(source: TokenSource, socket: Socket): string | undefined {
  let value: unknown;
  try {
    value = source(socket);
  } catch {
    return undefined;
  }
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The token step of passportNamespace: a socket the session did not authenticate (or with no
 * session strategy at all) is authenticated with the listed strategies and its handshake token.
 * No token: no user (requireAuth refuses, ERR_UNAUTHORIZED); a bad or expired one (by the
 * strategies, or by the expiry they give): refused, ERR_UNAUTHORIZED; a strategy that fails:
 * ERR_AUTHORIZE_ERROR (500, the error to `onError`); an expiry that is not a usable time:
 * ERR_BAD_TOKEN_EXPIRY (500, to `onError` too).
 */
export function tokenStep(
  options: HandshakeOptions,
  strategies: readonly string[],
  source: TokenSource,
) {
  const why = (socket: Socket, reason: NoUserReason): void => {
    whyNoToken(options, socket, reason);
  };
  const unauthorized = (socket: Socket, reason: NoUserReason) =>
    tokenRefusal(options, socket, reason);
  return function tokenMiddleware(socket: Socket, next: (err?: Error) => void): void {
    const req = requestOf(socket, options.app) as { user?: unknown };
    if (req.user !== undefined) {
      next();
      return;
    }
    const token = tokenOf(source, socket);
    if (token === undefined) {
      // No token: the socket goes on with no user, and requireAuth refuses it if it guards.
      why(socket, 'no-token');
      next();
      return;
    }
    if (token.length > MAX_TOKEN_LENGTH) {
      next(unauthorized(socket, 'bad-token'));
      return;
    }
    void authenticate(options, strategies, socket, token)
      .then((outcome) => {
        if (outcome instanceof SessionAuthError) {
          if (outcome.data.code === ERR_UNAUTHORIZED) {
            next(unauthorized(socket, 'bad-token'));
            return;
          }
          report(options.onError, outcome.cause, socket);
          next(outcome);
          return;
        }
        const expiry = expiryOf(token, outcome.info);
        if ('unusable' in expiry) {
          const refused = unusableExpiry(expiry.unusable);
          report(options.onError, refused, socket);
          next(refused);
          return;
        }
        // Past already: refused as the strategies refuse an expired token.
        const now = serverState(socket.nsp.server).clock.now();
        if (expiry.expires !== undefined && expiry.expires <= now) {
          next(unauthorized(socket, 'bad-token'));
          return;
        }
        return serializeAndAdmit(options, socket, req, outcome.user, expiry.expires, next);
      })
      .catch((error: unknown) => {
        // Thrown by what next() ran (a later middleware of the app): the app's onError hears it,
        // rather than an unhandled rejection ending the process.
        report(options.onError, error, socket);
      });
  };
}

function whyNoToken(options: HandshakeOptions, socket: Socket, reason: NoUserReason): void {
  if (reasonsWanted(options.explain)) rememberWhy(socket, reason, options.explain);
}

/** A token refused (ERR_UNAUTHORIZED), with its reason when explained. */
function tokenRefusal(
  options: HandshakeOptions,
  socket: Socket,
  reason: NoUserReason,
): SessionAuthError {
  whyNoToken(options, socket, reason);
  const refused = refusal(ERR_UNAUTHORIZED, 401);
  if (options.explain) refused.data.reason = reason;
  return refused;
}

// The strategies' user, serialised (a failure is ERR_AUTHORIZE_ERROR), becomes the socket's.
function serializeAndAdmit(
  options: HandshakeOptions,
  socket: Socket,
  req: { user?: unknown },
  user: unknown,
  expires: number | undefined,
  next: (err?: Error) => void,
): Promise<void> {
  return serialize(options, user, req).then(
    (serialized) => {
      req.user = user;
      admitToken(socket, options, serialized, expires, user);
      // rateLimit's per-user count (handshake/limits.ts), now that the token's user is known.
      limitTracked(socket, next);
    },
    (error: unknown) => {
      report(options.onError, error, socket);
      next(refusal(ERR_AUTHORIZE_ERROR, 500, error));
    },
  );
}

// The socket's record: by user (a token has no session ID), with the token's expiry.
function admitToken(
  socket: Socket,
  options: HandshakeOptions,
  serialized: unknown,
  expires: number | undefined,
  user: unknown,
): void {
  // An anonymous stored session the session step tracked gives way to the token's user.
  const previous = socketState(socket);
  if (previous) {
    unindex(previous);
    limitsLeft(previous);
  }
  const state = trackSocket(socket, options, undefined, userKeyOf(serialized));
  state.token = { serialized, expires };
  giveUserData(socket, options, user);
}

/**
 * On a connected token socket: `session:token` with a fresh token (and an ack) renews it in place.
 * The same user: the socket goes on, with the new token's expiry (the ack gets `{ expires }`, ms
 * since epoch). Another user, or a token the strategies refuse or that has expired: the socket
 * ends (ERR_SESSION_REVOKED). A strategy that fails, or an unusable expiry: the ack gets the error
 * and the socket goes on with the token it had.
 */
export function acceptFreshTokens(state: SocketState, strategies: readonly string[]): void {
  const { socket, options } = state;
  socket.on(TOKEN_EVENT, (token: unknown, ack?: unknown) => {
    const reply = (value: unknown): void => {
      if (typeof ack === 'function') (ack as (v: unknown) => void)(value);
    };
    const end = (): void => {
      reply(ackError(endedPayload(ERR_SESSION_REVOKED)));
      endSocket(state, ERR_SESSION_REVOKED, 'token');
    };
    if (state.ended) return;
    if (typeof token !== 'string' || token === '' || token.length > MAX_TOKEN_LENGTH) {
      end();
      return;
    }
    void authenticate(options, strategies, socket, token).then((outcome) => {
      if (outcome instanceof SessionAuthError) {
        if (outcome.data.code === ERR_UNAUTHORIZED) {
          end();
          return;
        }
        report(options.onError, outcome.cause, socket);
        reply(ackError(outcome));
        return;
      }
      const expiry = expiryOf(token, outcome.info);
      if ('unusable' in expiry) {
        // The socket goes on with the token it has (and that token's expiry), as after an error.
        const refused = unusableExpiry(expiry.unusable);
        report(options.onError, refused, socket);
        reply(ackError(refused));
        return;
      }
      if (expiry.expires !== undefined && expiry.expires <= state.server.clock.now()) {
        end();
        return;
      }
      serialize(options, outcome.user, socket.request).then(
        (serialized) => {
          // Gone meanwhile (ended, or disconnected: leave() has disarmed it): arm nothing again.
          if (state.ended || socket.disconnected) return;
          if (userKeyOf(serialized) !== state.userKey) {
            end();
            return;
          }
          const { expires } = expiry;
          state.token = { serialized, expires };
          (socket.request as { user?: unknown }).user = outcome.user;
          armExpiry(state, expires);
          reply({ expires: expires ?? null } satisfies TokenRenewalAck);
        },
        (error: unknown) => {
          report(options.onError, error, socket);
          end();
        },
      );
    });
  });
}
