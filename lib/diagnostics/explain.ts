// "Why is there no user?" and the setup mistakes behind most such questions: the precise reason an
// anonymous socket has no user (computed only when someone looks: `explain`, a diagnostics
// subscriber, or the debug log), whether a session middleware that gave no session skipped the
// request or lost its store, and the warnings, once per process, about a setup that cannot work
// as the app expects.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'socket.io';
import { debug } from './debug.js';
import { type NoUserReason, REASONS, listening, warnOnce } from './diagnostics.js';
import type { Middleware } from '../core/chain.js';
import { SessionReadResponse } from '../core/response.js';
import { keepWhy } from '../core/state-fields.js';
import type { ExpressApp } from '../core/types.js';
import { sessionUserOf } from '../core/user.js';

type Store = NodeJS.EventEmitter & {
  get?: (sid: string, cb: (err: unknown, data?: unknown) => void) => void;
};

// Whether each store we know is up: express-session stops using a store between its 'disconnect'
// and 'connect' events, and then calls next() with no session, as it does for a path it skips.
const stores = new WeakMap<object, { up: boolean }>();
// The store behind each session middleware, once a read (or the setup probe) has shown it.
const storeOf = new WeakMap<Middleware, Store>();

/** Starts following a store's up and down, once. */
export function knowStore(session: Middleware, store: unknown): void {
  if (store === null || typeof store !== 'object') return;
  storeOf.set(session, store as Store);
  if (stores.has(store)) return;
  const state = { up: true };
  stores.set(store, state);
  const emitter = store as Partial<NodeJS.EventEmitter>;
  if (typeof emitter.on !== 'function') return;
  emitter.on('disconnect', () => {
    state.up = false;
  });
  emitter.on('connect', () => {
    state.up = true;
  });
}

/** The store behind the session middleware, once a read or the setup probe has shown it. */
export function knownStore(session: Middleware): object | undefined {
  return storeOf.get(session);
}

/** Whether the session middleware's store is known to be disconnected. */
export function storeIsDown(session: Middleware): boolean {
  const store = storeOf.get(session);
  return store !== undefined && stores.get(store)?.up === false;
}

const probed = new WeakSet<Middleware>();
// Session middleware the setup probe found giving no session on the Socket.IO path: the cookie
// path warning named that mistake, so a handshake it skips is not warned about again.
const skipsSocketPath = new WeakSet<Middleware>();

/** Whether the setup probe already named why this middleware gives handshakes no session. */
export function skipIsNamed(session: Middleware): boolean {
  return skipsSocketPath.has(session);
}
// The session cookie's name of each session middleware, as the setup probe saw express-session
// look it up (it keeps the name to itself).
const cookieNames = new WeakMap<Middleware, string>();

/** The session middleware's cookie name, when the setup probe learned it. */
export function sessionCookieName(session: Middleware): string | undefined {
  return cookieNames.get(session);
}

/**
 * Runs the session middleware once, at setup, on a request for the Socket.IO path: a middleware
 * that gives it no session (express-session does that for a path its cookie's `path` does not
 * cover) would give no socket a session; one that does shows its store, and express-session its
 * cookie's name (given no cookie, it looks for one under that name in `req.signedCookies`).
 */
export function probeSession(session: Middleware, app: ExpressApp, path: string): void {
  if (probed.has(session)) return;
  probed.add(session);
  const url = `${path}/?EIO=4&transport=websocket`;
  const req = Object.assign(Object.create(app.request) as object, {
    url,
    originalUrl: url,
    method: 'GET',
    headers: {},
    socket: { encrypted: false, remoteAddress: '127.0.0.1' },
    connection: { encrypted: false, remoteAddress: '127.0.0.1' },
    signedCookies: new Proxy(
      {},
      {
        get: (_target, key) => {
          if (typeof key === 'string' && !cookieNames.has(session)) cookieNames.set(session, key);
          return undefined;
        },
      },
    ),
  }) as { session?: unknown; sessionStore?: unknown };
  try {
    session(req, new SessionReadResponse(() => undefined), (err?: unknown) => {
      if (err) return;
      if (req.sessionStore !== undefined) knowStore(session, req.sessionStore);
      else if (req.session === undefined) {
        skipsSocketPath.add(session);
        warnOnce(
          'SOCKET_IO_SESSION_AUTH_COOKIE_PATH',
          `sessionNamespace: the session middleware gives no session to a request for ${path}/: ` +
            "the session cookie's `path` must be `/` or a prefix of the Socket.IO path, or the " +
            'browser never sends the cookie there. Until then no socket has a session or a user.',
        );
      }
    });
  } catch (error) {
    debug('sessionNamespace: probing the session middleware failed: %O', error);
  }
}

/** Whether the reasons are wanted: they cost a little (and sometimes a store read). */
export function reasonsWanted(explain: boolean): boolean {
  return explain || debug.enabled || listening('handshake');
}

type ReasonRequest = Pick<IncomingMessage, 'headers'> & {
  session?: unknown;
  sessionStore?: Store;
  user?: unknown;
};

/** The value of the first cookie named `name` in a Cookie header, if it has a non-empty one. */
function cookieValue(header: string, name: string): string | undefined {
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}

/** What the session read showed about the request's session cookie. */
export interface CookieFacts {
  /** The session ID express-session took from the cookie (its signature checked), if it ran. */
  taken: { id: string | undefined } | undefined;
  /** The session cookie's name, when the setup probe learned it. */
  name: string | undefined;
}

/**
 * Why a socket whose session read went through has no user. `stored` tells whether the session is
 * one the store returned; `hadUser` whether it held a Passport user before passport.session() ran.
 */
export function whyNoUser(
  req: ReasonRequest,
  facts: { stored: boolean; hadUser: boolean; passport: boolean; cookie: CookieFacts },
  done: (reason: NoUserReason) => void,
): void {
  const session = req.session;
  const sessionUser = sessionUserOf(session);
  if (facts.stored || (session !== undefined && req.sessionStore === undefined)) {
    // A session the store returned, or one kept in its cookie (cookie-session).
    if (!facts.passport && sessionUser !== undefined) done('passport-not-given');
    else if (facts.hadUser) done('user-not-found');
    else if (sessionUser === undefined && req.headers.cookie === undefined)
      done('no-cookie-header');
    else done('no-passport-user');
    return;
  }
  const header = req.headers.cookie;
  if (header === undefined || header === '') {
    done('no-cookie-header');
    return;
  }
  // The signature first, as express-session checks it (every secret of its list): a cookie its
  // secrets did not sign is bad-signature whether or not the store knows the ID it names.
  const { taken, name } = facts.cookie;
  if (taken?.id !== undefined) {
    // Signed by this app, and the store did not return its session.
    done('session-not-found');
    return;
  }
  if (taken !== undefined) {
    // express-session took no ID: a cookie of its name, signed by another secret, tampered or not
    // signed at all (it ignores those); else no session cookie came.
    const present = name !== undefined ? cookieValue(header, name) !== undefined : undefined;
    done(
      (present ?? signedSessionID(header) !== undefined) ? 'bad-signature' : 'no-session-cookie',
    );
    return;
  }
  // express-session did not say (another session middleware with a store): the store tells
  // whether the ID of a signed-looking cookie is one it has.
  const sid = signedSessionID(header);
  const get = req.sessionStore?.get;
  if (sid === undefined || typeof get !== 'function') {
    done(sid === undefined ? 'no-session-cookie' : 'session-not-found');
    return;
  }
  get.call(req.sessionStore, sid, (err, data) => {
    done(!err && data ? 'bad-signature' : 'session-not-found');
  });
}

/** A signed-looking cookie's session ID (`s:<id>.<signature>`), if the header has one. */
function signedSessionID(header: string): string | undefined {
  for (const part of header.split(';')) {
    const value = part.slice(part.indexOf('=') + 1).trim();
    let decoded: string;
    try {
      decoded = decodeURIComponent(value);
    } catch {
      continue;
    }
    if (decoded.startsWith('s:') && decoded.lastIndexOf('.') > 2) {
      return decoded.slice(2, decoded.lastIndexOf('.'));
    }
  }
  return undefined;
}

/** Keeps why the socket has no user (state-fields.ts), for its refusal and the handshake message. */
export function rememberWhy(socket: Socket, reason: NoUserReason, explain: boolean): void {
  keepWhy(socket, { reason, explain });
  debug('nsp %s socket %s has no user: %s', socket.nsp.name, socket.id, REASONS[reason]);
}

/** `explain`, unless this is production, where the reason never reaches the client. */
export function explainAllowed(explain: boolean, helper: string): boolean {
  if (!explain) return false;
  if (process.env.NODE_ENV === 'production') {
    warnOnce(
      'SOCKET_IO_SESSION_AUTH_EXPLAIN_IN_PRODUCTION',
      `${helper}: explain is ignored with NODE_ENV=production: the reasons stay in the debug log ` +
        'and the diagnostics channels',
    );
    return false;
  }
  return true;
}
