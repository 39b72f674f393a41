// Setup checks shared by the factories: each throws, at once, a TypeError that names the helper.
import type { Namespace, Server } from 'socket.io';
import type { ExpressApp, NamespaceTarget, PassportAuthenticator } from '../core/types.js';

export function checkOptions<T extends object>(helper: string, options: T | undefined): Partial<T> {
  const value: unknown = options;
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object') {
    throw new TypeError(`${helper}: options must be an object`);
  }
  return value;
}

export function checkFunction(helper: string, name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new TypeError(`${helper}: ${name} must be a function`);
  }
}

export function checkBoolean(helper: string, name: string, value: unknown): void {
  if (typeof value !== 'boolean') {
    throw new TypeError(`${helper}: ${name} must be a boolean`);
  }
}

const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export function checkTimeout(helper: string, timeoutMs: unknown, name = 'options.timeoutMs'): void {
  if (
    timeoutMs !== undefined &&
    !(typeof timeoutMs === 'number' && timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS)
  ) {
    throw new TypeError(
      `${helper}: ${name} must be a number of milliseconds between 1 and ${MAX_TIMEOUT_MS}`,
    );
  }
}

/** A middleware or a non-empty list of (req, res, next) middleware; throws naming `helper`. */
export function checkMiddleware(
  helper: string,
  middleware: unknown,
): ((req: unknown, res: unknown, next: (err?: unknown) => void) => unknown)[] {
  const list: unknown[] = Array.isArray(middleware) ? [...(middleware as unknown[])] : [middleware];
  if (list.length === 0) throw new TypeError(`${helper}: expected at least one middleware`);
  list.forEach((fn, i) => {
    const which = Array.isArray(middleware) ? `middleware[${i}]` : 'middleware';
    if (typeof fn !== 'function') {
      throw new TypeError(`${helper}: ${which} must be a function, got ${typeof fn}`);
    }
    if (fn.length === 4) {
      throw new TypeError(
        `${helper}: ${which} takes 4 arguments, so it is an Express error handler; ` +
          'pass (req, res, next) middleware only',
      );
    }
  });
  return list as ((req: unknown, res: unknown, next: (err?: unknown) => void) => unknown)[];
}

/** `storeEvents`: a store event feed (an object with `start`), or undefined; throws naming `helper`. */
export function checkStoreEvents(helper: string, feed: unknown): void {
  if (feed === undefined) return;
  if (
    feed === null ||
    typeof feed !== 'object' ||
    typeof (feed as { start?: unknown }).start !== 'function'
  ) {
    throw new TypeError(
      `${helper}: options.storeEvents must be a store event feed (an object with start(sink)), ` +
        'such as redisStoreEvents({ client })',
    );
  }
}

/** An Express application, or undefined; throws naming `helper`. */
export function checkApp(helper: string, app: unknown): void {
  if (app === undefined) return;
  const { get, request, response } = app as Partial<ExpressApp>;
  if (typeof get !== 'function' || typeof request !== 'object' || typeof response !== 'object') {
    throw new TypeError(`${helper}: options.app must be an Express application`);
  }
}

/** `allowedOrigins`: an array of bare origins, or a function; throws naming `helper`. */
export function checkAllowedOrigins(helper: string, value: unknown): void {
  if (value === undefined || typeof value === 'function') return;
  if (!Array.isArray(value)) {
    throw new TypeError(
      `${helper}: options.allowedOrigins must be an array of origins or a function`,
    );
  }
  for (const origin of value as unknown[]) {
    if (typeof origin !== 'string' || !isBareOrigin(origin)) {
      throw new TypeError(
        `${helper}: options.allowedOrigins must hold origins such as 'https://app.example' ` +
          `(a scheme and a host, no path), got ${JSON.stringify(origin)}`,
      );
    }
  }
}

// An origin as a browser sends it: scheme, host and port only ('https://app.example:443' is fine,
// it is the same origin as 'https://app.example').
function isBareOrigin(value: string): boolean {
  const rest = value.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#@]*/i, '');
  if (rest !== '' && rest !== '/') return false;
  try {
    return new URL(value).origin !== 'null';
  } catch {
    return false;
  }
}

// Namespaces that requireAuth guards: sessionNamespace must come first on them, or the guard
// would run before any session is read.
const guarded = new WeakSet<Namespace>();

function isServer(target: NamespaceTarget): target is Server {
  return typeof (target as Partial<Server>).of === 'function';
}

/** Resolves a Server to its default namespace; throws a TypeError naming `helper` otherwise. */
export function toNamespace(target: unknown, helper: string): Namespace {
  if (target !== null && typeof target === 'object') {
    const candidate = target as NamespaceTarget;
    if (isServer(candidate)) return candidate.of('/');
    if (typeof candidate.use === 'function' && typeof candidate.name === 'string') return candidate;
  }
  throw new TypeError(`${helper}: target must be a Socket.IO Server or Namespace`);
}

export function markGuarded(nsp: Namespace): void {
  guarded.add(nsp);
}

export function isGuarded(nsp: Namespace): boolean {
  return guarded.has(nsp);
}

// The namespaces whose sockets the package tracks (sessionNamespace, passportNamespace: the
// children of a parent too), and the servers that have one: presence counts nobody elsewhere.
const tracking = new WeakSet<Namespace | Server>();

export function markTracking(nsp: Namespace): void {
  tracking.add(nsp);
  tracking.add(nsp.server);
}

/** Whether sockets of the namespace (or of some namespace of the server) are tracked. */
export function isTracking(target: Namespace | Server): boolean {
  return tracking.has(target);
}

/** Checks that `io` is a Socket.IO Server (not a namespace); throws a TypeError naming `helper`. */
export function toServer(io: unknown, helper: string): Server {
  if (io !== null && typeof io === 'object' && isServer(io as NamespaceTarget)) {
    return io as Server;
  }
  throw new TypeError(`${helper}: io must be a Socket.IO Server`);
}

/**
 * A helper's scope (presence, rateLimit): a whole server (`nsp` undefined) or one namespace and
 * its server; throws a TypeError naming `helper` otherwise.
 */
export function toScope(
  target: unknown,
  helper: string,
): { io: Server; nsp: Namespace | undefined } {
  if (target !== null && typeof target === 'object') {
    const { of, server, use, name } = target as Partial<Server & Namespace>;
    if (typeof of === 'function') return { io: target as Server, nsp: undefined };
    if (typeof use === 'function' && typeof name === 'string' && server) {
      return { io: server, nsp: target as Namespace };
    }
  }
  throw new TypeError(`${helper}: target must be a Socket.IO Server or Namespace`);
}

/** Whether `value` is a Passport instance (`initialize` and `session`). */
export function isAuthenticator(value: unknown): value is PassportAuthenticator {
  const { initialize, session } = (value ?? {}) as Partial<PassportAuthenticator>;
  return typeof initialize === 'function' && typeof session === 'function';
}
