import type { Namespace, Socket } from 'socket.io';
import { originStep, sessionStep, socketLifecycle, trackStep } from '../handshake/handshake.js';
import { onConnectionEverywhere, useEverywhere } from '../socket-io/namespace-layers.js';
import { knownStore, probeSession } from '../diagnostics/explain.js';
import { watchStore } from '../sessions/store-logouts.js';
import {
  type SessionNamespaceOptions,
  handshakeOptions,
  layerLifecycle,
} from './session-namespace.js';
import { checkOptions, toNamespace } from './setup.js';
import { type HandshakeOptions, socketState } from '../core/state.js';
import { acceptFreshTokens, tokenStep, type TokenSource } from '../tokens/token.js';
import type { ExpressMiddleware, NamespaceTarget, PassportAuthenticator } from '../core/types.js';

/** Options for {@link passportNamespace}: sessionNamespace's, and where tokens come from. */
export interface PassportNamespaceOptions extends Omit<SessionNamespaceOptions, 'passport'> {
  /**
   * The session middleware (express-session or cookie-session), for the `'session'` strategy.
   * @default undefined (required when `strategies` lists `'session'`)
   */
  session?: ExpressMiddleware;
  /**
   * Where a socket's token comes from: the name of a field of the handshake's `auth`
   * (`io(url, { auth: { token } })`), or a function of the socket. The strategies see it as
   * `Authorization: Bearer <token>` on the socket's own request.
   * @default 'token' (socket.handshake.auth.token)
   */
  token?: string | ((socket: Socket) => unknown);
}

function noSession(_req: unknown, _res: unknown, next: () => void): void {
  next();
}

/**
 * Authenticates each namespace connect with Passport strategies, in order, as
 * `passport.authenticate([...])` does over HTTP: `'session'` (the cookie session, when listed, and
 * first) then token strategies (`'jwt'`, `'bearer'`, …) with the handshake's token as
 * `Authorization: Bearer …`. Whichever let the socket in, `socket.request.user`,
 * `socket.data.user`, `requireAuth`, `disconnectUser` and `refreshUser` work the same.
 *
 * The token's expiry ends the socket (`session:ended`, `ERR_SESSION_EXPIRED`) unless the client
 * sends a fresh token for the same user on `session:token` (the ack gets `{ expires }` in
 * milliseconds since epoch: `TokenRenewalAck`). The expiry comes from the strategy's `info`:
 * `exp` in seconds since epoch (as in a JWT), or `expires` as a `Date`, milliseconds since epoch,
 * or an ISO 8601 date-time with its zone (both given: the earlier); else from a JWT's `exp` claim
 * (seconds); else the token does not expire. A present field that is not a usable time (`NaN`, a
 * string that is not ISO 8601, a negative number, an object, an `exp` of 1e11 or more, an `expires`
 * number below 1e11) refuses the token with `ERR_BAD_TOKEN_EXPIRY` (500), whose message names the
 * field; an expiry already past refuses it as an expired token (`ERR_UNAUTHORIZED`).
 *
 * @example
 * ```ts
 * passport.use(new JwtStrategy({ jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(), secretOrKey }, verify));
 * requireAuth(passportNamespace(io.of('/chat'), passport, ['session', 'jwt'], { session: sessionMiddleware }));
 * // a mobile client: io('/chat', { auth: { token } })
 * ```
 */
export function passportNamespace(
  target: NamespaceTarget,
  passport: PassportAuthenticator,
  strategies: readonly string[],
  options?: PassportNamespaceOptions,
): Namespace {
  const helper = 'passportNamespace';
  const nsp = toNamespace(target, helper);
  const { session, token = 'token', ...rest } = checkOptions(helper, options);
  if (!Array.isArray(strategies) || strategies.length === 0) {
    throw new TypeError(`${helper}: strategies must be a non-empty array of strategy names`);
  }
  for (const name of strategies as unknown[]) {
    if (typeof name !== 'string' || name === '') {
      throw new TypeError(`${helper}: strategies must hold strategy names, got ${String(name)}`);
    }
  }
  const withSession = strategies.includes('session');
  if (withSession && session === undefined) {
    throw new TypeError(
      `${helper}: the 'session' strategy needs options.session (the session middleware)`,
    );
  }
  if (typeof token !== 'string' && typeof token !== 'function') {
    throw new TypeError(`${helper}: options.token must be an auth field name or a function`);
  }
  const handshake: HandshakeOptions = handshakeOptions(helper, nsp, session ?? noSession, {
    ...rest,
    passport,
  });
  if (typeof (passport as { authenticate?: unknown }).authenticate !== 'function') {
    throw new TypeError(`${helper}: passport must be a Passport authenticator`);
  }
  const source: TokenSource =
    typeof token === 'function'
      ? token
      : (socket) => (socket.handshake.auth as Record<string, unknown> | undefined)?.[token];
  const tokens = strategies.filter((name) => name !== 'session');

  // In the order they run: the cookie session (origin, session and user, tracking), then tokens.
  if (withSession) {
    useEverywhere(nsp, socketLifecycle, originStep(handshake));
    useEverywhere(nsp, socketLifecycle, sessionStep(handshake));
    useEverywhere(nsp, socketLifecycle, trackStep(handshake));
  }
  if (tokens.length > 0) useEverywhere(nsp, socketLifecycle, tokenStep(handshake, tokens, source));
  layerLifecycle(nsp, handshake);
  if (tokens.length > 0) {
    onConnectionEverywhere(nsp, socketLifecycle, function acceptTokens(socket) {
      const state = socketState(socket);
      if (state?.token && !state.ended) acceptFreshTokens(state, tokens);
    });
  }
  if (withSession) {
    probeSession(handshake.session, handshake.app, nsp.server.path());
    // This node hears its store's destroys before any socket comes (store-logouts.ts).
    watchStore(nsp.server, knownStore(handshake.session));
  }
  return nsp;
}
