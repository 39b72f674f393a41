// The test kit's clock (lib/testing/clock.ts, behind kit.clock): while it follows real time, a
// deadline computed from now() and handed to a timer is due exactly then, as the package's expiry
// heap computes its timer (`at - clock.now()`), so an advance to that deadline fires it. And an
// advance expires a session at the later of its stored expiry and its sockets' last touch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import session from 'express-session';
import { ERR_SESSION_EXPIRED, requireAuth, sessionNamespace } from '../../lib/index.js';
import { TestClock } from '../../lib/testing/clock.js';
import { connected } from '../support/bounded.js';
import { testClock } from '../support/clock.js';
import { start } from '../support/server.js';
import { expectEnded, watchEnd } from '../support/session-ending.js';
import { readSession, sessionRoutes } from '../support/stores.js';

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

/**
 * A store whose touch moves nothing it stores, as connect-redis's moves only the key's TTL: the
 * stored cookie keeps the last save's expiry, which the session outlives while it is touched.
 */
class TtlOnlyStore extends session.MemoryStore {
  override touch(_sid: string, _session: session.SessionData, callback?: () => void): void {
    callback?.();
  }
}

test("an advance past a touched session's stored expiry keeps it (a store that moves only a TTL); past the touch's, it ends", async (tc) => {
  const t = await start(
    tc,
    ({ io, session: sessionMiddleware, passport }) => {
      requireAuth(
        sessionNamespace(io.of('/chat'), sessionMiddleware, { passport, touchIntervalMs: 1000 }),
      ).on('connection', (socket) => {
        socket.on('echo', (value: unknown, ack: (value: unknown) => void) => {
          ack(value);
        });
      });
    },
    {
      sessionOptions: { store: new TtlOnlyStore(), cookie: { maxAge: 10_000 } },
      afterSession: () => [sessionRoutes()],
    },
  );
  const clock = testClock(t);
  await clock.advance(0);
  const cookie = await t.login('alice');
  const socket = t.connect('/chat', { cookie });
  await connected(socket);
  const seen = watchEnd(socket);
  await clock.advance(6000);
  assert.equal(await socket.emitWithAck('echo', 1), 1, 'touched 6 s in: it now ends at 16 s');
  // Past the stored expiry (10 s), short of the touched one (16 s).
  await clock.advance(6000);
  assert.equal(await socket.emitWithAck('echo', 2), 2, 'still connected at 12 s (touched: 22 s)');
  const page = await readSession(t, cookie, 'theme');
  assert.equal(page.user, 'alice', 'still logged in over HTTP at 12 s');
  // Past the last touch's expiry: expired in the store as at a real expiry.
  await clock.advance(11_000);
  await expectEnded(socket, seen, ERR_SESSION_EXPIRED, 'the socket at 23 s');
});
