// One budget of rateLimit, on rate-limiter-flexible: in this process's memory on one node, in the
// app's Redis on several (so a user's budget spans the nodes). The limiter's store failing is
// never a crash nor a silent pass: `onStoreError` decides, and the caller is told it happened.
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterRes } from 'rate-limiter-flexible';
import { withTimeout } from '../core/with-timeout.js';
import { warnOnce } from '../diagnostics/diagnostics.js';

/** A budget: at most `points` in any window of `durationMs` (a whole number of seconds). */
export interface Budget {
  /**
   * How many points the window allows: one per connection attempt, or per event (its cost, for
   * an event given one).
   */
  points: number;
  /** The window, in milliseconds: a whole number of seconds (Redis keeps it in seconds). */
  durationMs: number;
}

/**
 * What a budget does when the limiter's store (Redis) fails or does not answer within its
 * timeout: `'memory'` counts on in this node's memory meanwhile (each node its own budget, as if
 * alone); `'allow'` lets everything through; `'refuse'` refuses everything, with `retryAfterMs`
 * one window.
 */
export type OnStoreError = 'memory' | 'allow' | 'refuse';

/** Where the budgets are kept. */
export interface LimiterStore {
  /** The app's node-redis (v4 or later) client; undefined: this process's memory. */
  redis: object | undefined;
  /** The prefix of every key, before the budget's name. */
  prefix: string;
  onStoreError: OnStoreError;
  /** How long a Redis answer may take before it counts as a store error. */
  timeoutMs: number;
}

/**
 * A limiter's answer: through, or refused until `retryAfterMs` from now. `storeError`: the store
 * failed and `onStoreError` gave this answer (the caller, which knows the socket, reports it).
 */
export type Verdict = ({ ok: true } | { ok: false; retryAfterMs: number }) & {
  storeError?: true;
};

const TIMED_OUT = Symbol('timed out');

/** How a budget is used, beyond its points and window. */
export interface LimiterUse {
  /**
   * With Redis: once a key is refused, refuse it from this node's memory until its window ends,
   * with no Redis round trip (rate-limiter-flexible's in-memory block). For event budgets, which
   * only consume; never for a budget given points back (`reward`), which the block would not see.
   */
  blockInMemory?: boolean;
}

export class Limiter {
  private main: RateLimiterMemory | RateLimiterRedis;
  /** With Redis and `onStoreError: 'memory'`: this node's own count while Redis is away. */
  private fallback: RateLimiterMemory | undefined;
  private readonly options: { points: number; duration: number; keyPrefix: string };

  constructor(
    /** The budget's name, in its keys: `connections`, `default`, or an event's name. */
    readonly name: string,
    readonly budget: Budget,
    private readonly store: LimiterStore,
    use: LimiterUse = {},
  ) {
    const options = {
      points: budget.points,
      duration: budget.durationMs / 1000,
      keyPrefix: `${store.prefix}:${name}`,
    };
    this.options = options;
    if (store.redis === undefined) {
      this.main = new RateLimiterMemory(options);
      this.fallback = undefined;
    } else {
      // `useRedisPackage`: node-redis (v4 and later), whose eval takes { keys, arguments }.
      this.main = new RateLimiterRedis({
        ...options,
        storeClient: store.redis,
        useRedisPackage: true,
        // Blocked at the first point over the budget, for what is left of the window (no
        // `inMemoryBlockDuration`: the window's own end, as Redis reports it).
        ...(use.blockInMemory === true && { inMemoryBlockOnConsumed: budget.points + 1 }),
      });
      this.fallback = store.onStoreError === 'memory' ? new RateLimiterMemory(options) : undefined;
    }
  }

  /** Takes `points` from `key`'s budget, or says when it will have them. */
  async consume(key: string, points = 1): Promise<Verdict> {
    try {
      const res = await this.bounded(this.main.consume(key, points));
      return res === TIMED_OUT ? await this.failed(res, key, points) : { ok: true };
    } catch (rejection) {
      // rate-limiter-flexible rejects with its result when the budget is spent, with an Error
      // when its store failed.
      if (rejection instanceof Error) return this.failed(rejection, key, points);
      return refused(rejection as RateLimiterRes);
    }
  }

  /** Gives `points` back (a connection that was counted and then refused elsewhere). */
  async reward(key: string, points = 1): Promise<void> {
    await this.bounded(this.main.reward(key, points)).catch(() => undefined);
  }

  /** Forgets `key`'s count: a fresh budget (the test kit's reset). */
  async reset(key: string): Promise<void> {
    await Promise.all([
      this.bounded(this.main.delete(key)).catch(() => undefined),
      this.fallback?.delete(key),
    ]);
  }

  /**
   * Forgets every count of this budget (the test kit's `resetLimits`): a new memory limiter, and
   * in Redis every key under the budget's prefix deleted.
   */
  async resetAll(): Promise<void> {
    if (this.fallback) this.fallback = new RateLimiterMemory(this.options);
    const { redis } = this.store;
    if (redis === undefined) {
      this.main = new RateLimiterMemory(this.options);
      return;
    }
    // This node's in-memory blocks go with the counts (other nodes keep theirs to the window's end).
    if (this.main instanceof RateLimiterRedis) this.main.deleteInMemoryBlockedAll();
    const client = redis as { sendCommand(args: string[]): Promise<unknown> };
    // Glob characters in a budget's name (an event's) match only themselves.
    const pattern = `${this.options.keyPrefix.replace(/[*?[\]\\]/g, '\\$&')}:*`;
    let cursor = '0';
    do {
      const reply = (await client.sendCommand([
        'SCAN',
        cursor,
        'MATCH',
        pattern,
        'COUNT',
        '500',
      ])) as [string, string[]];
      [cursor] = reply;
      if (reply[1].length > 0) await client.sendCommand(['DEL', ...reply[1]]);
    } while (cursor !== '0');
  }

  private bounded<T>(promise: Promise<T>): Promise<T | typeof TIMED_OUT> {
    if (this.store.redis === undefined) return promise;
    return withTimeout<T | typeof TIMED_OUT>(promise, this.store.timeoutMs, () => TIMED_OUT, true);
  }

  private async failed(error: unknown, key: string, points: number): Promise<Verdict> {
    const { onStoreError, timeoutMs } = this.store;
    const why =
      error === TIMED_OUT
        ? `did not answer within ${timeoutMs} ms`
        : `failed (${error instanceof Error ? error.message : String(error)})`;
    warnOnce(
      'SOCKET_IO_SESSION_AUTH_LIMIT_STORE',
      `rateLimit: the limiter's Redis ${why}; budgets follow onStoreError ('${onStoreError}') while it lasts.`,
    );
    if (onStoreError === 'allow') return { ok: true, storeError: true };
    if (onStoreError === 'refuse' || !this.fallback) {
      return { ok: false, retryAfterMs: this.budget.durationMs, storeError: true };
    }
    try {
      await this.fallback.consume(key, points);
      return { ok: true, storeError: true };
    } catch (rejection) {
      return { ...refused(rejection as RateLimiterRes), storeError: true };
    }
  }
}

/** Refused until the window ends (at least a millisecond, so that the wait is never zero). */
function refused(res: RateLimiterRes): Verdict {
  return { ok: false, retryAfterMs: Math.max(Math.ceil(res.msBeforeNext), 1) };
}
