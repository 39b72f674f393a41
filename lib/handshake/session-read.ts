// The session read of one handshake: the app's session middleware (one store read), then
// passport.session() (the user: one deserializeUser), run through core/chain.ts on the socket's own
// request with a small response. Store failures are named where they happen.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'socket.io';
import { type Chain, type Middleware, endedRefusal, runChain } from '../core/chain.js';
import {
  ERR_MIDDLEWARE_TIMEOUT,
  ERR_SESSION_UNAVAILABLE,
  type SessionAuthError,
  refusal,
  toError,
} from '../core/errors.js';
import { publish, warnOnce } from '../diagnostics/diagnostics.js';
import { connectionRequestOf, cookieIDOf, watchCookieID } from '../core/request.js';
import { ReadResponse, endedMessage } from '../core/response.js';
import type { HandshakeOptions } from '../core/state.js';
import { sessionUserOf } from '../core/user.js';
import type { SessionRequest } from '../core/types.js';
import { knowStore, reasonsWanted, skipIsNamed, storeIsDown } from '../diagnostics/explain.js';

/** A namespace's session read, built once: its options and its chain (session, then user). */
export interface SessionReader {
  readonly options: HandshakeOptions;
  readonly chain: Chain<ReadResponse>;
}

export function sessionReader(options: HandshakeOptions): SessionReader {
  const { passport, timeoutMs, onError } = options;
  // passport.initialize() is left out: since Passport 0.6, passport.session() sets up req.login,
  // req.logout and isAuthenticated itself.
  const passportSession = passport?.session() as Middleware | undefined;
  const middleware: Middleware[] = [readStoreStep(options)];
  if (passportSession) middleware.push(markPassport, passportSession);
  const chain: Chain<ReadResponse> = {
    middleware,
    timeoutMs,
    onError,
    express: false,
    // A store read that never answers is the store's failure; a deserializeUser that hangs is not.
    timeout: (index, read) => {
      if (index !== 0 || read.storeAnswered) return refusal(ERR_MIDDLEWARE_TIMEOUT, 503);
      storeFailed(read, 'timeout', undefined);
      return refusal(ERR_SESSION_UNAVAILABLE, 503);
    },
  };
  return { options, chain };
}

/** Runs the chain on the socket's request: `done` gets the refusal, or the response it read with. */
export function readSession(
  reader: SessionReader,
  socket: Socket,
  req: SessionRequest,
  done: (err: SessionAuthError | undefined, res: ReadResponse) => void,
): void {
  runChain(
    reader.chain,
    socket,
    req,
    (ended) => {
      const res = new ReadResponse((response) => {
        ended(
          endedRefusal(
            response.statusCode,
            endedMessage(response, ''),
            response.getHeader('location'),
          ),
        );
      });
      res.socket = socket;
      return res;
    },
    done,
  );
}

// The store's part: an error or a disconnected store is ERR_SESSION_UNAVAILABLE, at the source.
function readStoreStep(options: HandshakeOptions): Middleware {
  const { session } = options;
  return function readSessionStore(req, res, next) {
    const read = res as ReadResponse;
    // Whether express-session's signature check took an ID from the cookie: for the reason.
    const watch = reasonsWanted(options.explain);
    if (watch) watchCookieID(req as IncomingMessage);
    return session(req, res, (err?: unknown) => {
      read.storeAnswered = true;
      if (watch) read.cookieID = cookieIDOf(req as IncomingMessage);
      const { session: value, sessionStore: store } = req as SessionRequest;
      if (err) {
        storeFailed(read, 'error', err);
        next(refusal(ERR_SESSION_UNAVAILABLE, 503, toError(err)));
        return;
      }
      if (store !== undefined) knowStore(session, store);
      if (value === undefined) {
        // express-session gives no session when its store has disconnected, and when the
        // cookie's path does not cover the request's: only the first is the store's failure.
        if (storeIsDown(session)) {
          const error = new Error('the session store is disconnected');
          storeFailed(read, 'disconnected', error);
          next(refusal(ERR_SESSION_UNAVAILABLE, 503, error));
          return;
        }
        read.skipped = true;
        // Said once: the setup probe's cookie path warning has named this mistake already.
        if (!skipIsNamed(session)) warnSkipped(req as IncomingMessage);
        // No session: nothing more to read (passport.session() would fail without one).
        next('router');
        return;
      }
      next();
    });
  };
}

function warnSkipped(req: IncomingMessage): void {
  warnOnce(
    'SOCKET_IO_SESSION_AUTH_SESSION_SKIPPED',
    `sessionNamespace: the session middleware set no session on a handshake of ${
      req.url?.split('?')[0] ?? 'the Socket.IO path'
    } while its store is not known to be down: the session cookie's \`path\` must be \`/\` or ` +
      'a prefix of the Socket.IO path, or the store disconnected without saying so. Until then ' +
      'sockets have no session and no user, and requireAuth refuses them (401).',
  );
}

// Before passport.session(): what the request and the session held, for sharing and the reason.
const markPassport: Middleware = function markPassport(req, res, next) {
  const read = res as ReadResponse;
  read.keysBeforePassport = Reflect.ownKeys(req as object);
  read.hadUser = sessionUserOf((req as SessionRequest).session) !== undefined;
  next();
};

/** Engine-level middleware (io.engine.use(session)) read the session already: a second read. */
export function warnIfReadTwice(req: SessionRequest): void {
  const connectionRequest = connectionRequestOf(req as unknown as IncomingMessage);
  if ((connectionRequest as { session?: unknown }).session !== undefined) {
    warnOnce(
      'SOCKET_IO_SESSION_AUTH_DOUBLE_READ',
      'sessionNamespace: the session is also read by engine-level middleware ' +
        '(io.engine.use(session)): each connection reads the store twice. sessionNamespace ' +
        'reads it for its namespaces: the engine-level one can go.',
    );
  }
}

/** A store failure during a read, for the diagnostics (the refusal itself is made by the caller). */
function storeFailed(
  res: ReadResponse,
  kind: 'error' | 'timeout' | 'disconnected',
  error: unknown,
): void {
  const { socket } = res;
  if (!socket) return;
  publish('storeError', () => ({ namespace: socket.nsp.name, socketId: socket.id, kind, error }));
}

/**
 * The session ID, when it names a session the store has seen: express-session keeps the ID of the
 * cookie only when the store returned its session, and makes up a new one otherwise (a stranger, a
 * session gone from the store). A made-up ID is in no cookie the client sent.
 */
export function storedSessionID(req: SessionRequest): string | undefined {
  const { sessionID, sessionStore } = req;
  if (typeof sessionID !== 'string' || sessionID === '' || sessionStore === undefined) {
    return undefined;
  }
  const cookie = req.headers.cookie ?? '';
  return cookie.includes(sessionID) || cookie.includes(encodeURIComponent(sessionID))
    ? sessionID
    : undefined;
}
