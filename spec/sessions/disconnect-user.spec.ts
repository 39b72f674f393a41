import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ERR_SESSION_REVOKED, disconnectUser, sessionNamespace } from '../../lib/index.js';
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
  visitor,
  whoami,
  withExpiry,
} from '../support/session-ending.js';
import { logIn, startWithKit } from '../support/kit.js';

describe('disconnectUser', () => {
  test('a user in two browsers: every socket of both sessions ends, in every namespace; bob stays', async (tc) => {
    const { t, kit } = await startWithKit(tc, everyKindOfNamespace, { sessionOptions: withExpiry });
    const [firefox, chrome, bob] = await Promise.all([
      logIn(kit, 'alice'),
      logIn(kit, 'alice'),
      logIn(kit, 'bob'),
    ]);
    assert.notEqual(sidOf(firefox.cookie), sidOf(chrome.cookie));
    const bobTabs = await tabsOf(bob, ['/', '/chat', '/tenant-globex']);
    const baseline = activeTimeouts();
    const aliceTabs = [
      ...(await tabsOf(firefox, ['/', '/chat', '/tenant-acme'])),
      ...(await tabsOf(chrome, ['/', '/chat'])),
    ];

    await resolvesWithNothing(disconnectUser(t.io, '1'));

    for (const tab of aliceTabs) await expectTabEnded(tab, ERR_SESSION_REVOKED);
    for (const tab of bobTabs) expectUntouched(tab.socket, tab.seen, `bob on ${tab.nsp}`);
    await expectNothingLeft(t.io, {
      namespaces: ['/', '/chat', '/tenant-acme', '/tenant-globex'],
      sessionIDs: [sidOf(firefox.cookie), sidOf(chrome.cookie)],
      userKeys: ['1'],
      remaining: { '/': 1, '/chat': 1, '/tenant-acme': 0, '/tenant-globex': 1 },
    });
    assert.deepEqual(sessionAuthRooms(t.io.of('/chat')), [
      sessionRoom(sidOf(bob.cookie)),
      'session-auth:user:2',
    ]);
    await expectTimersBack(baseline);
    for (const tab of bobTabs) assert.equal((await whoami(tab.socket)).user, 'bob');
  });

  test('anonymous sockets and other users are not touched; an unknown user ends nothing', async (tc) => {
    const { t, kit } = await startWithKit(
      tc,
      ({ io, session, passport }) => {
        reporting(sessionNamespace(io, session, { passport }));
      },
      { sessionOptions: withExpiry, afterSession: () => [appRoutes(() => null)] },
    );
    const [visiting, bob] = await Promise.all([visitor(kit), logIn(kit, 'bob')]);
    const tabs = [...(await tabsOf(visiting, ['/'])), ...(await tabsOf(bob, ['/']))];
    const rooms = sessionAuthRooms(t.io.of('/'));
    await disconnectUser(t.io, '1');
    await disconnectUser(t.io, 'nobody');
    for (const tab of tabs) expectUntouched(tab.socket, tab.seen);
    assert.deepEqual(sessionAuthRooms(t.io.of('/')), rooms);
    assert.equal(t.io.of('/').sockets.size, 2);
  });

  test('the user key is what serializeUser stored (the id string), not the username', async (tc) => {
    const { t, kit } = await startWithKit(tc, everyKindOfNamespace);
    const [tab] = await tabsOf(await logIn(kit, 'alice'), ['/chat']);
    assert.ok(tab);
    await disconnectUser(t.io, 'alice');
    expectUntouched(tab.socket, tab.seen, 'after disconnectUser(io, "alice")');
    await disconnectUser(t.io, '1');
    await expectTabEnded(tab, ERR_SESSION_REVOKED);
    await expectNothingLeft(t.io, { namespaces: ['/chat'], userKeys: ['1'] });
  });

  test('setup errors: a TypeError naming disconnectUser', async (tc) => {
    const t = await start(tc, everyKindOfNamespace);
    const naming = (error: unknown): boolean => {
      assert.ok(error instanceof TypeError, `expected a TypeError, got ${String(error)}`);
      assert.match(error.message, /^disconnectUser:/);
      return true;
    };
    for (const io of [t.io.of('/chat'), t.io.sockets, null, undefined, {}, 'io']) {
      assert.throws(() => disconnectUser(io as never, '1'), naming);
    }
    for (const key of ['', undefined, null]) {
      assert.throws(() => disconnectUser(t.io, key), naming);
    }
  });
});
