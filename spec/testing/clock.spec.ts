// The test kit's clock (lib/testing/clock.ts, behind kit.clock): while it follows real time, a
// deadline computed from now() and handed to a timer is due exactly then, as the package's expiry
// heap computes its timer (`at - clock.now()`), so an advance to that deadline fires it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestClock } from '../../lib/testing/clock.js';

test('following real time, a timer set for `at - now()` is due at `at`, however long the turn', async () => {
  const clock = new TestClock();
  const at = clock.now() + 60_000;
  const delay = at - clock.now();
  // A busy turn between reading the time and setting the timer, as on a loaded machine: the real
  // time moves on, the clock's time for this turn does not.
  const until = Date.now() + 3;
  while (Date.now() < until) {
    // spinning
  }
  let fired = false;
  clock.setTimeout(() => {
    fired = true;
  }, delay);
  await clock.advanceTo(at - 1);
  assert.equal(fired, false, 'not before its time');
  await clock.advanceTo(at);
  assert.equal(fired, true, 'due at `at`, not after it');
  assert.equal(clock.timers, 0);
});
