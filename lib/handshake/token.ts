// Any Passport strategy on a namespace: the token of a mobile app or a service (a JWT, a bearer
// token, an API key) comes in the handshake's `auth`, where browsers and Socket.IO put it, and the
// listed strategies see it as `Authorization: Bearer …` on the socket's own request, as over HTTP.
// A token that expires ends its socket then, unless the client sends a fresh one for the same user.
import type { Socket } from 'socket.io';
import type { NoUserReason } from '../core/diagnostics.js';
import {
  ERR_AUTHORIZE_ERROR,
  ERR_SESSION_REVOKED,
  ERR_BAD_TOKEN_EXPIRY,
  ERR_UNAUTHORIZED,
  type OrRefusal,
  SessionAuthError,
  refusal,
  report,
  toError,
} from '../core/errors.js';
import { armExpiry } from '../live/expiry.js';
import { rememberWhy, reasonsWanted } from './explain.js';
import { requestOf } from '../core/request.js';
import { giveUserData } from '../core/user.js';
import { SessionReadResponse } from '../core/response.js';
import { endSocket, endedPayload } from '../live/revocation.js';
import { ackError } from '../live/events.js';
import { withTimeout } from '../core/with-timeout.js';
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

type Authenticate = (
  strategies: readonly string[],
  options: { session: false },
  callback: (err: unknown, user: unknown, info: unknown) => void,
) => (req: unknown, res: unknown, next: (err?: unknown) => void) => void;

type Serialize = (user: unknown, req: unknown, done: (err: unknown, key?: unknown) => void) => void;

/**
 * What the client's `session:token` ack receives: `{ expires }`, the fresh token's expiry in
 * milliseconds since epoch (`null`: it does not expire), or `{ error: { message, code, status } }`.
 */
export type TokenRenewalAck =
  { expires: number | null } | { error: { message: string; code: string; status: number } };

/** A token's expiry in ms since epoch (undefined: none given), or why the field is unusable. */
type Expiry = { expires: number | undefined } | { unusable: string };

// Epoch seconds and epoch milliseconds are told apart by size: 1e11 seconds is the year 5138,
// 1e11 milliseconds is 1973. A value on the wrong side is a unit mistake, never a real expiry.
const SECONDS_BELOW = 1e11;
/** The latest time a `Date` can hold, in ms since epoch. */
const MAX_DATE_MS = 8.64e15;
// ISO 8601 date-time with its zone (`Date#toISOString()`): without a zone, JavaScript reads it in
// the server's local time, which is a guess.
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

function unusable(field: string, what: string): Expiry {
  return { unusable: `Unusable token expiry: ${field} ${what}` };
}

/** `exp`: seconds since epoch, as in a JWT. */
function fromSeconds(field: string, value: unknown): Expiry {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return unusable(field, 'must be a number of seconds since epoch');
  }
  if (value < 0) return unusable(field, 'is negative');
  if (value >= SECONDS_BELOW) {
    return unusable(field, 'is too large for seconds since epoch (milliseconds go in expires)');
  }
  return { expires: value * 1000 };
}

/** `expires`: a `Date`, milliseconds since epoch, or an ISO 8601 date-time with its zone. */
function fromExpires(field: string, value: unknown): Expiry {
  let time: number;
  if (value instanceof Date) {
    time = value.getTime();
    if (Number.isNaN(time)) return unusable(field, 'is an invalid Date');
  } else if (typeof value === 'number') {
    if (!Number.isFinite(value)) return unusable(field, 'is not a finite number');
    if (value < 0) return unusable(field, 'is negative');
    if (value < SECONDS_BELOW) {
      return unusable(
        field,
        'is below 1e11: seconds, not milliseconds since epoch (seconds go in exp)',
      );
    }
    time = value;
  } else if (typeof value === 'string') {
    time = ISO_8601.test(value) ? Date.parse(value) : NaN;
    if (Number.isNaN(time)) return unusable(field, 'is not an ISO 8601 date-time with a zone');
  } else {
    return unusable(field, 'must be a Date, milliseconds since epoch or an ISO 8601 string');
  }
  if (time > MAX_DATE_MS) return unusable(field, 'is beyond the latest Date');
  return { expires: time };
}

/** A field is present unless undefined or null (a strategy's way of saying "none"). */
function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

/**
 * The token's expiry: from the strategy's `info` (`exp` in seconds, `expires` as a Date, ms or ISO
 * string; both given: the earlier), else the JWT's `exp` claim. A present field that is not a
 * usable time is reported, never skipped: skipping it would let in a token that never expires.
 */
function expiryOf(token: string, info: unknown): Expiry {
  const fromInfo = (info !== null && typeof info === 'object' ? info : {}) as {
    exp?: unknown;
    expires?: unknown;
  };
  const given: Expiry[] = [];
  if (present(fromInfo.exp)) given.push(fromSeconds('info.exp', fromInfo.exp));
  if (present(fromInfo.expires)) given.push(fromExpires('info.expires', fromInfo.expires));
  if (given.length > 0) {
    let earliest = Infinity;
    for (const expiry of given) {
      if ('unusable' in expiry) return expiry;
      earliest = Math.min(earliest, expiry.expires ?? Infinity);
    }
    return { expires: earliest };
  }
  const parts = token.split('.');
  const payload = parts[1];
  // Not a JWT (an API key, an opaque bearer token): no claim to read.
  if (parts.length !== 3 || !payload) return { expires: undefined };
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown;
  } catch {
    return { expires: undefined };
  }
  const exp =
    claims !== null && typeof claims === 'object' ? (claims as { exp?: unknown }).exp : undefined;
  return present(exp) ? fromSeconds("the token's exp claim", exp) : { expires: undefined };
}

/** The refusal of a token whose expiry is unusable: its message names the field. */
function unusableExpiry(message: string): SessionAuthError {
  return new SessionAuthError(message, { code: ERR_BAD_TOKEN_EXPIRY, status: 500 });
}

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
 * Runs the strategies on the socket's request with the token as `Authorization: Bearer …` (on the
 * socket's own request: the connection's headers are untouched, and put back after).
 */
function authenticate(
  options: HandshakeOptions,
  strategies: readonly string[],
  socket: Socket,
  token: string,
): Promise<OrRefusal<{ user: unknown; info: unknown }>> {
  const req = requestOf(socket, options.app) as { headers: Record<string, unknown> };
  const headers = req.headers;
  req.headers = { ...headers, authorization: `Bearer ${token}` };
  const run = (options.passport as unknown as { authenticate: Authenticate }).authenticate;
  // A strategy that fails (an error, not a refusal) is the server's: ERR_AUTHORIZE_ERROR.
  const failed = (error: unknown): SessionAuthError => refusal(ERR_AUTHORIZE_ERROR, 500, error);
  const refused = (): SessionAuthError => refusal(ERR_UNAUTHORIZED, 401);
  const answer = new Promise<OrRefusal<{ user: unknown; info: unknown }>>((resolve) => {
    run.call(options.passport, strategies, { session: false }, (err, user, info) => {
      resolve(err ? failed(err) : user ? { user, info } : refused());
    })(req, new SessionReadResponse(() => undefined), (err?: unknown) => {
      resolve(err ? failed(err) : refused());
    });
  }).catch(failed);
  return withTimeout(answer, options.timeoutMs, () =>
    failed(new Error('the token strategies did not answer in time')),
  ).finally(() => {
    req.headers = headers;
  });
}

function serialize(options: HandshakeOptions, user: unknown, req: unknown): Promise<unknown> {
  const run = (options.passport as unknown as { serializeUser: Serialize }).serializeUser;
  return new Promise((resolve, reject) => {
    run.call(options.passport, user, req, (err, key) => {
      if (err) reject(toError(err));
      else resolve(key);
    });
  });
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
    if (reasonsWanted(options.explain)) rememberWhy(socket, reason, options.explain);
  };
  const unauthorized = (socket: Socket, reason: NoUserReason) => {
    why(socket, reason);
    const refused = refusal(ERR_UNAUTHORIZED, 401);
    if (options.explain) refused.data.reason = reason;
    return refused;
  };
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
        return serialize(options, outcome.user, req).then(
          (serialized) => {
            req.user = outcome.user;
            admitToken(socket, options, serialized, expiry.expires, outcome.user);
            next();
          },
          (error: unknown) => {
            report(options.onError, error, socket);
            next(refusal(ERR_AUTHORIZE_ERROR, 500, error));
          },
        );
      })
      .catch((error: unknown) => {
        // Thrown by what next() ran (a later middleware of the app): the app's onError hears it,
        // rather than an unhandled rejection ending the process.
        report(options.onError, error, socket);
      });
  };
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
  if (previous) unindex(previous);
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
