// Setup checks shared by the factories: each throws, at once, a TypeError that names the helper.
import type { Namespace, Server } from 'socket.io';
import type { NamespaceTarget } from './types.js';

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

/** Checks that `io` is a Socket.IO Server (not a namespace); throws a TypeError naming `helper`. */
export function toServer(io: unknown, helper: string): Server {
  if (io !== null && typeof io === 'object' && isServer(io as NamespaceTarget)) {
    return io as Server;
  }
  throw new TypeError(`${helper}: io must be a Socket.IO Server`);
}
