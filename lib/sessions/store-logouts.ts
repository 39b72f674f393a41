// A session destroyed at its store ends its sockets, whoever destroyed it: Passport's req.logout()
// and req.login() (both regenerate), req.session.destroy() and regenerate(), express-session's
// `unset: 'destroy'`, admin code calling store.destroy(sid). The store a socket's request was given
// (and the one the setup probe found) has its own `destroy`, `regenerate` and `set` wrapped once,
// on the instance; every server that saw the store ends the session's sockets on every node
// (live/revocation.ts), so no `app.use` line decides whether a logout is seen. Its `set` and
// `touch` (wrapped too) tell a server's sessionRegistry that a session was seen, with the request
// express-session's Session carries; its destroys take the session out of the registry.
import type { ServerResponse } from 'node:http';
import type { Server } from 'socket.io';
import { debug } from '../diagnostics/debug.js';
import type { EndedHow } from '../diagnostics/diagnostics.js';
import { ERR_SESSION_REVOKED, ERR_SESSION_ROTATED, type SessionEndedCode } from '../core/errors.js';
import { serverState } from '../core/state.js';
import type { SessionRecorder } from './session-registry.js';
import { newStoreWatch, storeWatchOf, type StoreWatch } from '../core/state-fields.js';
import { announceRotation, endEverywhere, sessionKey } from '../live/revocation.js';

type Method = (this: unknown, ...args: unknown[]) => unknown;
type Ending = { code: SessionEndedCode; how: EndedHow; res?: ServerResponse | undefined };

/**
 * Makes `io` hear the destroys of `store` (a session store instance): idempotent per server and
 * store, and the store's methods are wrapped only once. False when the store cannot be watched
 * (no `destroy` method, or a store that refuses new properties).
 */
export function watchStore(io: Server, store: unknown): boolean {
  if (store === null || typeof store !== 'object') return false;
  const server = serverState(io);
  if (server.watchedStores.has(store)) return true;
  const watch = storeWatchOf(store) ?? wrapStore(store);
  if (!watch) return false;
  server.watchedStores.add(store);
  watch.servers.add(new WeakRef(io));
  return true;
}

function wrapStore(store: object): StoreWatch | undefined {
  const { destroy, regenerate, set, touch } = store as Record<string, unknown>;
  if (typeof destroy !== 'function') return undefined;
  try {
    const watch = newStoreWatch(store);
    replace(store, 'destroy', destroyWrapper(watch, destroy as Method));
    if (typeof regenerate === 'function') {
      replace(store, 'regenerate', regenerateWrapper(watch, regenerate as Method));
    }
    if (typeof set === 'function') replace(store, 'set', setWrapper(watch, set as Method));
    if (typeof touch === 'function') replace(store, 'touch', touchWrapper(watch, touch as Method));
    return watch;
  } catch (error) {
    // A frozen or sealed store: its destroys stay unseen (disconnectOnLogout still sees logouts).
    debug('session store not watched: %O', error);
    return undefined;
  }
}

/** An own property of the instance, shadowing the prototype's method (never the prototype). */
function replace(store: object, name: string, wrapper: Method): void {
  const own = Object.getOwnPropertyDescriptor(store, name);
  Object.defineProperty(store, name, {
    value: wrapper,
    writable: true,
    configurable: true,
    enumerable: own?.enumerable ?? false,
  });
}

function destroyWrapper(watch: StoreWatch, destroy: Method): Method {
  return function destroy_(this: unknown, ...args: unknown[]) {
    const [sid] = args;
    if (typeof sid !== 'string') return destroy.apply(this, args);
    // Decided now: the regenerate or the expired save it is part of is under way only this turn.
    const ending = endingOf(watch, sid);
    const recorders = recordersOf(watch);
    if (!ending && recorders.length === 0) return destroy.apply(this, args);
    // Store event feeds hear the delete before the rotation's end (after the response) is sent.
    if (ending?.how === 'rotation') {
      forEachServer(watch, (io) => {
        announceRotation(io, sid);
      });
    }
    return callThen(destroy, this, args, 1, () => {
      for (const registry of recorders) registry.gone(sid);
      if (ending) end(watch, sid, ending);
    });
  };
}

function regenerateWrapper(watch: StoreWatch, regenerate: Method): Method {
  return function regenerate_(this: unknown, ...args: unknown[]) {
    const [req] = args;
    const sid = (req as { sessionID?: unknown } | null | undefined)?.sessionID;
    if (req === null || typeof req !== 'object' || typeof sid !== 'string') {
      return regenerate.apply(this, args);
    }
    const mark = { req, seen: false };
    watch.regenerating.set(sid, mark);
    try {
      return callThen(regenerate, this, args, 1, () => {
        // A store whose regenerate does not go through its own destroy.
        if (!mark.seen) end(watch, sid, regenerated(req));
      });
    } finally {
      if (watch.regenerating.get(sid) === mark) watch.regenerating.delete(sid);
    }
  };
}

function setWrapper(watch: StoreWatch, set: Method): Method {
  return function set_(this: unknown, ...args: unknown[]) {
    const [sid, session] = args;
    if (typeof sid !== 'string') return set.apply(this, args);
    if (!cookieExpired(session)) return recordThen(watch, set, this, args);
    watch.expiring.add(sid);
    try {
      return set.apply(this, args);
    } finally {
      watch.expiring.delete(sid);
    }
  };
}

/** express-session touches an unchanged session (its expiry moves): a sign of activity. */
function touchWrapper(watch: StoreWatch, touch: Method): Method {
  return function touch_(this: unknown, ...args: unknown[]) {
    return typeof args[0] === 'string'
      ? recordThen(watch, touch, this, args)
      : touch.apply(this, args);
  };
}

/** The servers hearing the store that keep a registry of sessions (sessionRegistry). */
function recordersOf(watch: StoreWatch): SessionRecorder[] {
  const recorders: SessionRecorder[] = [];
  for (const ref of watch.servers) {
    const io = ref.deref();
    const registry = io && serverState(io).registry;
    if (registry) recorders.push(registry);
  }
  return recorders;
}

/**
 * A store's `set` or `touch(sid, session, cb)`: once the store has it, each registry is told,
 * with the request express-session's Session carries (non-enumerable `req`).
 */
function recordThen(watch: StoreWatch, method: Method, self: unknown, args: unknown[]): unknown {
  const recorders = recordersOf(watch);
  if (recorders.length === 0) return method.apply(self, args);
  const [sid, session] = args as [string, unknown];
  return callThen(method, self, args, 2, () => {
    const req = (session as { req?: unknown } | null | undefined)?.req;
    for (const registry of recorders) registry.seen(sid, session, req);
  });
}

function cookieExpired(session: unknown): boolean {
  const expires = (session as { cookie?: { expires?: unknown } } | null | undefined)?.cookie
    ?.expires;
  if (!(expires instanceof Date) && typeof expires !== 'string') return false;
  return new Date(expires).getTime() <= Date.now();
}

/**
 * How a destroy of `sid` starting now ends its sockets. Not at all when it comes of saving an
 * expired session (connect-redis does that): an expiry is the expiry check's to end, at its time
 * and with its code (live/expiry.ts), which then finds the session gone.
 */
function endingOf(watch: StoreWatch, sid: string): Ending | undefined {
  const mark = watch.regenerating.get(sid);
  if (mark) {
    mark.seen = true;
    return regenerated(mark.req);
  }
  if (watch.expiring.has(sid)) return undefined;
  return { code: ERR_SESSION_REVOKED, how: 'destroy' };
}

/**
 * Passport's login sets req.user before it regenerates (a rotation: the client must hold the new
 * cookie before it reconnects, so after the response); its logout clears req.user first.
 */
function regenerated(req: object): Ending {
  const { user, res } = req as { user?: unknown; res?: unknown };
  if (!user) return { code: ERR_SESSION_REVOKED, how: 'logout' };
  const response = res as Partial<ServerResponse> | undefined;
  return {
    code: ERR_SESSION_ROTATED,
    how: 'rotation',
    res: typeof response?.on === 'function' ? (response as ServerResponse) : undefined,
  };
}

/** Calls `fn` with each live server that hears the store (a closed one is forgotten). */
function forEachServer(watch: StoreWatch, fn: (io: Server) => void): void {
  for (const ref of watch.servers) {
    const io = ref.deref();
    if (io === undefined) watch.servers.delete(ref);
    else fn(io);
  }
}

function end(watch: StoreWatch, sid: string, { code, how, res }: Ending): void {
  const endNow = (): void => {
    forEachServer(watch, (io) => {
      // Fire and forget, but never an unhandled rejection: an app's 'disconnect' listener that
      // throws would otherwise take the process down from inside a store's callback.
      endEverywhere(io, sessionKey(sid), code, how).catch(reportEndFailed);
    });
  };
  if (res) afterResponse(res, endNow);
  else endNow();
}

/** A fire-and-forget ending that failed: for the developer, never the app's caller. */
export function reportEndFailed(error: unknown): void {
  debug('ending the sockets of a destroyed session failed: %O', error);
}

/**
 * Calls `fn` as it was called, with `then` run once it succeeded: inside the callback at `index`
 * (before the caller's own, so before the app answers), else when the promise it returns fulfils
 * (the caller gets that promise, which settles as the store's did), else once it returns.
 */
function callThen(fn: Method, self: unknown, args: unknown[], index: number, then: () => void) {
  const done = args[index];
  if (typeof done === 'function') {
    const copy = [...args];
    copy[index] = function (this: unknown, err?: unknown, ...rest: unknown[]) {
      if (!err) then();
      return (done as Method).call(this, err, ...rest);
    };
    return fn.apply(self, copy);
  }
  const result = fn.apply(self, args);
  if (typeof (result as Partial<PromiseLike<unknown>> | undefined)?.then === 'function') {
    // The caller gets the store's own promise (its identity and any methods of its own).
    (result as PromiseLike<unknown>).then(then, () => undefined);
    return result;
  }
  then();
  return result;
}

/** Runs `fn` once the response is sent (or its connection is gone). */
export function afterResponse(res: ServerResponse, fn: () => void): void {
  if (res.writableFinished || res.destroyed) {
    fn();
    return;
  }
  let called = false;
  const once = (): void => {
    if (called) return;
    called = true;
    res.off('finish', once);
    res.off('close', once);
    fn();
  };
  res.on('finish', once);
  res.on('close', once);
}
