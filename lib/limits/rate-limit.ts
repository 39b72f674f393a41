// Public: rateLimit, per-user limits on a session namespace (or every session namespace of a
// server): how many sockets a user, a session or an address may have or open, and how many
// events a user may send, one budget across tabs, namespaces and (with `redis`) nodes. A refusal
// is ERR_RATE_LIMITED (429) with `retryAfterMs`.
import type { Namespace, Server } from 'socket.io';
import { checkOptions, toScope } from '../api/setup.js';
import { serverState } from '../core/state.js';
import { publish, type RateLimitedMessage } from '../diagnostics/diagnostics.js';
import { checkConnectionLimits, limitConnections, type ConnectionLimits } from './connections.js';
import { checkEventLimits, limitEvents, type EventLimits } from './events.js';
import {
  Limiter,
  type Budget,
  type LimiterStore,
  type LimiterUse,
  type OnStoreError,
} from './limiter.js';

export type { Budget, OnStoreError };

/** Options for {@link rateLimit}. */
export interface RateLimitOptions {
  /** Limits on sockets: how many at once per user and per session, how many attempts per address. */
  connections?: ConnectionLimits;
  /** Limits on the events sockets send, per user (or session, or address). */
  events?: EventLimits;
  /**
   * Several nodes: the app's node-redis (v4 or later) client. Every budget is then kept in
   * Redis, so that a user has one budget across the nodes, not one per node.
   * @default none: each budget in this process's memory
   */
  redis?: object;
  /**
   * With `redis`: the prefix of the limiter's keys.
   * @default 'socket.io-session-auth:limit'
   */
  redisPrefix?: string;
  /**
   * With `redis`: what a budget does while Redis fails or is slower than `storeTimeoutMs`:
   * `'memory'` counts in this node's memory meanwhile, `'allow'` lets everything through,
   * `'refuse'` refuses everything. Each time, the `rate-limited` diagnostics channel says so
   * (`outcome: 'store-error'`).
   * @default 'memory'
   */
  onStoreError?: OnStoreError;
  /**
   * With `redis`: how long a limiter's Redis command may take before `onStoreError` applies.
   * @default 500
   */
  storeTimeoutMs?: number;
}

/** What the connection and event limits are given: where budgets live, and how to report. */
export interface LimitContext {
  /** The server, and the namespace limited (undefined: every session namespace of the server). */
  io: Server;
  nsp: Namespace | undefined;
  /** Where budgets live (the connection counts keep theirs there too: counts.ts). */
  store: LimiterStore;
  /** A budget, named (its keys' part: `connections`, `ip`, `default`, an event's name). */
  limiter(name: string, budget: Budget, use?: LimiterUse): Limiter;
  /** Publishes on the `rate-limited` channel (built only when someone listens). */
  report(message: () => RateLimitedMessage): void;
}

const helper = 'rateLimit';

/**
 * Limits what each user may open and send, with one budget across their tabs, namespaces and
 * (with `redis`) nodes. A socket over a limit is refused `ERR_RATE_LIMITED` (429) with
 * `err.data.retryAfterMs`; an event over its budget never reaches the app's handler.
 *
 * @example
 * ```ts
 * import { rateLimit, requireAuth, sessionNamespace } from 'socket.io-session-auth';
 *
 * const chat = requireAuth(sessionNamespace(io.of('/chat'), sessionMiddleware, { passport }));
 * rateLimit(chat, {
 *   connections: { perUser: 10, perIp: { points: 30, durationMs: 60_000 } },
 *   events: { default: { points: 10, durationMs: 1000 } },
 * });
 * ```
 *
 * @throws TypeError naming `rateLimit` for a target that is not a Server or Namespace, or an
 * option of the wrong type or range.
 */
export function rateLimit<T extends Server | Namespace>(target: T, options: RateLimitOptions): T {
  const { io, nsp } = toScope(target, helper);
  const checked = checkOptions(helper, options);
  const connections = checkConnectionLimits(helper, checked.connections);
  const events = checkEventLimits(helper, checked.events);
  const store = checkStore(checked);
  const context: LimitContext = {
    io,
    nsp,
    store,
    limiter: (name, budget, use) => {
      const limiter = new Limiter(name, budget, store, use);
      // The test kit's resetLimits finds every budget of the server here.
      serverState(io).limiters.add(limiter);
      return limiter;
    },
    report: (message) => {
      publish('rateLimited', message);
    },
  };
  if (connections) limitConnections(connections, context);
  if (events) limitEvents(events, context);
  return target;
}

function checkStore(options: Partial<RateLimitOptions>): LimiterStore {
  const { redis, redisPrefix = 'socket.io-session-auth:limit' } = options;
  const { storeTimeoutMs = 500 } = options;
  // Checked as what a JavaScript caller may pass.
  const onStoreError: unknown = options.onStoreError ?? 'memory';
  if (redis !== undefined) {
    const client = redis as { sendCommand?: unknown } | null;
    if (typeof client?.sendCommand !== 'function') {
      throw new TypeError(`${helper}: options.redis must be a node-redis client (v4 or later)`);
    }
  }
  if (typeof redisPrefix !== 'string' || redisPrefix === '') {
    throw new TypeError(`${helper}: options.redisPrefix must be a non-empty string`);
  }
  if (onStoreError !== 'memory' && onStoreError !== 'allow' && onStoreError !== 'refuse') {
    throw new TypeError(`${helper}: options.onStoreError must be 'memory', 'allow' or 'refuse'`);
  }
  if (!Number.isInteger(storeTimeoutMs) || storeTimeoutMs < 1) {
    throw new TypeError(
      `${helper}: options.storeTimeoutMs must be a whole number of ms, at least 1`,
    );
  }
  return {
    redis,
    prefix: redisPrefix,
    onStoreError: onStoreError,
    timeoutMs: storeTimeoutMs,
  };
}
