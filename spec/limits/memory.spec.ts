// rateLimit's budgets in memory (one node) keep nothing per key once the window is over: 100 000
// distinct keys (users, sessions or addresses) through a budget of a one-second window take
// memory while their window lasts, and give it all back after. Driven through the budget object
// rateLimit builds for each event budget (lib/limits/limiter.ts, on rate-limiter-flexible's
// RateLimiterMemory, whose store keeps one timer per key to delete it): 100 000 distinct users
// through real sockets would take minutes.
//
// How "gone" is checked: the heap after forced collections. It grows by the keys' records while
// the window lasts (checked, so that the measure can see them), and must come back to within a
// tenth of that growth; a key kept past its window (a record, its timer or its key string) keeps
// its bytes and fails it. Waited on, bounded: the heap is read until it is back or the bound
// passes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import vm from 'node:vm';
import { Limiter } from '../../lib/limits/limiter.js';
import { heapAfterGc } from '../support/heap.js';

const KEYS = 100_000;
const WINDOW_MS = 1000;
/** Far below what 100 000 records with a timer each take (about 20 MB, measured). */
const LEAST_GROWTH = KEYS * 64;
/** The window, then time for the last timers to fire and the collections to run, under load. */
const BOUND_MS = WINDOW_MS + 15_000;

test(`a memory budget keeps nothing of ${KEYS.toLocaleString('en-US')} keys after its window`, async () => {
  const limiter = new Limiter(
    'events',
    { points: 2, durationMs: WINDOW_MS },
    { redis: undefined, prefix: 'memory-spec', onStoreError: 'memory', timeoutMs: 500 },
  );
  const key = (i: number): string => `*:u:${i.toString(16).padStart(43, '0')}`;
  const baseline = await heapAfterGc();
  for (let from = 0; from < KEYS; from += 1000) {
    const verdicts = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => limiter.consume(key(from + i))),
    );
    assert.ok(verdicts.every((verdict) => verdict.ok));
  }
  // Read at once, with no timer run in between (support/heap.ts exposed gc): the keys' windows
  // are still open, or most of them under load.
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  gc();
  const growth = process.memoryUsage().heapUsed - baseline;
  // The keys are counted while their window lasts: a second and a third point for the last one.
  assert.deepEqual(await limiter.consume(key(KEYS - 1)), { ok: true });
  assert.equal((await limiter.consume(key(KEYS - 1))).ok, false);
  // Its window began at its first point, before this.
  const lastWindowEnds = Date.now() + WINDOW_MS;
  assert.ok(growth > LEAST_GROWTH, `${KEYS} keys grew the heap by only ${growth} bytes`);

  const deadline = Date.now() + BOUND_MS;
  let left = growth;
  // The clock as well: the last key's timer is the last to run, and a tenth of the growth may be
  // left while it waits; only its window's end can show its fresh budget.
  while (left > growth / 10 || Date.now() < lastWindowEnds) {
    assert.ok(
      Date.now() < deadline,
      `${left} of ${growth} bytes still held ${BOUND_MS} ms after the keys were counted`,
    );
    left = (await heapAfterGc()) - baseline;
  }
  // A key seen again after its window starts a fresh budget.
  assert.deepEqual(await limiter.consume(key(KEYS - 1)), { ok: true });
});
