import { STATUS_CODES } from 'node:http';
import { debug } from '../diagnostics/debug.js';
import type { Socket } from 'socket.io';
import type { NoUserReason } from '../diagnostics/diagnostics.js';
import type { ErrorHook } from './types.js';

/** Express middleware ended the response (redirect, 429, …) instead of calling `next()`. */
export const ERR_MIDDLEWARE_ENDED = 'ERR_MIDDLEWARE_ENDED';
/** Express middleware neither called `next()` nor ended the response within `timeoutMs`. */
export const ERR_MIDDLEWARE_TIMEOUT = 'ERR_MIDDLEWARE_TIMEOUT';
/** Express middleware threw, rejected, or called `next(err)`. */
export const ERR_MIDDLEWARE_ERROR = 'ERR_MIDDLEWARE_ERROR';
/** No logged-in user on the socket. */
export const ERR_UNAUTHORIZED = 'ERR_UNAUTHORIZED';
/** The `authorize` check turned the user down. */
export const ERR_FORBIDDEN = 'ERR_FORBIDDEN';
/** The `authorize` check threw or rejected. */
export const ERR_AUTHORIZE_ERROR = 'ERR_AUTHORIZE_ERROR';

/** `session:ended`: the session was logged out or destroyed. */
export const ERR_SESSION_REVOKED = 'ERR_SESSION_REVOKED';
/** `session:ended`: the session ID was regenerated (Passport's login): reconnect to pick it up. */
export const ERR_SESSION_ROTATED = 'ERR_SESSION_ROTATED';
/** `session:ended`: the session's cookie expired. */
export const ERR_SESSION_EXPIRED = 'ERR_SESSION_EXPIRED';

/** The codes of a session that ended (logout, rotation, expiry). */
export type SessionEndedCode =
  typeof ERR_SESSION_REVOKED | typeof ERR_SESSION_ROTATED | typeof ERR_SESSION_EXPIRED;

/**
 * The codes a socket can receive in its `session:ended` event: its session ended, or, after
 * `refreshUser`/`refreshSession` or a revalidation, `authorize` turned its user down
 * (`ERR_FORBIDDEN`), threw (`ERR_AUTHORIZE_ERROR`) or did not answer (`ERR_MIDDLEWARE_TIMEOUT`).
 */
export type SocketEndedCode =
  | SessionEndedCode
  | typeof ERR_FORBIDDEN
  | typeof ERR_AUTHORIZE_ERROR
  | typeof ERR_MIDDLEWARE_TIMEOUT
  | typeof ERR_RATE_LIMITED;

/** The handshake came from a browser page of an origin that is not allowed. */
export const ERR_ORIGIN_FORBIDDEN = 'ERR_ORIGIN_FORBIDDEN';
/** The session store failed, timed out or is disconnected. */
export const ERR_SESSION_UNAVAILABLE = 'ERR_SESSION_UNAVAILABLE';
/**
 * passportNamespace: a strategy accepted the token, but the expiry it gave (`info.exp`,
 * `info.expires`, or the JWT's `exp` claim) is unusable: not a time, or in the wrong unit. The
 * message names the field. Refused rather than let a token in that would never expire.
 */
export const ERR_BAD_TOKEN_EXPIRY = 'ERR_BAD_TOKEN_EXPIRY';

/**
 * `rateLimit`: a limit was reached (connections of a user, a session or an address; events of a
 * user). `data.retryAfterMs` says when trying again can succeed.
 */
export const ERR_RATE_LIMITED = 'ERR_RATE_LIMITED';

/** Every code a {@link SessionAuthError} can carry in `data.code`. */
export type SessionAuthErrorCode =
  | typeof ERR_MIDDLEWARE_ENDED
  | typeof ERR_MIDDLEWARE_TIMEOUT
  | typeof ERR_MIDDLEWARE_ERROR
  | typeof ERR_UNAUTHORIZED
  | typeof ERR_FORBIDDEN
  | typeof ERR_AUTHORIZE_ERROR
  | typeof ERR_ORIGIN_FORBIDDEN
  | typeof ERR_SESSION_UNAVAILABLE
  | typeof ERR_BAD_TOKEN_EXPIRY
  | typeof ERR_RATE_LIMITED;

/** What the client receives as `err.data` in its `connect_error` handler. */
export interface SessionAuthErrorData {
  /** A stable, documented code: switch on it, never on the message. */
  code: SessionAuthErrorCode;
  /** The HTTP-style status: 401, 403, 429, 302, 500, 503, … */
  status: number;
  /** The `Location` header, when the middleware answered with a redirect. */
  location?: string;
  /** The room a room policy refused to let the socket join (`socket.join()`'s rejection). */
  room?: string;
  /** `ERR_RATE_LIMITED`: in how many milliseconds trying again can succeed. */
  retryAfterMs?: number;
  /**
   * Why the socket has no user, or was refused, for the developer: only with sessionNamespace's
   * `explain` (never with NODE_ENV=production). See docs/diagnostics.md, "Why is there no user?".
   */
  reason?: NoUserReason;
}

/** Messages and reasons sent to clients are cut to this many characters. */
export const MAX_MESSAGE_LENGTH = 200;

/**
 * The one error class this package refuses sockets with. It has the shape of Socket.IO's
 * `ExtendedError`: Socket.IO sends only `message` and `data` to the client.
 *
 * @example
 * ```ts
 * // client side
 * socket.on('connect_error', (err) => {
 *   if (err.data?.code === 'ERR_UNAUTHORIZED') location.assign('/login');
 * });
 * ```
 */
export class SessionAuthError extends Error {
  override name = 'SessionAuthError';
  readonly data: SessionAuthErrorData;

  constructor(message: string, data: SessionAuthErrorData, options?: { cause?: unknown }) {
    super(message.slice(0, MAX_MESSAGE_LENGTH), options);
    this.data = data;
  }
}

/**
 * What a step that may refuse gives back: its value when it went through, or the refusal, a
 * {@link SessionAuthError} with its code (and, when a check, a store or a strategy failed, that
 * failure as its `cause`, for `onError`). The one convention of decide, requireAuth, the live
 * authorization, tokens and refreshes: told apart with `instanceof SessionAuthError`.
 */
export type OrRefusal<T> = T | SessionAuthError;

/** Builds a refusal whose message is the standard status text, e.g. 'Unauthorized'. */
export function refusal(
  code: SessionAuthErrorCode,
  status: number,
  cause?: unknown,
): SessionAuthError {
  return new SessionAuthError(STATUS_CODES[status] ?? 'Error', { code, status }, { cause });
}

/**
 * Reports an error the client was not shown in full: to `onError` when given, else as Express's
 * final handler does (5xx to `console.error`), and always to the debug log.
 */
export function report(
  onError: ErrorHook | undefined,
  error: unknown,
  socket: Socket,
  status = 500,
): void {
  debug('nsp %s socket %s: %O', socket.nsp.name, socket.id, error);
  if (onError) {
    try {
      onError(error, socket);
    } catch (hookError) {
      debug('onError threw: %O', hookError);
    }
  } else if (status >= 500) {
    console.error('socket.io-session-auth:', error);
  }
}

/** An Error for what a store or a callback passed as an error, whatever it was. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : 'session store error', { cause: value });
}
