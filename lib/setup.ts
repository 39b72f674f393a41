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
