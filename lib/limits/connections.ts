// rateLimit's connection limits: how many sockets a user and a session may have at once (across
// tabs, namespaces and, with redis, nodes), and how many handshakes an address may attempt.
// SKELETON on branch limits-base: the helper that owns this file builds it.
import type { Budget } from './limiter.js';
import type { LimitContext } from './rate-limit.js';

/** Options of {@link rateLimit}'s `connections`. */
export interface ConnectionLimits {
  /** At most this many connected sockets per user. */
  perUser?: number;
  /** At most this many connected sockets per session. */
  perSession?: number;
  /** What a connection over `perUser` or `perSession` does. */
  onExceed?: 'refuse' | 'end-oldest';
  /** Handshake attempts per address, before the session store is read. */
  perIp?: Budget;
}

export function checkConnectionLimits(
  helper: string,
  value: unknown,
): ConnectionLimits | undefined {
  if (value === undefined) return undefined;
  throw new TypeError(`${helper}: options.connections is not built yet`);
}

export function limitConnections(limits: ConnectionLimits, context: LimitContext): void {
  void limits;
  void context;
}
