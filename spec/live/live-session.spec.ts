// What the internal live-session module guarantees, observed through the public API only.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Server, Socket as ServerSocket } from 'socket.io';
import {
  ERR_FORBIDDEN,
  ERR_SESSION_REVOKED,
  ERR_UNAUTHORIZED,
  disconnectOnLogout,
  disconnectSession,
  disconnectUser,
  requireAuth,
  sessionNamespace,
} from '../../lib/index.js';
import { expectRefused } from 'socket.io-session-auth/testing';
import { type TestContext } from '../support/server.js';
import { logIn, startWithKit } from '../support/kit.js';
import {
  activeTimeouts,
  appRoutes,
  everyKindOfNamespace,
  expectNothingLeft,
  expectTabEnded,
  expectTimersBack,
  expectUntouched,
  reporting,
  sessionAuthRooms,
  sidOf,
  start,
  tabsOf,
  visitor,
  whoami,
  withExpiry,
  within,
} from '../support/session-ending.js';

const options = {
  sessionOptions: withExpiry,
  afterSession: (io: Server) => [disconnectOnLogout(io), appRoutes(() => null)],
};

/** `/` (open, session-aware) and `/admin` (admins only). */
function withAdmin(ctx: TestContext): void {
  everyKindOfNamespace(ctx);
  const { io, session, passport } = ctx;
  reporting(
    requireAuth(sessionNamespace(io.of('/admin'), session, { passport }), {
      authorize: (user) => user.role === 'admin',
    }),
  );
}

describe('live sessions: what sockets and clients can see', () => {
  test('socket.data holds the user summary only, never the session ID', async (tc) => {
    const { t, kit } = await startWithKit(tc, everyKindOfNamespace, options);
    const [alice, bob, visiting] = await Promise.all([
      logIn(kit, 'alice'),
      logIn(kit, 'bob'),
      visitor(kit),
    ]);
    await tabsOf(alice, ['/', '/chat']);
    await tabsOf(bob, ['/', '/chat']);
    await tabsOf(visiting, ['/']);
    const sids = [alice, bob, visiting].map((agent) => sidOf(agent.cookie));

    const byNamespace = {
      '/': await t.io.fetchSockets(),
      '/chat': await t.io.of('/chat').fetchSockets(),
    };
    // Sorted by their JSON, so that the order sockets connected in does not matter.
    const bySummary = (a: unknown, b: unknown): number =>
      JSON.stringify(a) < JSON.stringify(b) ? -1 : 1;
    const data = {
      '/': byNamespace['/'].map((socket) => socket.data as unknown).sort(bySummary),
      '/chat': byNamespace['/chat'].map((socket) => socket.data as unknown).sort(bySummary),
    };
    assert.deepEqual(data, {
      '/': [{ user: { id: '1', username: 'alice' } }, { user: { id: '2', username: 'bob' } }, {}],
      '/chat': [{ user: { id: '1', username: 'alice' } }, { user: { id: '2', username: 'bob' } }],
    });
    for (const sockets of Object.values(byNamespace)) {
      for (const socket of sockets) {
        const json = JSON.stringify(socket.data);
        for (const sid of sids) assert.ok(!json.includes(sid), `socket.data has a session ID`);
      }
    }
  });

  test('the session:ended payload carries no session ID, no user, no room name', async (tc) => {
    const { t, kit } = await startWithKit(tc, everyKindOfNamespace, options);
    const alice = await logIn(kit, 'alice');
    const [tab] = await tabsOf(alice, ['/chat']);
    assert.ok(tab);
    await disconnectUser(t.io, '1');
    await expectTabEnded(tab, ERR_SESSION_REVOKED);
    const json = JSON.stringify(tab.seen.payloads);
    assert.ok(!json.includes(sidOf(alice.cookie)));
    assert.ok(!json.includes('session-auth:'));
    assert.ok(!json.includes('alice'));
  });
});

describe('live sessions: ending', () => {
  test('disconnectSession for an unknown session ID resolves and ends nothing', async (tc) => {
    const { t, kit } = await startWithKit(tc, everyKindOfNamespace, options);
    const [alice, bob] = await Promise.all([logIn(kit, 'alice'), logIn(kit, 'bob')]);
    const tabs = [
      ...(await tabsOf(alice, ['/', '/chat', '/tenant-acme'])),
      ...(await tabsOf(bob, ['/', '/chat'])),
    ];
    const rooms = sessionAuthRooms(t.io.of('/chat'));
    await disconnectSession(t.io, 'no-such-session');
    await disconnectSession(t.io, `${sidOf(alice.cookie)}x`);
    await disconnectUser(t.io, '3');
    // With the in-memory adapter they end sockets before they resolve; an answer from each
    // socket after them comes after anything they sent it.
    for (const tab of tabs) assert.equal((await whoami(tab.socket)).nsp, tab.nsp);
    for (const tab of tabs) expectUntouched(tab.socket, tab.seen, tab.nsp);
    assert.deepEqual(sessionAuthRooms(t.io.of('/chat')), rooms);
  });

  test('ending is idempotent: twice, or by session then by user, sends one session:ended', async (tc) => {
    const { t, kit } = await startWithKit(tc, everyKindOfNamespace, options);
    const [alice, bob] = await Promise.all([logIn(kit, 'alice'), logIn(kit, 'bob')]);
    const [bobTab] = await tabsOf(bob, ['/chat']);
    assert.ok(bobTab);
    const baseline = activeTimeouts();
    const tabs = await tabsOf(alice, ['/', '/chat', '/tenant-acme']);
    const sid = sidOf(alice.cookie);
    await Promise.all([disconnectSession(t.io, sid), disconnectSession(t.io, sid)]);
    await disconnectSession(t.io, sid);
    await disconnectUser(t.io, '1');
    await alice.logout();
    // expectTabEnded checks that exactly one session:ended, then one disconnect, arrived.
    for (const tab of tabs) await expectTabEnded(tab, ERR_SESSION_REVOKED);
    expectUntouched(bobTab.socket, bobTab.seen, 'bob');
    await expectNothingLeft(t.io, {
      namespaces: ['/', '/chat', '/tenant-acme'],
      sessionIDs: [sid],
      userKeys: ['1'],
      remaining: { '/chat': 1 },
    });
    await expectTimersBack(baseline);
  });

  test('with the default in-memory adapter, ending logs no serverSideEmit warning', async (tc) => {
    const warn = tc.mock.method(console, 'warn');
    tc.after(() => {
      warn.mock.restore();
    });
    const { t, kit } = await startWithKit(tc, everyKindOfNamespace, options);
    const [first, second, third] = await Promise.all([
      logIn(kit, 'alice'),
      logIn(kit, 'alice'),
      logIn(kit, 'bob'),
    ]);
    const tabs = [
      ...(await tabsOf(first, ['/chat'])),
      ...(await tabsOf(second, ['/chat'])),
      ...(await tabsOf(third, ['/chat'])),
    ];
    await disconnectSession(t.io, sidOf(first.cookie));
    await disconnectUser(t.io, '1');
    await third.logout();
    for (const tab of tabs) await expectTabEnded(tab, ERR_SESSION_REVOKED);
    assert.deepEqual(
      warn.mock.calls.map((call) => call.arguments),
      [],
      'console.warn was called',
    );
  });

  test('a client that disconnects by itself leaves no room and no timer', async (tc) => {
    const { t, kit } = await startWithKit(tc, everyKindOfNamespace, options);
    const alice = await logIn(kit, 'alice');
    const baseline = activeTimeouts();
    const tabs = await tabsOf(alice, ['/', '/chat', '/tenant-acme']);
    assert.notDeepEqual(sessionAuthRooms(t.io.of('/chat')), []);
    for (const tab of tabs) tab.socket.disconnect();
    await expectNothingLeft(t.io, {
      namespaces: ['/', '/chat', '/tenant-acme'],
      sessionIDs: [sidOf(alice.cookie)],
      userKeys: ['1'],
    });
    await expectTimersBack(baseline);
  });
});

describe('live sessions: refused sockets', () => {
  test('a socket refused by requireAuth (401 or 403) leaves no room, socket or timer', async (tc) => {
    const { t, kit } = await startWithKit(tc, withAdmin, options);
    const [bob, visiting] = await Promise.all([logIn(kit, 'bob'), visitor(kit)]);
    const baseline = activeTimeouts();

    await expectRefused(bob.connect('/admin'), ERR_FORBIDDEN);
    await expectRefused(bob.connect('/tenant-acme'), ERR_FORBIDDEN);
    await expectRefused(visiting.connect('/chat'), ERR_UNAUTHORIZED);

    await expectNothingLeft(t.io, {
      namespaces: ['/admin', '/tenant-acme', '/chat'],
      sessionIDs: [sidOf(bob.cookie), sidOf(visiting.cookie)],
      userKeys: ['2'],
    });
    await expectTimersBack(baseline);
    // Ending their sessions later finds nothing, and breaks nothing.
    await disconnectSession(t.io, sidOf(bob.cookie));
    await disconnectSession(t.io, sidOf(visiting.cookie));
    await disconnectUser(t.io, '2');
    // Bob can still use what he may use.
    const [bobTab] = await tabsOf(bob, ['/chat']);
    assert.ok(bobTab);
    expectUntouched(bobTab.socket, bobTab.seen, 'bob');
  });

  test('a client that leaves mid-handshake (async authorize) leaves no room, socket or timer', async (tc) => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let arrive: (socket: ServerSocket) => void = () => undefined;
    const arrived = new Promise<ServerSocket>((resolve) => {
      arrive = resolve;
    });
    const t = await start(
      tc,
      ({ io, session, passport }) => {
        requireAuth(sessionNamespace(io.of('/slow'), session, { passport }), {
          authorize: async (_user, socket) => {
            arrive(socket);
            await held;
            return true;
          },
        });
      },
      options,
    );
    const alice = await t.login('alice');
    const baseline = activeTimeouts();
    const socket = t.connect('/slow', { cookie: alice });
    const pending = await within(arrived, 'the handshake to reach authorize');
    // The client has left once the server has seen its connection close, not some time after
    // it was told to: released earlier, authorize would let the socket in.
    const left = new Promise((resolve) => pending.conn.once('close', resolve));
    socket.disconnect();
    await within(left, 'the server to see the client leave');
    release();
    await expectNothingLeft(t.io, {
      namespaces: ['/slow'],
      sessionIDs: [sidOf(alice)],
      userKeys: ['1'],
    });
    await expectTimersBack(baseline);
  });
});
