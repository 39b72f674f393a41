import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Socket as ServerSocket } from 'socket.io';
import { ERR_SESSION_REVOKED, disconnectSession, sessionNamespace } from '../../lib/index.js';
import {
  activeTimeouts,
  appRoutes,
  browser,
  expectEnded,
  expectNothingLeft,
  expectTimersBack,
  everyKindOfNamespace,
  expectUntouched,
  post,
  reporting,
  sessionAuthRooms,
  sessionRoom,
  sidOf,
  start,
  whoami,
  withExpiry,
  endedMidHandshake,
} from '../support/session-ending.js';

describe('disconnectSession', () => {
  test('ends every socket of the session in /, /chat and a dynamic child; others stay', async (tc) => {
    const t = await start(tc, everyKindOfNamespace, { sessionOptions: withExpiry });
    const [alice, aliceElsewhere, bob] = await Promise.all([
      t.login('alice'),
      t.login('alice'),
      t.login('bob'),
    ]);
    const others = [
      ...(await browser(t, aliceElsewhere, ['/chat', '/tenant-acme'])),
      ...(await browser(t, bob, ['/', '/chat', '/tenant-globex'])),
    ];
    const baseline = activeTimeouts();
    const tabs = await browser(t, alice, ['/', '/chat', '/tenant-acme']);
    const sid = sidOf(alice);

    const returned = disconnectSession(t.io, sid);
    assert.ok(returned instanceof Promise);
    await returned.then((value: unknown) => {
      assert.equal(value, undefined, 'it resolves with nothing');
    });

    for (const tab of tabs) await expectEnded(tab.socket, tab.seen, ERR_SESSION_REVOKED, tab.nsp);
    for (const other of others) expectUntouched(other.socket, other.seen, other.nsp);
    await expectNothingLeft(t.io, {
      namespaces: ['/', '/chat', '/tenant-acme', '/tenant-globex'],
      sessionIDs: [sid],
      remaining: { '/': 1, '/chat': 2, '/tenant-acme': 1, '/tenant-globex': 1 },
    });
    // Alice's other session still has its rooms, user room included.
    assert.deepEqual(
      sessionAuthRooms(t.io.of('/chat')),
      [
        sessionRoom(sidOf(aliceElsewhere)),
        sessionRoom(sidOf(bob)),
        'session-auth:user:1',
        'session-auth:user:2',
      ].sort(),
    );
    await expectTimersBack(baseline);
    // The survivors still work.
    for (const other of others) assert.equal((await whoami(other.socket)).nsp, other.nsp);
  });

  test('two clients of one session on one namespace both end', async (tc) => {
    const t = await start(tc, everyKindOfNamespace, { sessionOptions: withExpiry });
    const [alice, bob] = await Promise.all([t.login('alice'), t.login('bob')]);
    const [bobTab] = await browser(t, bob, ['/chat']);
    assert.ok(bobTab);
    const baseline = activeTimeouts();
    const tabs = [...(await browser(t, alice, ['/chat'])), ...(await browser(t, alice, ['/chat']))];
    await disconnectSession(t.io, sidOf(alice));
    for (const tab of tabs) await expectEnded(tab.socket, tab.seen, ERR_SESSION_REVOKED, tab.nsp);
    expectUntouched(bobTab.socket, bobTab.seen, 'bob');
    await expectNothingLeft(t.io, {
      namespaces: ['/chat'],
      sessionIDs: [sidOf(alice)],
      remaining: { '/chat': 1 },
    });
    await expectTimersBack(baseline);
  });

  test('reaches an anonymous session with data on a namespace without Passport, with no app code', async (tc) => {
    const t = await start(
      tc,
      ({ io, session }) => {
        reporting(sessionNamespace(io.of('/live'), session));
      },
      { sessionOptions: withExpiry, afterSession: () => [appRoutes(() => null)] },
    );
    const [{ cookie: visitor }, { cookie: other }] = await Promise.all([
      post(t, '/visit'),
      post(t, '/visit'),
    ]);
    assert.ok(visitor !== undefined && other !== undefined);
    const [otherTab] = await browser(t, other, ['/live']);
    assert.ok(otherTab);
    const baseline = activeTimeouts();
    const [tab] = await browser(t, visitor, ['/live']);
    assert.ok(tab);
    assert.equal((await whoami(tab.socket)).user, null);
    await disconnectSession(t.io, sidOf(visitor));
    await expectEnded(tab.socket, tab.seen, ERR_SESSION_REVOKED);
    expectUntouched(otherTab.socket, otherTab.seen, 'the other visitor');
    await expectNothingLeft(t.io, {
      namespaces: ['/live'],
      sessionIDs: [sidOf(visitor)],
      remaining: { '/live': 1 },
    });
    await expectTimersBack(baseline);
  });

  test('a socket still in its handshake when its session is ended is not let in', async (tc) => {
    const {
      t,
      socket,
      cookie: alice,
    } = await endedMidHandshake(tc, { sessionOptions: withExpiry }, (server, cookie) =>
      disconnectSession(server.io, sidOf(cookie)),
    );
    const nsp = t.io.of('/slow');
    const left = [...nsp.sockets.values()].filter(
      (s: ServerSocket) => (s.request as { sessionID?: string }).sessionID === sidOf(alice),
    );
    assert.equal(left.length, 0, 'a socket of the ended session is connected');
    assert.equal(socket.connected, false, 'the client of the ended session is connected');
    await expectNothingLeft(t.io, { namespaces: ['/slow'], sessionIDs: [sidOf(alice)] });
  });

  test('setup errors: a TypeError naming disconnectSession', async (tc) => {
    const t = await start(tc, everyKindOfNamespace);
    const naming = (error: unknown): boolean => {
      assert.ok(error instanceof TypeError, `expected a TypeError, got ${String(error)}`);
      assert.match(error.message, /^disconnectSession:/);
      return true;
    };
    for (const io of [t.io.of('/chat'), t.io.sockets, null, undefined, {}, 'io']) {
      assert.throws(() => disconnectSession(io as never, 'some-session-id'), naming);
    }
    for (const sid of ['', undefined, null, 42, {}, ['sid']]) {
      assert.throws(() => disconnectSession(t.io, sid as never), naming);
    }
  });
});
