import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Server } from 'socket.io';
import {
  ERR_SESSION_REVOKED,
  ERR_SESSION_ROTATED,
  disconnectOnLogout,
  sessionNamespace,
} from '../../lib/index.js';
import {
  type CreateTestServerOptions,
  type ExpressFlavour,
  type TestContext,
} from '../support/server.js';
import { logIn, startWithKit } from '../support/kit.js';
import {
  activeTimeouts,
  appRoutes,
  everyKindOfNamespace,
  expectNothingLeft,
  expectTabEnded,
  expectTimersBack,
  expectUntouched,
  postAs,
  reporting,
  sidOf,
  socketsOf,
  start,
  tabsOf,
  visitor,
  watchEnd,
  whoami,
  endedMidHandshake,
} from '../support/session-ending.js';

/** Server options: disconnectOnLogout after passport.session(), then the spec's own routes. */
function withLogout(
  options: { express?: ExpressFlavour; holdMs?: number } = {},
): CreateTestServerOptions {
  return {
    ...(options.express !== undefined && { express: options.express }),
    sessionOptions: { cookie: { maxAge: 10 * 60 * 1000 } },
    afterSession: (io: Server) => [
      disconnectOnLogout(io),
      appRoutes((sid) => socketsOf(io, sid), options.holdMs ?? 0),
    ],
  };
}

function hasSession(store: {
  get: (sid: string, cb: (err: unknown, s?: unknown) => void) => void;
}) {
  return (sid: string): Promise<boolean> =>
    new Promise((resolve, reject) => {
      store.get(sid, (err, stored) => {
        if (err) reject(new Error('store error', { cause: err }));
        else resolve(stored !== undefined && stored !== null);
      });
    });
}

/** `/live`: session-aware (Passport), not guarded, reporting. */
function liveNamespace({ io, session, passport }: TestContext): void {
  reporting(sessionNamespace(io.of('/live'), session, { passport }));
}

describe('disconnectOnLogout: logout', () => {
  for (const flavour of ['express5', 'express4'] as const) {
    test(`two tabs of one session (/ and /chat), logout over HTTP in a third request: both end (${flavour})`, async (tc) => {
      const { t, kit } = await startWithKit(
        tc,
        everyKindOfNamespace,
        withLogout({ express: flavour }),
      );
      const [alice, aliceElsewhere, bob] = await Promise.all([
        logIn(kit, 'alice'),
        logIn(kit, 'alice'),
        logIn(kit, 'bob'),
      ]);
      const others = [
        ...(await tabsOf(aliceElsewhere, ['/', '/chat'])),
        ...(await tabsOf(bob, ['/', '/chat'])),
      ];
      const baseline = activeTimeouts();
      const tabs = await tabsOf(alice, ['/', '/chat']);
      const oldCookie = alice.cookie;

      await alice.logout();

      for (const tab of tabs) await expectTabEnded(tab, ERR_SESSION_REVOKED);
      for (const other of others) expectUntouched(other.socket, other.seen, other.nsp);
      await expectNothingLeft(t.io, {
        namespaces: ['/', '/chat'],
        sessionIDs: [sidOf(oldCookie)],
        remaining: { '/': 2, '/chat': 2 },
      });
      await expectTimersBack(baseline);
      assert.equal(await hasSession(t.store)(sidOf(oldCookie)), false, 'the old session is gone');
      // A new tab with the old cookie is a stranger now.
      const replayed = alice.tab({ client: { extraHeaders: { cookie: oldCookie } } });
      const who = await whoami(await replayed.connect('/'));
      assert.equal(who.user, null);
    });
  }

  test('logout ends the sockets in a dynamic tenant child namespace too', async (tc) => {
    const { t, kit } = await startWithKit(tc, everyKindOfNamespace, withLogout());
    const [alice, bob] = await Promise.all([logIn(kit, 'alice'), logIn(kit, 'bob')]);
    const bobTabs = await tabsOf(bob, ['/tenant-globex']);
    const baseline = activeTimeouts();
    const tabs = await tabsOf(alice, ['/tenant-acme', '/']);
    const sid = sidOf(alice.cookie);
    await alice.logout();
    for (const tab of tabs) await expectTabEnded(tab, ERR_SESSION_REVOKED);
    for (const tab of bobTabs) expectUntouched(tab.socket, tab.seen, tab.nsp);
    await expectNothingLeft(t.io, {
      namespaces: ['/tenant-acme', '/', '/tenant-globex'],
      sessionIDs: [sid],
      remaining: { '/tenant-globex': 1 },
    });
    await expectTimersBack(baseline);
  });

  test('logging in elsewhere, or another user logging out, ends nothing', async (tc) => {
    const { t, kit } = await startWithKit(tc, everyKindOfNamespace, withLogout());
    const [alice, bob] = await Promise.all([logIn(kit, 'alice'), logIn(kit, 'bob')]);
    const tabs = [
      ...(await tabsOf(alice, ['/', '/chat', '/tenant-acme'])),
      ...(await tabsOf(bob, ['/chat'])),
    ];
    const bobTab = tabs.pop();
    assert.ok(bobTab);
    await logIn(kit, 'alice');
    await (await logIn(kit, 'bob')).logout();
    // A logout ends this node's sockets before it answers; an answer from each socket afterwards
    // comes after anything it could have sent them.
    for (const tab of [...tabs, bobTab]) assert.equal((await whoami(tab.socket)).nsp, tab.nsp);
    for (const tab of [...tabs, bobTab]) expectUntouched(tab.socket, tab.seen, tab.nsp);
    assert.equal(socketsOf(t.io, sidOf(alice.cookie)), 3);
  });

  test('a socket still in its handshake when its session is logged out is not let in', async (tc) => {
    const {
      t,
      socket,
      cookie: alice,
    } = await endedMidHandshake(tc, withLogout(), (server, cookie) => server.logout(cookie));
    assert.equal(
      socketsOf(t.io, sidOf(alice)),
      0,
      'a socket of the logged-out session is connected',
    );
    assert.equal(socket.connected, false, 'the client of the logged-out session is connected');
    await expectNothingLeft(t.io, { namespaces: ['/slow'], sessionIDs: [sidOf(alice)] });
  });
});

describe('disconnectOnLogout: destroy and regenerate anywhere in the app', () => {
  test('req.session.destroy(): ERR_SESSION_REVOKED at once, before the response is sent', async (tc) => {
    const { t, kit } = await startWithKit(tc, everyKindOfNamespace, withLogout({ holdMs: 300 }));
    const [alice, bob] = await Promise.all([logIn(kit, 'alice'), logIn(kit, 'bob')]);
    const [bobTab] = await tabsOf(bob, ['/chat']);
    assert.ok(bobTab);
    const baseline = activeTimeouts();
    const tabs = await tabsOf(alice, ['/', '/chat']);
    const sid = sidOf(alice.cookie);
    const body = await postAs(alice, '/destroy');
    assert.deepEqual(body, { seen: 0 }, 'sockets of the old session while the response was held');
    for (const tab of tabs) await expectTabEnded(tab, ERR_SESSION_REVOKED);
    expectUntouched(bobTab.socket, bobTab.seen, 'bob');
    await expectNothingLeft(t.io, {
      namespaces: ['/', '/chat'],
      sessionIDs: [sid],
      remaining: { '/chat': 1 },
    });
    await expectTimersBack(baseline);
  });

  test('req.session.regenerate() without a user: ERR_SESSION_REVOKED at once', async (tc) => {
    const { t, kit } = await startWithKit(tc, liveNamespace, withLogout({ holdMs: 300 }));
    const visiting = await visitor(kit);
    const sid = sidOf(visiting.cookie);
    const baseline = activeTimeouts();
    const [tab] = await tabsOf(visiting, ['/live']);
    assert.ok(tab);
    assert.deepEqual(await postAs(visiting, '/regenerate'), { seen: 0 });
    assert.notEqual(sidOf(visiting.cookie), sid, 'the browser holds the new session');
    await expectTabEnded(tab, ERR_SESSION_REVOKED);
    await expectNothingLeft(t.io, { namespaces: ['/live'], sessionIDs: [sid] });
    await expectTimersBack(baseline);
  });

  test('req.session.regenerate() with a user: ERR_SESSION_ROTATED, only once the response is sent', async (tc) => {
    const { t, kit } = await startWithKit(tc, everyKindOfNamespace, withLogout({ holdMs: 300 }));
    const alice = await logIn(kit, 'alice');
    const sid = sidOf(alice.cookie);
    const baseline = activeTimeouts();
    const tabs = await tabsOf(alice, ['/', '/chat']);
    const body = await postAs(alice, '/regenerate');
    assert.deepEqual(body, { seen: 2 }, 'the sockets stay while the response is held');
    assert.notEqual(sidOf(alice.cookie), sid, 'the browser holds the new session');
    for (const tab of tabs) await expectTabEnded(tab, ERR_SESSION_ROTATED);
    await expectNothingLeft(t.io, { namespaces: ['/', '/chat'], sessionIDs: [sid] });
    await expectTimersBack(baseline);
  });

  test('login with the browser’s cookie rotates its anonymous session; reconnecting shows the user', async (tc) => {
    const { t, kit } = await startWithKit(tc, liveNamespace, withLogout());
    const browser = await visitor(kit);
    const anonymous = sidOf(browser.cookie);
    const socket = await browser.tab({ reconnection: true }).connect('/live');
    const tab = { nsp: '/live', socket, seen: watchEnd(socket) };
    const before = await whoami(socket);
    assert.deepEqual(before, { nsp: '/live', user: null, sessionID: anonymous });

    // The same browser logs in over HTTP: Passport's req.login() regenerates the session.
    const res = await browser.fetch('/login', {
      method: 'POST',
      body: new URLSearchParams({ username: 'alice', password: 'alice-pw' }),
    });
    assert.equal(res.status, 200, `login as alice answered ${res.status}`);
    await res.arrayBuffer();
    const loggedIn = sidOf(browser.cookie);
    assert.notEqual(loggedIn, anonymous);
    await expectTabEnded(tab, ERR_SESSION_ROTATED);
    assert.equal(await hasSession(t.store)(anonymous), false, 'the old session is gone');

    // The client reconnects, the browser now sending the new cookie.
    socket.connect();
    const after = await whoami(socket);
    assert.deepEqual(after, { nsp: '/live', user: 'alice', sessionID: loggedIn });
  });

  test('setup errors: a TypeError naming disconnectOnLogout', async (tc) => {
    const t = await start(tc, everyKindOfNamespace);
    for (const io of [t.io.of('/chat'), t.io.sockets, null, undefined, {}]) {
      assert.throws(
        () => disconnectOnLogout(io as never),
        (error: unknown) => {
          assert.ok(error instanceof TypeError, `expected a TypeError, got ${String(error)}`);
          assert.match(error.message, /^disconnectOnLogout:/);
          return true;
        },
      );
    }
  });
});
