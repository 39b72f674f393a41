import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Server } from 'socket.io';
import {
  ERR_SESSION_REVOKED,
  ERR_SESSION_ROTATED,
  disconnectOnLogout,
  sessionNamespace,
} from '../../lib/index.js';
import type { CreateTestServerOptions, ExpressFlavour } from '../support/server.js';
import {
  activeTimeouts,
  appRoutes,
  browser,
  everyKindOfNamespace,
  expectEnded,
  expectNothingLeft,
  expectTimersBack,
  expectUntouched,
  loginWithCookie,
  post,
  reporting,
  sidOf,
  socketsOf,
  start,
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

describe('disconnectOnLogout: logout', () => {
  for (const flavour of ['express5', 'express4'] as const) {
    test(`two tabs of one session (/ and /chat), logout over HTTP in a third request: both end (${flavour})`, async (tc) => {
      const t = await start(tc, everyKindOfNamespace, withLogout({ express: flavour }));
      const [alice, aliceElsewhere, bob] = await Promise.all([
        t.login('alice'),
        t.login('alice'),
        t.login('bob'),
      ]);
      const others = [
        ...(await browser(t, aliceElsewhere, ['/', '/chat'])),
        ...(await browser(t, bob, ['/', '/chat'])),
      ];
      const baseline = activeTimeouts();
      const tabs = [...(await browser(t, alice, ['/'])), ...(await browser(t, alice, ['/chat']))];

      await t.logout(alice);

      for (const tab of tabs) await expectEnded(tab.socket, tab.seen, ERR_SESSION_REVOKED, tab.nsp);
      for (const other of others) expectUntouched(other.socket, other.seen, other.nsp);
      await expectNothingLeft(t.io, {
        namespaces: ['/', '/chat'],
        sessionIDs: [sidOf(alice)],
        remaining: { '/': 2, '/chat': 2 },
      });
      await expectTimersBack(baseline);
      assert.equal(await hasSession(t.store)(sidOf(alice)), false, 'the old session is gone');
      // A new tab with the old cookie is a stranger now.
      const who = await whoami(t.connect('/', { cookie: alice }));
      assert.equal(who.user, null);
    });
  }

  test('logout ends the sockets in a dynamic tenant child namespace too', async (tc) => {
    const t = await start(tc, everyKindOfNamespace, withLogout());
    const [alice, bob] = await Promise.all([t.login('alice'), t.login('bob')]);
    const bobTabs = await browser(t, bob, ['/tenant-globex']);
    const baseline = activeTimeouts();
    const tabs = await browser(t, alice, ['/tenant-acme', '/']);
    await t.logout(alice);
    for (const tab of tabs) await expectEnded(tab.socket, tab.seen, ERR_SESSION_REVOKED, tab.nsp);
    for (const tab of bobTabs) expectUntouched(tab.socket, tab.seen, tab.nsp);
    await expectNothingLeft(t.io, {
      namespaces: ['/tenant-acme', '/', '/tenant-globex'],
      sessionIDs: [sidOf(alice)],
      remaining: { '/tenant-globex': 1 },
    });
    await expectTimersBack(baseline);
  });

  test('logging in elsewhere, or another user logging out, ends nothing', async (tc) => {
    const t = await start(tc, everyKindOfNamespace, withLogout());
    const [alice, bob] = await Promise.all([t.login('alice'), t.login('bob')]);
    const tabs = [
      ...(await browser(t, alice, ['/', '/chat', '/tenant-acme'])),
      ...(await browser(t, bob, ['/chat'])),
    ];
    const bobTab = tabs.pop();
    assert.ok(bobTab);
    await t.login('alice');
    const bobElsewhere = await t.login('bob');
    await t.logout(bobElsewhere);
    // A logout ends this node's sockets before it answers; an answer from each socket afterwards
    // comes after anything it could have sent them.
    for (const tab of [...tabs, bobTab]) assert.equal((await whoami(tab.socket)).nsp, tab.nsp);
    for (const tab of [...tabs, bobTab]) expectUntouched(tab.socket, tab.seen, tab.nsp);
    assert.equal(socketsOf(t.io, sidOf(alice)), 3);
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
    const t = await start(tc, everyKindOfNamespace, withLogout({ holdMs: 300 }));
    const [alice, bob] = await Promise.all([t.login('alice'), t.login('bob')]);
    const [bobTab] = await browser(t, bob, ['/chat']);
    assert.ok(bobTab);
    const baseline = activeTimeouts();
    const tabs = await browser(t, alice, ['/', '/chat']);
    const { body } = await post(t, '/destroy', alice);
    assert.deepEqual(body, { seen: 0 }, 'sockets of the old session while the response was held');
    for (const tab of tabs) await expectEnded(tab.socket, tab.seen, ERR_SESSION_REVOKED, tab.nsp);
    expectUntouched(bobTab.socket, bobTab.seen, 'bob');
    await expectNothingLeft(t.io, {
      namespaces: ['/', '/chat'],
      sessionIDs: [sidOf(alice)],
      remaining: { '/chat': 1 },
    });
    await expectTimersBack(baseline);
  });

  test('req.session.regenerate() without a user: ERR_SESSION_REVOKED at once', async (tc) => {
    const t = await start(
      tc,
      ({ io, session, passport }) => {
        reporting(sessionNamespace(io.of('/live'), session, { passport }));
      },
      withLogout({ holdMs: 300 }),
    );
    const { cookie: visitor } = await post(t, '/visit');
    assert.ok(visitor !== undefined);
    const baseline = activeTimeouts();
    const [tab] = await browser(t, visitor, ['/live']);
    assert.ok(tab);
    const { body, cookie: renewed } = await post(t, '/regenerate', visitor);
    assert.deepEqual(body, { seen: 0 });
    assert.ok(renewed !== undefined && sidOf(renewed) !== sidOf(visitor));
    await expectEnded(tab.socket, tab.seen, ERR_SESSION_REVOKED);
    await expectNothingLeft(t.io, { namespaces: ['/live'], sessionIDs: [sidOf(visitor)] });
    await expectTimersBack(baseline);
  });

  test('req.session.regenerate() with a user: ERR_SESSION_ROTATED, only once the response is sent', async (tc) => {
    const t = await start(tc, everyKindOfNamespace, withLogout({ holdMs: 300 }));
    const alice = await t.login('alice');
    const baseline = activeTimeouts();
    const tabs = await browser(t, alice, ['/', '/chat']);
    const { body, cookie: renewed } = await post(t, '/regenerate', alice);
    assert.deepEqual(body, { seen: 2 }, 'the sockets stay while the response is held');
    assert.ok(renewed !== undefined && sidOf(renewed) !== sidOf(alice));
    for (const tab of tabs) await expectEnded(tab.socket, tab.seen, ERR_SESSION_ROTATED, tab.nsp);
    await expectNothingLeft(t.io, { namespaces: ['/', '/chat'], sessionIDs: [sidOf(alice)] });
    await expectTimersBack(baseline);
  });

  test('login with the browser’s cookie rotates its anonymous session; reconnecting shows the user', async (tc) => {
    const t = await start(
      tc,
      ({ io, session, passport }) => {
        reporting(sessionNamespace(io.of('/live'), session, { passport }));
      },
      withLogout(),
    );
    const { cookie: anonymous } = await post(t, '/visit');
    assert.ok(anonymous !== undefined);
    const socket = t.connect('/live', { cookie: anonymous, reconnection: true });
    const seen = watchEnd(socket);
    const before = await whoami(socket);
    assert.deepEqual(before, { nsp: '/live', user: null, sessionID: sidOf(anonymous) });

    // The same browser logs in over HTTP: Passport's req.login() regenerates the session.
    const loggedIn = await loginWithCookie(t, 'alice', anonymous);
    assert.notEqual(sidOf(loggedIn), sidOf(anonymous));
    await expectEnded(socket, seen, ERR_SESSION_ROTATED);
    assert.equal(await hasSession(t.store)(sidOf(anonymous)), false, 'the old session is gone');

    // The client reconnects, the browser now sending the new cookie.
    socket.io.opts.extraHeaders = { cookie: loggedIn };
    socket.connect();
    const after = await whoami(socket);
    assert.deepEqual(after, { nsp: '/live', user: 'alice', sessionID: sidOf(loggedIn) });
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
