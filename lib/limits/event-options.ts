// rateLimit's `events` option: its type, its check (eager, a TypeError naming the helper), and
// the package's own events, which count only when the app gives them a budget of their own.
import { TOKEN_EVENT } from '../tokens/token.js';
import type { Budget } from './limiter.js';

/** What a budget counts by: a user across their sessions, one session, or one address. */
export type By = 'user' | 'session' | 'ip';

/** Options of {@link rateLimit}'s `events`. */
export interface EventLimits {
  /**
   * The budget of every event without one of its own in `budgets` (the package's own events,
   * such as `session:token`, excepted).
   * @default none: only the events named in `budgets` are limited
   */
  default?: Budget;
  /**
   * Budgets by event name, e.g. `{ message: { points: 10, durationMs: 1000 } }`. An event with
   * its own budget counts against it alone, not against `default`.
   */
  budgets?: Record<string, Budget>;
  /**
   * Points an event costs, by name, against the budget it counts against (at most its points).
   * @default 1
   */
  cost?: Record<string, number>;
  /**
   * What a budget counts by. `'user'`: one budget per user, across their sessions, tabs,
   * namespaces and nodes; a socket without a user counts by its session, one without a session
   * by its address (Express's `req.ip`, so the app's `trust proxy` applies). `'session'`: per
   * session (or address). `'ip'`: per address.
   * @default 'user'
   */
  by?: By;
  /**
   * A socket whose events are refused this many times in a row (no event of it that a budget
   * counts going through in between; events no budget counts do not break the row) is ended:
   * `session:ended` with `ERR_RATE_LIMITED`.
   * @default none: refused events never end the socket
   */
  endAfter?: number;
}

/**
 * The package's own events a client sends: not counted against `default` (a chat flood must not
 * stop a token's renewal), only against a budget the app names them in.
 */
export const RESERVED_EVENTS: ReadonlySet<string> = new Set([TOKEN_EVENT]);

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

const isCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 1;

/** Checks a budget: whole points, a window of whole seconds. */
export function checkBudget(helper: string, name: string, value: unknown): Budget {
  if (!isObject(value)) {
    throw new TypeError(`${helper}: ${name} must be a budget, { points, durationMs }`);
  }
  const { points, durationMs } = value;
  if (!isCount(points)) {
    throw new TypeError(`${helper}: ${name}.points must be a whole number, at least 1`);
  }
  if (!isCount(durationMs) || durationMs % 1000 !== 0) {
    throw new TypeError(`${helper}: ${name}.durationMs must be a whole number of seconds, in ms`);
  }
  return { points, durationMs };
}

/** Checks `options.events` as what a JavaScript caller may pass. */
export function checkEventLimits(helper: string, value: unknown): EventLimits | undefined {
  if (value === undefined) return undefined;
  const name = 'options.events';
  if (!isObject(value)) throw new TypeError(`${helper}: ${name} must be an object`);
  const { by = 'user', endAfter, cost = {}, budgets = {} } = value;
  if (by !== 'user' && by !== 'session' && by !== 'ip') {
    throw new TypeError(`${helper}: ${name}.by must be 'user', 'session' or 'ip'`);
  }
  if (endAfter !== undefined && !isCount(endAfter)) {
    throw new TypeError(`${helper}: ${name}.endAfter must be a whole number, at least 1`);
  }
  const fallback =
    value.default === undefined ? undefined : checkBudget(helper, `${name}.default`, value.default);
  if (!isObject(budgets)) throw new TypeError(`${helper}: ${name}.budgets must be an object`);
  const own: Record<string, Budget> = {};
  for (const [event, budget] of Object.entries(budgets)) {
    own[event] = checkBudget(helper, `${name}.budgets[${JSON.stringify(event)}]`, budget);
  }
  if (!fallback && Object.keys(own).length === 0) {
    throw new TypeError(`${helper}: ${name} needs a default budget or budgets by event`);
  }
  if (!isObject(cost)) throw new TypeError(`${helper}: ${name}.cost must be an object`);
  const costs: Record<string, number> = {};
  for (const [event, points] of Object.entries(cost)) {
    const where = `${name}.cost[${JSON.stringify(event)}]`;
    const budget = own[event] ?? (RESERVED_EVENTS.has(event) ? undefined : fallback);
    if (!isCount(points))
      throw new TypeError(`${helper}: ${where} must be a whole number, at least 1`);
    // An event no budget counts, or one that costs more than its whole budget, is a mistake.
    if (!budget)
      throw new TypeError(`${helper}: ${where}: the event has no budget to count against`);
    if (points > budget.points) {
      throw new TypeError(`${helper}: ${where} is more than its budget's ${budget.points} points`);
    }
    costs[event] = points;
  }
  return { default: fallback, budgets: own, cost: costs, by, endAfter };
}
