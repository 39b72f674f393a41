// The package's time on a spec server, moved instead of waited for: the test kit's clock
// (lib/testing/clock.ts, behind `kit.clock`), installed on a server the spec started itself.
import { TestClock } from '../../lib/testing/clock.js';
import type { TestServer } from './server.js';

export type { TestClock };

/** A clock for `t`'s expiries, token expiries, revalidation and touches: real until advanced. */
export function testClock(t: Pick<TestServer, 'io'>): TestClock {
  const clock = new TestClock();
  if (!clock.install(t.io)) throw new Error('testClock: the server already has live sockets');
  return clock;
}
