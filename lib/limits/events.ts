// rateLimit's event limits: how many events a user (or session, or address) may send, with a
// default budget and per-event ones. SKELETON on branch limits-base: its owner builds it.
import type { Budget } from './limiter.js';
import type { LimitContext } from './rate-limit.js';

/** Options of {@link rateLimit}'s `events`. */
export interface EventLimits {
  /** The budget of every event without its own. */
  default?: Budget;
  /** Budgets by event name. */
  budgets?: Record<string, Budget>;
  /** Points an event costs, by name (default 1). */
  cost?: Record<string, number>;
  /** What a budget counts by. */
  by?: 'user' | 'session' | 'ip';
  /** Refused events in a row after which the socket is ended. */
  endAfter?: number;
}

export function checkEventLimits(helper: string, value: unknown): EventLimits | undefined {
  if (value === undefined) return undefined;
  throw new TypeError(`${helper}: options.events is not built yet`);
}

export function limitEvents(limits: EventLimits, context: LimitContext): void {
  void limits;
  void context;
}
