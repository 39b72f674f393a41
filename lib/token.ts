// Any Passport strategy on a namespace: the token of a mobile app or a service (a JWT, a bearer
// token, an API key) comes in the handshake's `auth`, where browsers and Socket.IO put it, and the
// listed strategies see it as `Authorization: Bearer …` on the socket's own request, as over HTTP.
// A token that expires ends its socket then, unless the client sends a fresh one for the same user.
import type { Socket } from 'socket.io';
import type { NoUserReason } from './diagnostics.js';
import {
  ERR_AUTHORIZE_ERROR,
  ERR_SESSION_REVOKED,
  ERR_UNAUTHORIZED,
  refusal,
  report,
  toError,
} from './errors.js';
import { armExpiry } from './expiry.js';
import { rememberWhy, reasonsWanted } from './explain.js';
import { requestOf } from './request.js';
import { SessionReadResponse } from './response.js';
import { endSocket } from './revocation.js';
import {
  type HandshakeOptions,
  type SocketState,
  socketState,
  trackSocket,
  unindex,
  userKeyOf,
} from './state.js';

/** The event on which a client sends a fresh token: `socket.emit('session:token', token, ack)`. */
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

/** The `exp` of a token (a JWT's claim, or what the strategy's info says), in ms since epoch. */
function expiryOf(token: string, info: unknown): number | undefined {
  const fromInfo = (info ?? {}) as { exp?: unknown; expires?: unknown };
  if (typeof fromInfo.exp === 'number') return fromInfo.exp * 1000;
  if (fromInfo.expires instanceof Date) return fromInfo.expires.getTime();
  const payload = token.split('.')[1];
  if (token.split('.').length !== 3 || !payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown;
    const exp = (claims as { exp?: unknown } | null)?.exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
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
  done: (
    outcome: { user: unknown; info: unknown } | { error: unknown } | { refused: true },
  ) => void,
): void {
  const req = requestOf(socket, options.app) as { headers: Record<string, unknown> };
  const headers = req.headers;
  req.headers = { ...headers, authorization: `Bearer ${token}` };
  const run = (options.passport as unknown as { authenticate: Authenticate }).authenticate;
  let answered = false;
  const answer = (outcome: Parameters<typeof done>[0]): void => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    req.headers = headers;
    done(outcome);
  };
  const timer = setTimeout(() => {
    answer({ error: new Error('the token strategies did not answer in time') });
  }, options.timeoutMs);
  try {
    run.call(options.passport, strategies, { session: false }, (err, user, info) => {
      if (err) answer({ error: err });
      else if (!user) answer({ refused: true });
      else answer({ user, info });
    })(req, new SessionReadResponse(() => undefined), (err?: unknown) => {
      answer(err ? { error: err } : { refused: true });
    });
  } catch (error) {
    answer({ error });
  }
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
 * No token: no user (requireAuth refuses, ERR_UNAUTHORIZED); a bad or expired one: refused,
 * ERR_UNAUTHORIZED; a strategy that fails: ERR_AUTHORIZE_ERROR (500, the error to `onError`).
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
    authenticate(options, strategies, socket, token, (outcome) => {
      if ('error' in outcome) {
        report(options.onError, outcome.error, socket);
        next(refusal(ERR_AUTHORIZE_ERROR, 500, outcome.error));
        return;
      }
      if ('refused' in outcome) {
        next(unauthorized(socket, 'bad-token'));
        return;
      }
      serialize(options, outcome.user, req).then(
        (serialized) => {
          req.user = outcome.user;
          admitToken(socket, options, serialized, expiryOf(token, outcome.info), outcome.user);
          next();
        },
        (error: unknown) => {
          report(options.onError, error, socket);
          next(refusal(ERR_AUTHORIZE_ERROR, 500, error));
        },
      );
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
  if (options.userData) {
    try {
      (socket.data as Record<string, unknown>).user = options.userData(user as Express.User);
    } catch (error) {
      report(options.onError, error, socket);
    }
  }
}

/**
 * On a connected token socket: `session:token` with a fresh token (and an ack) renews it in place.
 * The same user: the socket goes on, with the new token's expiry (the ack gets `{ expires }`).
 * Another user, or a token the strategies refuse: the socket ends (ERR_SESSION_REVOKED).
 */
export function acceptFreshTokens(state: SocketState, strategies: readonly string[]): void {
  const { socket, options } = state;
  socket.on(TOKEN_EVENT, (token: unknown, ack?: unknown) => {
    const reply = (value: unknown): void => {
      if (typeof ack === 'function') (ack as (v: unknown) => void)(value);
    };
    const end = (): void => {
      reply({ error: { message: 'Session revoked', code: ERR_SESSION_REVOKED, status: 401 } });
      endSocket(state, ERR_SESSION_REVOKED, 'token');
    };
    if (state.ended) return;
    if (typeof token !== 'string' || token === '' || token.length > MAX_TOKEN_LENGTH) {
      end();
      return;
    }
    authenticate(options, strategies, socket, token, (outcome) => {
      if ('error' in outcome) {
        report(options.onError, outcome.error, socket);
        reply({
          error: { message: 'Internal Server Error', code: ERR_AUTHORIZE_ERROR, status: 500 },
        });
        return;
      }
      if ('refused' in outcome) {
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
          const expires = expiryOf(token, outcome.info);
          state.token = { serialized, expires };
          (socket.request as { user?: unknown }).user = outcome.user;
          armExpiry(state, expires);
          reply({ expires: expires ?? null });
        },
        (error: unknown) => {
          report(options.onError, error, socket);
          end();
        },
      );
    });
  });
}
