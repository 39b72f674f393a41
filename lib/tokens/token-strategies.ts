// Passport strategies run on a token: the strategies' answer (a user, a refusal, or their failure),
// and serializeUser of the user they give.
import type { Socket } from 'socket.io';
import {
  ERR_AUTHORIZE_ERROR,
  ERR_UNAUTHORIZED,
  type OrRefusal,
  type SessionAuthError,
  refusal,
  toError,
} from '../core/errors.js';
import { requestOf } from '../core/request.js';
import { SessionReadResponse } from '../core/response.js';
import type { HandshakeOptions } from '../core/state.js';
import { withTimeout } from '../core/with-timeout.js';

type Authenticate = (
  strategies: readonly string[],
  options: { session: false },
  callback: (err: unknown, user: unknown, info: unknown) => void,
) => (req: unknown, res: unknown, next: (err?: unknown) => void) => void;

type Serialize = (user: unknown, req: unknown, done: (err: unknown, key?: unknown) => void) => void;

/**
 * Runs the strategies on the socket's request with the token as `Authorization: Bearer …` (on the
 * socket's own request: the connection's headers are untouched, and put back after).
 */
export function authenticate(
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

export function serialize(
  options: HandshakeOptions,
  user: unknown,
  req: unknown,
): Promise<unknown> {
  const run = (options.passport as unknown as { serializeUser: Serialize }).serializeUser;
  return new Promise((resolve, reject) => {
    run.call(options.passport, user, req, (err, key) => {
      if (err) reject(toError(err));
      else resolve(key);
    });
  });
}
