// A rolling session kept alive by the socket alone, in a cookie jar that drops a cookie at its end
// as a browser does (the test kit's). The socket's touches move the store's expiry, but only an
// HTTP response can move the browser's cookie: the server tells the client when the cookie nears
// its end (session:cookie-expiring), and the client refreshes it through refreshCookieRoute.
// A 10 s session and 30 s of socket-only activity, on a controlled clock (see the first test).
import assert from 'node:assert/strict';
import { describe, type MockTracker, test } from 'node:test';
import type { RequestHandler } from 'express';
import {
  COOKIE_EXPIRING_EVENT,
  type CookieExpiringPayload,
  refreshCookieRoute,
  requireAuth,
  sessionNamespace,
} from 'socket.io-session-auth';
import {
  createTestKit,
  expectEnded,
  expectRefused,
  type Agent,
  type TestKit,
  type TestSocket,
} from 'socket.io-session-auth/testing';
import { start, type TestServer } from '../support/server.js';

const MAX_AGE_MS = 10_000;
const ACTIVE_MS = 30_000;
const REFRESH_PATH = '/session/refresh';

/** The session's user as a page load sees it: GET /me through express-session and Passport. */
async function pageUser(agent: Agent): Promise<string | null> {
  const res = await agent.fetch('/me');
  assert.equal(res.status, 200);
  return ((await res.json()) as { user: string | null }).user;
}

/** Resolves with 'connected', or the code of the refusal, at the socket's next connect attempt. */
function nextConnect(socket: TestSocket): Promise<string> {
  return new Promise((resolve) => {
    const connected = (): void => {
      socket.off('connect_error', refused);
      resolve('connected');
    };
    const refused = (err: Error & { data?: { code?: string } }): void => {
      socket.off('connect', connected);
      resolve(err.data?.code ?? err.message);
    };
    socket.once('connect', connected);
    socket.once('connect_error', refused);
  });
}

/**
 * The refreshes the app has answered; `answered(n)` resolves once it has answered `n`, and fails
 * when it has not within 10 s (real time: a refresh is one local HTTP request).
 */
interface Refreshes {
  count: number;
  answered(n: number): Promise<void>;
}

function refreshCounter(): Refreshes & { done(): void } {
  const waiting = new Set<{ n: number; resolve: () => void }>();
  const refreshes = {
    count: 0,
    done(): void {
      refreshes.count++;
      for (const wait of waiting) {
        if (refreshes.count < wait.n) continue;
        waiting.delete(wait);
        wait.resolve();
      }
    },
    async answered(n: number): Promise<void> {
      if (refreshes.count >= n) return;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve, reject) => {
        waiting.add({ n, resolve });
        timer = setTimeout(() => {
          reject(new Error(`told ${n} times, but only ${refreshes.count} refreshes arrived`));
        }, 10_000);
      }).finally(() => {
        clearTimeout(timer);
      });
    },
  };
  return refreshes;
}

async function startApp(
  tc: Parameters<typeof start>[0],
  refreshes = refreshCounter(),
): Promise<TestServer & { refreshes: Refreshes }> {
  const t = await start(
    tc,
    ({ io, session, passport }) => {
      requireAuth(
        sessionNamespace(io.of('/chat'), session, { passport, touchIntervalMs: 1000 }),
      ).on('connection', (socket) => {
        socket.on('echo', (value: unknown, ack: (value: unknown) => void) => {
          ack(value);
        });
      });
    },
    {
      sessionOptions: { rolling: true, cookie: { maxAge: MAX_AGE_MS } },
      afterSession: (io) => {
        const refresh = refreshCookieRoute(io);
        const routes: RequestHandler = (req, res, next) => {
          if (req.path === REFRESH_PATH) {
            res.once('finish', () => {
              refreshes.done();
            });
            refresh(req, res, next);
            return;
          }
          if (req.method === 'GET' && req.path === '/me') {
            res.json({ user: req.user?.username ?? null });
            return;
          }
          next();
        };
        return [routes];
      },
    },
  );
  return Object.assign(t, { refreshes });
}

/**
 * The app and a kit on it, with every clock of the story moved together instead of waited for:
 * `Date` (express-session's cookie expiries and touches, the store's expiry, the kit's cookie jar,
 * the Set-Cookie dates) by node:test's mock timers, and the package's own (touch interval, expiry
 * timers) by kit.clock, which also expires in the store a session whose stored expiry it passes.
 * `step(ms)` moves both. Timers stay real: Socket.IO's pings (the client reads Date for its 45 s
 * ping timeout, which these stories stay under), the reconnect's backoff, HTTP.
 */
async function startOnOneClock(
  tc: Parameters<typeof start>[0] & { mock: MockTracker },
  refreshCookiePath?: string,
): Promise<{ t: Awaited<ReturnType<typeof startApp>>; kit: TestKit; step: Step }> {
  tc.mock.timers.enable({ apis: ['Date'], now: Date.now() });
  const t = await startApp(tc);
  // The app's io is attached and listening: the kit uses it as it is; t.cleanup closes it.
  const kit = await createTestKit({
    io: t.io,
    session: t.session,
    passport: t.passport,
    ...(refreshCookiePath !== undefined && { refreshCookiePath }),
  });
  tc.after(() => kit.close());
  // From here on the package's time moves only with Date.
  await kit.clock.advance(0);
  const step = async (ms: number): Promise<void> => {
    tc.mock.timers.tick(ms);
    await kit.clock.advance(ms);
    assert.equal(kit.clock.now(), Date.now(), "the package's time and Date move together");
  };
  return { t, kit, step };
}

type Step = (ms: number) => Promise<void>;

describe('a rolling session kept alive by the socket alone', () => {
  test('active on the socket for 30 s (maxAge 10 s): the cookie is refreshed when told, so a reconnect and a page load are still logged in; an idle session expires', async (tc) => {
    const { t, kit, step } = await startOnOneClock(tc, REFRESH_PATH);
    const [alice, bob] = await Promise.all([
      kit.loginWith('/login', { username: 'alice', password: 'alice-pw' }),
      kit.loginWith('/login', { username: 'bob', password: 'bob-pw' }),
    ]);
    const aliceChat = await alice.tab({ reconnection: true }).connect('/chat');
    const bobChat = await bob.connect('/chat');
    const told: CookieExpiringPayload[] = [];
    aliceChat.on(COOKIE_EXPIRING_EVENT, (payload: CookieExpiringPayload) => {
      told.push(payload);
    });

    // Bob is idle: his session expires in the store, his socket ends, his cookie is gone.
    const bobDone = (async () => {
      await expectEnded(bobChat, 'ERR_SESSION_EXPIRED', { within: MAX_AGE_MS + 10_000 });
      await expectRefused(bob.connect('/chat'), 'ERR_UNAUTHORIZED');
      assert.equal(bob.cookie, '', "bob's cookie has ended in the jar");
      assert.equal(await pageUser(bob), null, 'a page load of idle bob is logged out');
    })();

    // Alice: socket-only activity, an event every second, for 30 s. No HTTP but the refresh the
    // server asks for (the kit posts it, as the page would), answered before time moves on: a
    // page's refresh takes milliseconds, not the seconds left on the cookie.
    for (let sent = 0; sent < ACTIVE_MS / 1000; sent++) {
      await step(1000);
      assert.equal(await aliceChat.emitWithAck('echo', sent), sent, `event ${sent} answered`);
      await t.refreshes.answered(told.length);
    }
    await bobDone;

    // A network blip: the connection drops, the client reconnects with the cookie it holds now.
    const again = nextConnect(aliceChat);
    for (const socket of t.io.of('/chat').sockets.values()) socket.conn.close();
    assert.equal(await again, 'connected', 'the reconnect after 30 s is still logged in');
    // (No event right after it: with connect-redis, whose touch leaves the stored expiry at the
    // login's, the reconnected socket's expiry check runs at once and refuses events until the
    // store answers, a window of one round trip that is expiry.ts's, not this feature's.)
    // A new tab, and a page load.
    await alice.connect('/chat');
    assert.equal(await pageUser(alice), 'alice', 'a page load after 30 s is still logged in');
    // How: told (each time with less than half the cookie's life left) and refreshed. 0 is an
    // end the server cannot vouch for: connect-redis's touch moves the key's TTL, not the stored
    // expiry, so the reconnected socket reads the last save's (the login's), long past.
    assert.ok(told.length >= 3, `told ${told.length} times in 30 s to refresh a 10 s cookie`);
    assert.equal(t.refreshes.count, told.length, 'each time told, the cookie was refreshed');
    for (const { expiresInMs } of told) {
      assert.ok(expiresInMs >= 0 && expiresInMs < MAX_AGE_MS / 2, `told at ${expiresInMs} ms left`);
    }
  });
});

describe('refreshCookieRoute', () => {
  test("a refresh tells the session's sockets the cookie's new end: no event until it nears again", async (tc) => {
    // No refreshCookiePath: the spec refreshes by hand, to know when the refresh was asked.
    const { kit, step } = await startOnOneClock(tc);
    const alice = await kit.loginWith('/login', { username: 'alice', password: 'alice-pw' });
    const chat = await alice.connect('/chat');
    let told = 0;
    chat.on(COOKIE_EXPIRING_EVENT, () => {
      told++;
    });
    // An event more than touchIntervalMs after the last one touches the session; the event is
    // sent before the handler runs, so the ack of that event proves whether it was told.
    let n = 0;
    const touch = async (): Promise<number> => {
      await step(1100);
      assert.equal(await chat.emitWithAck('echo', n), n);
      n++;
      return Date.now();
    };
    // The cookie's new end is at least the refresh + maxAge - 1 s (HTTP dates are whole seconds):
    // it is told again only once less than maxAge / 2 is left, so not before the refresh + 4 s.
    // A touch acknowledged before 3.5 s after the refresh was asked must not be told.
    let checked = 0;
    while (told === 0) await touch();
    const asked = Date.now();
    const res = await alice.fetch(REFRESH_PATH, { method: 'POST' });
    assert.equal(res.status, 204);
    told = 0;
    let acked = await touch();
    for (; acked - asked < 3500; acked = await touch()) {
      assert.equal(told, 0, `told again ${acked - asked} ms after a refresh of a 10 s cookie`);
      checked++;
    }
    assert.ok(checked > 0, 'a touch was acknowledged within 3.5 s of a refresh');
    // And told again once it nears: by the new end less maxAge / 2, plus a touch interval.
    while (told === 0) {
      assert.ok(acked - asked < MAX_AGE_MS / 2 + 1100, 'told again once the cookie nears its end');
      acked = await touch();
    }
  });

  test('checks its arguments at once, and answers 405 to another method', async (tc) => {
    const t = await startApp(tc);
    assert.throws(() => refreshCookieRoute(t.io.of('/chat') as never), {
      name: 'TypeError',
      message: 'refreshCookieRoute: io must be a Socket.IO Server',
    });
    assert.throws(() => refreshCookieRoute(t.io, { methods: [] }), {
      name: 'TypeError',
      message: 'refreshCookieRoute: options.methods must be a non-empty array of HTTP methods',
    });
    const cookie = await t.login('alice');
    const res = await fetch(`${t.url}${REFRESH_PATH}`, { headers: { cookie } });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST');
    await res.arrayBuffer();
  });
});
