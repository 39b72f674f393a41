// Authorization kept true on live sockets (one node): refreshUser and refreshSession decide again
// what requireAuth decided at connect, and room policies guard socket.join() and what a socket may
// stay in. The two-node cases are in spec/nodes/cluster.spec.ts.
import assert from 'node:assert/strict';
import { after, describe, test, type TestContext as NodeTestContext } from 'node:test';
import type { Socket as ServerSocket } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import {
  ERR_AUTHORIZE_ERROR,
  ERR_FORBIDDEN,
  ERR_MIDDLEWARE_TIMEOUT,
  ERR_SESSION_REVOKED,
  ROOMS_LEFT_EVENT,
  type RoomsLeftPayload,
  SessionAuthError,
  refreshSession,
  refreshUser,
  requireAuth,
  sessionNamespace,
} from '../../lib/index.js';
import { expectRefused, type Agent } from 'socket.io-session-auth/testing';
import { request } from '../support/client.js';
import { type TestContext, type TestServer, sidOf, start, users } from '../support/server.js';
import { logIn, startWithKit } from '../support/kit.js';
import {
  expectTabEnded,
  expectUntouched,
  type KitTab,
  watchEnd,
} from '../support/session-ending.js';

// The users of support/server.ts are this process's "database": a test changes one, then puts it
// back, so the others see them as they were.
function setRole(username: string, role: 'admin' | 'member'): void {
  const user = users.find((u) => u.username === username);
  assert.ok(user);
  (user as { role: 'admin' | 'member' }).role = role;
}
function setTenants(username: string, tenants: string[]): void {
  const user = users.find((u) => u.username === username);
  assert.ok(user);
  (user as { tenants: string[] }).tenants = tenants;
}
after(() => {
  setRole('alice', 'admin');
  setTenants('alice', ['acme']);
});

/** A tab of `agent` on `nsp`, watched for its end. */
async function tab(agent: Agent, nsp: string): Promise<KitTab> {
  const socket = await agent.connect(nsp);
  return { nsp, socket, seen: watchEnd(socket) };
}

/** `/admin` for admins, `/chat` for everyone, `/docs` with a room policy; each answers `whoami`. */
function guarded(ctx: TestContext, extra: { onError?: (error: unknown) => void } = {}): void {
  const { io, session, passport } = ctx;
  const answer = (socket: ServerSocket): void => {
    socket.on('whoami', (cb: (who: unknown) => void) => {
      cb({ user: socket.request.user ?? null, data: socket.data as unknown });
    });
    socket.on('join', async (room: string, cb: (result: unknown) => void) => {
      try {
        await socket.join(room);
        cb({ joined: room, rooms: [...socket.rooms].filter((r) => r !== socket.id).sort() });
      } catch (error) {
        cb({ refused: error instanceof SessionAuthError ? error.data : String(error) });
      }
    });
    socket.on('rooms', (cb: (rooms: string[]) => void) => {
      cb([...socket.rooms].filter((r) => r !== socket.id).sort());
    });
  };
  requireAuth(sessionNamespace(io.of('/admin'), session, { passport }), {
    authorize: (user) => user.role === 'admin',
    ...extra,
  }).on('connection', answer);
  requireAuth(sessionNamespace(io.of('/chat'), session, { passport })).on('connection', answer);
  requireAuth(sessionNamespace(io.of('/docs'), session, { passport }), {
    rooms: {
      // A tenant's documents: doc:<tenant>:<id>.
      'doc:*': (user, room) => user.tenants.includes(room.split(':')[1] ?? ''),
      lobby: () => true,
    },
    ...extra,
  }).on('connection', answer);
}

function rooms(socket: ClientSocket): Promise<string[]> {
  return request<string[]>(socket, 'rooms');
}

describe('refreshUser: a role change reaches live sockets', () => {
  test('a demoted admin’s /admin socket ends with ERR_FORBIDDEN; /chat stays and sees the new user', async (tc) => {
    const { t, kit } = await startWithKit(tc, guarded);
    const alice = await logIn(kit, 'alice');
    const admin = await tab(alice, '/admin');
    const chat = await tab(alice, '/chat');
    tc.after(() => {
      setRole('alice', 'admin');
    });
    setRole('alice', 'member');
    await refreshUser(t.io, '1');
    await expectTabEnded(admin, ERR_FORBIDDEN, '/admin');
    expectUntouched(chat.socket, chat.seen, '/chat');
    const who = await request<{ user: { role: string }; data: unknown }>(chat.socket, 'whoami');
    assert.equal(who.user.role, 'member', 'socket.request.user is the fresh user');
    assert.deepEqual(who.data, { user: { id: '1', username: 'alice' } });
    // And a reconnect is refused the usual way.
    await expectRefused(alice.connect('/admin'), ERR_FORBIDDEN);
  });

  test('a socket that still passes keeps its rooms and gets the next broadcast', async (tc) => {
    const { t, kit } = await startWithKit(tc, guarded);
    const alice = await logIn(kit, 'alice');
    const admin = await tab(alice, '/admin');
    const joined = await request<{ rooms: string[] }>(admin.socket, 'join', 'ops');
    assert.deepEqual(joined.rooms, ['ops']);
    await refreshUser(t.io, '1');
    expectUntouched(admin.socket, admin.seen, '/admin');
    assert.deepEqual(await rooms(admin.socket), ['ops']);
    t.io.of('/admin').to('ops').emit('news', 'still here');
    assert.equal(await admin.socket.expectEvent('news'), 'still here');
  });

  test('a user now gone (deserializeUser gives false) ends as revoked', async (tc) => {
    const { t, kit } = await startWithKit(tc, guarded);
    const bob = await logIn(kit, 'bob');
    const chat = await tab(bob, '/chat');
    const user = users.find((u) => u.username === 'bob');
    assert.ok(user);
    const id = user.id;
    (user as { id: string }).id = 'bob-deleted';
    tc.after(() => {
      (user as { id: string }).id = id;
    });
    await refreshUser(t.io, '2');
    await expectTabEnded(chat, ERR_SESSION_REVOKED, '/chat');
  });

  test('refreshSession(io, sid) checks that session’s sockets only', async (tc) => {
    const { t, kit } = await startWithKit(tc, guarded);
    const [firefox, chrome] = [await logIn(kit, 'alice'), await logIn(kit, 'alice')];
    const onFirefox = await tab(firefox, '/admin');
    const onChrome = await tab(chrome, '/admin');
    tc.after(() => {
      setRole('alice', 'admin');
    });
    setRole('alice', 'member');
    await refreshSession(t.io, sidOf(firefox.cookie));
    await expectTabEnded(onFirefox, ERR_FORBIDDEN, 'firefox');
    expectUntouched(onChrome.socket, onChrome.seen, 'chrome (not refreshed yet)');
  });

  test('an unknown user or session: a no-op that resolves', async (tc) => {
    const { t, kit } = await startWithKit(tc, guarded);
    const alice = await logIn(kit, 'alice');
    const admin = await tab(alice, '/admin');
    await refreshUser(t.io, 'nobody');
    await refreshSession(t.io, 'no-such-session');
    assert.throws(() => refreshUser(t.io, ''), /^TypeError: refreshUser:/);
    assert.throws(() => refreshSession(t.io, ''), /^TypeError: refreshSession:/);
    expectUntouched(admin.socket, admin.seen, '/admin');
  });

  test('a flood of refreshes of one user is one pass, then one more', async (tc) => {
    const { t, kit } = await startWithKit(tc, guarded);
    const alice = await logIn(kit, 'alice');
    await tab(alice, '/chat');
    const before = t.deserializeCount();
    await Promise.all(Array.from({ length: 100 }, () => refreshUser(t.io, '1')));
    const passes = t.deserializeCount() - before;
    assert.ok(passes >= 1 && passes <= 2, `${passes} deserializeUser calls for 100 refreshes`);
  });
});

describe('refreshUser: authorize that fails on a live socket', () => {
  async function failing(
    tc: NodeTestContext,
    authorize: () => boolean | Promise<boolean>,
  ): Promise<{ t: TestServer; admin: KitTab; reported: unknown[] }> {
    const reported: unknown[] = [];
    let live = false;
    const { t, kit } = await startWithKit(tc, ({ io, session, passport }) => {
      requireAuth(sessionNamespace(io.of('/admin'), session, { passport }), {
        // Lets the socket in, then fails once it is live.
        authorize: () => (live ? authorize() : true),
        timeoutMs: 300,
        onError: (error) => {
          reported.push(error);
        },
      });
    });
    const alice = await logIn(kit, 'alice');
    const admin = await tab(alice, '/admin');
    live = true;
    return { t, admin, reported };
  }

  test('it throws: session:ended ERR_AUTHORIZE_ERROR, onError gets the error', async (tc) => {
    const failure = new Error('the role service is down');
    const { t, admin, reported } = await failing(tc, () => {
      throw failure;
    });
    await refreshUser(t.io, '1');
    await expectTabEnded(admin, ERR_AUTHORIZE_ERROR, '/admin');
    assert.deepEqual(reported, [failure]);
  });

  test('it never settles: session:ended ERR_MIDDLEWARE_TIMEOUT after timeoutMs', async (tc) => {
    const { t, admin, reported } = await failing(tc, () => new Promise<boolean>(() => undefined));
    await refreshUser(t.io, '1');
    await expectTabEnded(admin, ERR_MIDDLEWARE_TIMEOUT, '/admin');
    assert.deepEqual(reported, []);
  });
});

describe('room policies', () => {
  test('a join no rule allows is refused (ERR_FORBIDDEN, data.room) and never happens', async (tc) => {
    const { kit } = await startWithKit(tc, guarded);
    const alice = await logIn(kit, 'alice');
    const docs = await tab(alice, '/docs');
    assert.deepEqual(await request(docs.socket, 'join', 'doc:acme:1'), {
      joined: 'doc:acme:1',
      rooms: ['doc:acme:1'],
    });
    assert.deepEqual(await request(docs.socket, 'join', 'doc:globex:7'), {
      refused: { code: ERR_FORBIDDEN, status: 403, room: 'doc:globex:7' },
    });
    assert.deepEqual(await request(docs.socket, 'join', 'somewhere-else'), {
      refused: { code: ERR_FORBIDDEN, status: 403, room: 'somewhere-else' },
    });
    assert.deepEqual(await rooms(docs.socket), ['doc:acme:1']);
    expectUntouched(docs.socket, docs.seen, '/docs');
  });

  test('allowed synchronous joins happen at once, as Socket.IO’s do; a refused one nobody awaits is harmless', async (tc) => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    tc.after(() => process.off('unhandledRejection', onUnhandled));
    const { t, kit } = await startWithKit(tc, guarded);
    const alice = await logIn(kit, 'alice');
    const seen = new Promise<string[]>((resolve) => {
      t.io.of('/docs').once('connection', (socket) => {
        void socket.join('lobby');
        const now = [...socket.rooms].filter((r) => r !== socket.id);
        // Refused, and not awaited by anyone.
        void socket.join('doc:globex:1');
        resolve(now);
      });
    });
    const docs = await tab(alice, '/docs');
    assert.deepEqual(await seen, ['lobby'], 'joined before join() returned');
    assert.deepEqual(await rooms(docs.socket), ['lobby']);
    assert.deepEqual(unhandled, []);
  });

  test('a rule that throws or never settles refuses with its own code; onError gets the error', async (tc) => {
    const reported: unknown[] = [];
    const failure = new Error('ACL lookup failed');
    const { kit } = await startWithKit(tc, ({ io, session, passport }) => {
      requireAuth(sessionNamespace(io.of('/docs'), session, { passport }), {
        rooms: {
          'broken:*': () => {
            throw failure;
          },
          'slow:*': () => new Promise<boolean>(() => undefined),
          'async:*': async () => Promise.resolve(true),
        },
        timeoutMs: 300,
        onError: (error) => {
          reported.push(error);
        },
      }).on('connection', (socket) => {
        socket.on('join', (room: string, cb: (result: unknown) => void) => {
          socket.join(room)?.then(
            () => {
              cb({ joined: room });
            },
            (error: unknown) => {
              cb({ refused: (error as SessionAuthError).data });
            },
          );
        });
      });
    });
    const alice = await logIn(kit, 'alice');
    const docs = await tab(alice, '/docs');
    assert.deepEqual(await request(docs.socket, 'join', 'async:1'), { joined: 'async:1' });
    assert.deepEqual(await request(docs.socket, 'join', 'broken:1'), {
      refused: { code: ERR_AUTHORIZE_ERROR, status: 500, room: 'broken:1' },
    });
    assert.deepEqual(await request(docs.socket, 'join', 'slow:1'), {
      refused: { code: ERR_MIDDLEWARE_TIMEOUT, status: 503, room: 'slow:1' },
    });
    assert.deepEqual(reported, [failure]);
  });

  test('after a refresh, a socket leaves the rooms it may no longer be in and is told which', async (tc) => {
    const { t, kit } = await startWithKit(tc, guarded);
    const alice = await logIn(kit, 'alice');
    const docs = await tab(alice, '/docs');
    for (const room of ['lobby', 'doc:acme:1', 'doc:acme:2']) {
      await request(docs.socket, 'join', room);
    }
    tc.after(() => {
      setTenants('alice', ['acme']);
    });
    setTenants('alice', ['globex']);
    await refreshUser(t.io, '1');
    assert.deepEqual(await docs.socket.expectEvent<RoomsLeftPayload>(ROOMS_LEFT_EVENT), {
      rooms: ['doc:acme:1', 'doc:acme:2'],
      data: { code: ERR_FORBIDDEN, status: 403 },
    });
    assert.deepEqual(await rooms(docs.socket), ['lobby']);
    expectUntouched(docs.socket, docs.seen, '/docs');
    assert.deepEqual(await request(docs.socket, 'join', 'doc:globex:3'), {
      joined: 'doc:globex:3',
      rooms: ['doc:globex:3', 'lobby'],
    });
  });
});

describe('setup', () => {
  test('a bad room policy throws a TypeError naming requireAuth', async (tc) => {
    await start(tc, ({ io }) => {
      assert.throws(
        () => requireAuth(io.of('/x'), { rooms: 'nope' as never }),
        /^TypeError: requireAuth: options\.rooms/,
      );
      assert.throws(
        () => requireAuth(io.of('/y'), { rooms: { 'doc:*': 42 as never } }),
        /^TypeError: requireAuth: options\.rooms\["doc:\*"\] must be a function/,
      );
    });
  });
});
