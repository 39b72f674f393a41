// Each socket of a layered namespace gets its own `socket.request`, so that two namespaces of one
// connection never see each other's `session` or `user`. It is a view of the connection's request:
// reading a field of it (headers, url, socket, …) reads the connection's; writing one sets it on
// the view alone, as with an object whose prototype is the connection's request. But every view of
// an app shares one prototype (the app's Express request, with accessors to the connection's
// fields), so V8 gives them all one shape: property access in express-session and Passport stays
// fast, and a socket costs one small object instead of hidden classes of its own.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'socket.io';
import {
  cookieWatchOf,
  endCookieWatch,
  ownRequest,
  setOwnRequest,
  watchCookieID as watchView,
} from './state-fields.js';
import type { ExpressApp } from './types.js';

const kConnection = Symbol('connection request');

// What middleware sets on a request: never read through from the connection's request, where
// engine-level middleware may have left its own (`io.engine.use(session)`).
const OWN = new Set<PropertyKey>(['session', 'sessionID', 'sessionStore', 'user']);

interface View {
  [kConnection]: IncomingMessage;
}

function shadow(target: object, key: PropertyKey, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  });
}

function forward(proto: object, key: PropertyKey): void {
  Object.defineProperty(proto, key, {
    configurable: true,
    enumerable: false,
    get(this: View) {
      return (this[kConnection] as unknown as Record<PropertyKey, unknown>)[key];
    },
    set(this: object, value: unknown) {
      shadow(this, key, value);
    },
  });
}

// Express's own `init` and `query` middleware give every request these; here they cost nothing
// until something reads them.
function expressFields(proto: object, app: ExpressApp): void {
  Object.defineProperty(proto, 'originalUrl', {
    configurable: true,
    get(this: IncomingMessage) {
      return this.url;
    },
    set(this: object, value: unknown) {
      shadow(this, 'originalUrl', value);
    },
  });
  Object.defineProperty(proto, 'baseUrl', { configurable: true, writable: true, value: '' });
  Object.defineProperty(proto, 'params', {
    configurable: true,
    get(this: object) {
      const params = {};
      shadow(this, 'params', params);
      return params;
    },
    set(this: object, value: unknown) {
      shadow(this, 'params', value);
    },
  });
  // Express 5 parses `query` in a getter of its request prototype; Express 4 in a middleware.
  if (!('query' in app.request)) {
    Object.defineProperty(proto, 'query', {
      configurable: true,
      get(this: IncomingMessage) {
        const parse = app.get('query parser fn');
        const search = (this.url ?? '').split('?')[1] ?? '';
        const query = typeof parse === 'function' ? (parse as (s: string) => unknown)(search) : {};
        shadow(this, 'query', query);
        return query;
      },
      set(this: object, value: unknown) {
        shadow(this, 'query', value);
      },
    });
  }
}

// express-session's first write of `sessionID` on a request is the ID it took from the session
// cookie once the signature checked out with one of its secrets, or undefined (no cookie of its
// name, or one its secrets did not sign): the one place its signature check shows. Kept, for the
// reason a socket has no user, only for a view being read with a reason wanted: the watch is a
// field of the view (state-fields.ts's kCookieID), set by watchCookieID.
function cookieIDField(proto: object): void {
  Object.defineProperty(proto, 'sessionID', {
    configurable: true,
    // Never read through from the connection's request (see OWN).
    get: () => undefined,
    set(this: object, value: unknown) {
      const watched = cookieWatchOf(this);
      if (watched && !watched.written) {
        watched.written = true;
        watched.id = value;
      }
      // Its own field from now on: the same shape as a plain assignment gives the view.
      shadow(this, 'sessionID', value);
    },
  });
}

/** Watches the view's first `sessionID` write: see {@link cookieIDOf}. */
export function watchCookieID(request: IncomingMessage): void {
  watchView(request);
}

/**
 * What express-session took from the session cookie, and stops watching: `{ id }` with the ID
 * when this app's secret signed the cookie, `{ id: undefined }` when it took none; undefined when
 * nothing wrote `sessionID` (a session middleware other than express-session).
 */
export function cookieIDOf(request: IncomingMessage): { id: string | undefined } | undefined {
  const watched = endCookieWatch(request);
  if (!watched?.written) return undefined;
  return { id: typeof watched.id === 'string' && watched.id !== '' ? watched.id : undefined };
}

// Per app: the prototype of its views, and the own keys of a connection whose fields all have
// accessors already (the last connection checked).
const prototypes = new WeakMap<object, { proto: object; covered: readonly PropertyKey[] }>();

// Connections of one transport have the same own keys, in the same order: comparing them with the
// last ones checked is cheaper than looking each up on the prototype, and keeps no entry per
// connection.
function sameKeys(a: readonly PropertyKey[], b: readonly PropertyKey[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function prototypeFor(app: ExpressApp, connection: IncomingMessage): object {
  let entry = prototypes.get(app.request);
  if (!entry) {
    const created = Object.create(app.request) as object;
    expressFields(created, app);
    cookieIDField(created);
    entry = { proto: created, covered: [] };
    prototypes.set(app.request, entry);
  }
  const { proto } = entry;
  // Fields a connection's request has that no earlier one had (a polling request's, a field
  // engine-level middleware set): one more accessor, once.
  const keys = Reflect.ownKeys(connection);
  if (!sameKeys(keys, entry.covered)) {
    for (const key of keys) {
      if (!OWN.has(key) && !Object.prototype.hasOwnProperty.call(proto, key)) forward(proto, key);
    }
    entry.covered = keys;
  }
  return proto;
}

/** The socket's own request view, made on first use; later uses get the same one. */
export function requestOf(socket: Socket, app: ExpressApp): IncomingMessage {
  const own = ownRequest(socket);
  if (own) return own as IncomingMessage;
  const connection = socket.client.request;
  const view = Object.create(prototypeFor(app, connection)) as View;
  view[kConnection] = connection;
  setOwnRequest(socket, view);
  return view as unknown as IncomingMessage;
}

/** The connection's request behind a socket's view, or the socket's request itself. */
export function connectionRequestOf(request: IncomingMessage): IncomingMessage {
  return (request as Partial<View>)[kConnection] ?? request;
}
