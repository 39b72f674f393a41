import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Socket as ServerSocket } from 'socket.io';
import { ERR_SESSION_REVOKED, disconnectSession, sessionNamespace } from '../../lib/index.js';
import {
  activeTimeouts,
  appRoutes,
  expectNothingLeft,
  expectTabEnded,
  expectTimersBack,
  everyKindOfNamespace,
  expectUntouched,
  reporting,
  resolvesWithNothing,
  sessionAuthRooms,
  sessionRoom,
  sidOf,
  start,
  tabsOf,
  whoami,
  visitor,
  withExpiry,
  endedMidHandshake,
} from '../support/session-ending.js';
import { logIn, startWithKit } from '../support/kit.js';

describe('disconnectSession', () => {
  test('ends every socket of the session in /, /chat and a dynamic child; others stay', async (tc) => {
    const { t, kit } = await startWithKit(tc, everyKindOfNamespace, { sessionOptions: withExpiry });
    const [alice, aliceElsewhere, bob] = await Promise.all([
      logIn(kit, 'alice'),
      logIn(kit, 'alice'),
      logIn(kit, 'bob'),
    ]);
    const others = [
      ...(await tabsOf(aliceElsewhere, ['/chat', '/tenant-acme'])),
      ...(await tabsOf(bob, ['/', '/chat', '/tenant-globex'])),
    ];
    const baseline = activeTimeouts();
    const tabs = await tabsOf(alice, ['/', '/chat', '/tenant-acme']);
    const sid = sidOf(alice.cookie);

    await resolvesWithNothing(disconnectSession(t.io, sid));

    for (const tab of tabs) await expectTabEnded(tab, ERR_SESSION_REVOKED);
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
        sessionRoom(sidOf(aliceElsewhere.cookie)),
        sessionRoom(sidOf(bob.cookie)),
        'session-auth:user:1',
        'session-auth:user:2',
      ].sort(),
    );
    await expectTimersBack(baseline);
    // The survivors still work.
    for (const other of others) assert.equal((await whoami(other.socket)).nsp, other.nsp);
  });

  test('two clients of one session on one namespace both end', async (tc) => {
    const { t, kit } = await startWithKit(tc, everyKindOfNamespace, { sessionOptions: withExpiry });
    const [alice, bob] = await Promise.all([logIn(kit, 'alice'), logIn(kit, 'bob')]);
    const [bobTab] = await tabsOf(bob, ['/chat']);
    assert.ok(bobTab);
    const baseline = activeTimeouts();
    const tabs = await tabsOf(alice, ['/chat', '/chat']);
    await disconnectSession(t.io, sidOf(alice.cookie));
    for (const tab of tabs) await expectTabEnded(tab, ERR_SESSION_REVOKED);
    expectUntouched(bobTab.socket, bobTab.seen, 'bob');
    await expectNothingLeft(t.io, {
      namespaces: ['/chat'],
      sessionIDs: [sidOf(alice.cookie)],
      remaining: { '/chat': 1 },
    });
    await expectTimersBack(baseline);
  });

  test('reaches an anonymous session with data on a namespace without Passport, with no app code', async (tc) => {
    const { t, kit } = await startWithKit(
      tc,
      ({ io, session }) => {
        reporting(sessionNamespace(io.of('/live'), session));
      },
      { sessionOptions: withExpiry, afterSession: () => [appRoutes(() => null)] },
    );
    const [visiting, other] = await Promise.all([visitor(kit), visitor(kit)]);
    const [otherTab] = await tabsOf(other, ['/live']);
    assert.ok(otherTab);
    const baseline = activeTimeouts();
    const [tab] = await tabsOf(visiting, ['/live']);
    assert.ok(tab);
    assert.equal((await whoami(tab.socket)).user, null);
    await disconnectSession(t.io, sidOf(visiting.cookie));
    await expectTabEnded(tab, ERR_SESSION_REVOKED);
    expectUntouched(otherTab.socket, otherTab.seen, 'the other visitor');
    await expectNothingLeft(t.io, {
      namespaces: ['/live'],
      sessionIDs: [sidOf(visiting.cookie)],
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
