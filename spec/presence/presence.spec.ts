// Presence on one node: each user joins once at their first socket (tabs, namespaces of one
// connection) and leaves once after their last, whatever ended it (a closed tab, a logout,
// disconnectUser, an expiry), after a grace on the package's clock that a reload does not outlast;
// and the opt-in client feed, whose payloads hold the userData summary and nothing else. Real
// parts: the app's express-session and Passport, real HTTP, the real socket.io-client (the kit's).
import assert from 'node:assert/strict';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import { runInNewContext } from 'node:vm';
import { createClient } from 'redis';
import {
  disconnectOnLogout,
  disconnectUser,
  presence,
  refreshUser,
  requireAuth,
  sessionNamespace,
  type Presence,
  type PresenceDiff,
  type PresenceFeedEntry,
  type PresenceOptions,
} from 'socket.io-session-auth';
import { createTestKit, expectEnded, type TestKit } from 'socket.io-session-auth/testing';
import { throwsNaming } from '../support/assertions.js';
import { connected, emitWithReply, within } from '../support/bounded.js';
import { codeBlocks, readmeSection } from '../support/readme.js';
import { start, users, type CreateTestServerOptions, type TestServer } from '../support/server.js';
import { warningsOf } from '../support/warnings.js';

const NAMESPACES = ['/chat', '/news'];
const alice = { id: '1', username: 'alice', role: 'admin', tenants: ['acme'] } as const;
const bob = { id: '2', username: 'bob', role: 'member', tenants: ['globex'] } as const;
const userOf = (u: typeof alice | typeof bob): Express.User => ({ ...u, tenants: [...u.tenants] });

/** A promise-free counter: `until(n)` resolves once it has reached n, within 5 s. */
class Counter {
  readonly seen: string[] = [];
  private readonly waiters = new Set<() => void>();

  push(what: string): void {
    this.seen.push(what);
    for (const wake of this.waiters) wake();
  }

  until(n: number, what: string): Promise<void> {
    return within(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (this.seen.length < n) return;
          this.waiters.delete(check);
          resolve();
        };
        this.waiters.add(check);
        check();
      }),
      `${what} (seen: ${this.seen.join(', ') || 'nothing'})`,
    );
  }
}

interface Setup {
  t: TestServer;
  kit: TestKit;
  /** Server-wide presence: its joins and leaves, as `join alice` / `leave alice`. */
  online: Presence<{ id: string; username: string }>;
  events: Counter;
  /** Server-side disconnects of the namespaces' sockets, as the server saw them. */
  gone: Counter;
  /** Presence scoped to /chat, with the options given for it. */
  chat: Presence;
  /** The user IDs /news's `authorize` turns down from now on (at a refreshUser). */
  demoted: Set<string>;
}

/** /chat and /news, guarded; presence on the server and on /chat; the kit on the app. */
async function setup(
  tc: NodeTestContext,
  options: { server?: PresenceOptions; chat?: PresenceOptions } = {},
  serverOptions: CreateTestServerOptions = {},
): Promise<Setup> {
  const gone = new Counter();
  const demoted = new Set<string>();
  let made: { online: Setup['online']; chat: Presence } | undefined;
  const t = await start(
    tc,
    ({ io, session, passport }) => {
      for (const name of NAMESPACES) {
        const nsp = requireAuth(sessionNamespace(io.of(name), session, { passport }), {
          authorize: (user) => name !== '/news' || !demoted.has(user.id),
        });
        nsp.on('connection', (socket) => {
          socket.on('ping', (ack: () => void) => {
            ack();
          });
          socket.on('disconnect', () => {
            gone.push(`${name} ${socket.id}`);
          });
        });
      }
      made = {
        online: presence(io, { graceMs: 0, ...options.server }),
        chat: presence(io.of('/chat'), { graceMs: 0, ...options.chat }),
      };
    },
    { afterSession: (io) => [disconnectOnLogout(io)], ...serverOptions },
  );
  assert.ok(made);
  const { online, chat } = made;
  tc.after(() => {
    online.close();
    chat.close();
  });
  const events = new Counter();
  online.on('join', ({ user }) => {
    events.push(`join ${user.username}`);
  });
  online.on('leave', ({ user }) => {
    events.push(`leave ${user.username}`);
  });
  const kit = await createTestKit({ io: t.io, session: t.session, passport: t.passport });
  tc.after(() => kit.close());
  return { t, kit, online, events, gone, chat, demoted };
}

/**
 * The page's merge from docs/presence.md, run on a state then diffs as a page receives them:
 * the entries it ends with, in its Map's order.
 */
function pageMerge([state, ...diffs]: [PresenceFeedEntry[], ...PresenceDiff[]]): unknown[] {
  const [block] = codeBlocks(readmeSection('## The client feed', 'docs/presence.md'));
  assert.equal(block?.lang, 'js');
  const handlers = new Map<string, (payload: unknown) => void>();
  const socket = {
    on: (event: string, handler: (payload: unknown) => void) => handlers.set(event, handler),
  };
  const online = runInNewContext(`${block.code}\nonline`, { socket }) as Map<string, unknown>;
  handlers.get('presence:state')?.(state);
  for (const diff of diffs) handlers.get('presence:diff')?.(diff);
  return JSON.parse(JSON.stringify([...online.values()])) as unknown[];
}

describe('presence: one join and one leave per user', () => {
  test('two tabs: one join at the first, the leave only after the last closes', async (tc) => {
    const { kit, online, events, gone } = await setup(tc);
    const agent = await kit.loginAs(userOf(alice));
    const [first, second] = await agent.connect('/chat', { tabs: 2 });
    assert.ok(first && second);
    assert.deepEqual(events.seen, ['join alice']);
    const [entry] = online.list();
    assert.equal(online.count(), 1);
    assert.deepEqual(entry?.user, { id: '1', username: 'alice' }, 'the userData summary');
    assert.equal(entry.userKey, '1');
    assert.equal(entry.connections, 2);
    assert.ok(entry.since <= kit.clock.now());

    first.disconnect();
    await gone.until(1, "the server's side of the first tab");
    assert.deepEqual(events.seen, ['join alice'], 'one tab left: still online');
    assert.equal(online.isOnline('1'), true);
    assert.equal(online.list()[0]?.connections, 1);

    second.disconnect();
    await events.until(2, 'the leave');
    assert.deepEqual(events.seen, ['join alice', 'leave alice']);
    assert.equal(online.isOnline('1'), false);
    assert.deepEqual([online.count(), online.list()], [0, []]);
  });

  test('two namespaces of one connection: one user; a namespace-scoped presence sees its own', async (tc) => {
    const { kit, online, events, gone, chat } = await setup(tc);
    const chatEvents: string[] = [];
    chat.on('join', ({ userKey }) => chatEvents.push(`join ${userKey}`));
    chat.on('leave', ({ userKey }) => chatEvents.push(`leave ${userKey}`));
    const tab = (await kit.loginAs(userOf(alice))).tab();
    const inChat = await tab.connect('/chat');
    const inNews = await tab.connect('/news');
    const bobNews = await (await kit.loginAs(userOf(bob))).connect('/news');
    assert.deepEqual(events.seen, ['join alice', 'join bob']);
    assert.deepEqual(
      online.list().map(({ userKey, connections }) => [userKey, connections]),
      [
        ['1', 2],
        ['2', 1],
      ],
    );
    assert.deepEqual([chat.count(), chat.isOnline('1'), chat.isOnline('2')], [1, true, false]);

    inChat.disconnect();
    await gone.until(1, "the server's side of /chat");
    assert.deepEqual(chatEvents, ['join 1', 'leave 1'], '/chat: alice has left it');
    assert.deepEqual(
      events.seen,
      ['join alice', 'join bob'],
      'the server: alice is still on /news',
    );
    inNews.disconnect();
    await events.until(3, "alice's leave");
    assert.deepEqual(events.seen, ['join alice', 'join bob', 'leave alice']);
    assert.ok(bobNews.connected);
    assert.deepEqual(
      online.list().map(({ userKey }) => userKey),
      ['2'],
    );
  });

  test('a logout ends the last sockets: one leave; another user stays', async (tc) => {
    const { kit, online, events } = await setup(tc);
    const agent = await kit.loginAs(userOf(alice));
    const tabs = await agent.connect('/chat', { tabs: 2 });
    const tab = agent.tab();
    tabs.push(await tab.connect('/news'));
    const bobChat = await (await kit.loginAs(userOf(bob))).connect('/chat');
    await agent.logout();
    for (const socket of tabs) await expectEnded(socket, 'ERR_SESSION_REVOKED');
    await events.until(3, "alice's leave");
    assert.deepEqual(events.seen, ['join alice', 'join bob', 'leave alice']);
    assert.deepEqual(
      online.list().map(({ userKey }) => userKey),
      ['2'],
    );
    await bobChat.emitWithAck('ping');
  });

  test('disconnectUser: two browsers of one user, one leave', async (tc) => {
    const { t, kit, online, events } = await setup(tc);
    const firefox = await kit.loginAs(userOf(alice));
    const chrome = await kit.loginAs(userOf(alice));
    assert.notEqual((await firefox.session())?.id, (await chrome.session())?.id);
    const sockets = [await firefox.connect('/chat'), await chrome.connect('/news')];
    assert.equal(online.list()[0]?.connections, 2);
    await disconnectUser(t.io, '1');
    for (const socket of sockets) await expectEnded(socket, 'ERR_SESSION_REVOKED');
    await events.until(2, 'the leave');
    assert.deepEqual(events.seen, ['join alice', 'leave alice']);
    assert.equal(online.isOnline('1'), false);
  });

  test('a demotion by refreshUser that ends the last sockets: one leave; the user still allowed stays', async (tc) => {
    const { t, kit, online, events, demoted } = await setup(tc);
    const news = await (await kit.loginAs(userOf(alice))).connect('/news', { tabs: 2 });
    const bobNews = await (await kit.loginAs(userOf(bob))).connect('/news');
    demoted.add('1');
    await refreshUser(t.io, '1');
    for (const socket of news) await expectEnded(socket, 'ERR_FORBIDDEN');
    await events.until(3, "alice's leave");
    assert.deepEqual(events.seen, ['join alice', 'join bob', 'leave alice']);
    assert.deepEqual(
      online.list().map(({ userKey, connections }) => [userKey, connections]),
      [['2', 1]],
    );
    await bobNews.emitWithAck('ping');
  });
});

describe('presence: the grace, on the package clock', () => {
  test('an expiry: the leave once the grace has passed, not before', async (tc) => {
    const HOUR = 3_600_000;
    const { kit, online, events } = await setup(
      tc,
      { server: { graceMs: 3000 } },
      { sessionOptions: { cookie: { maxAge: HOUR } } },
    );
    const socket = await (await kit.loginAs(userOf(alice))).connect('/chat');
    assert.deepEqual(events.seen, ['join alice']);
    await kit.clock.advance(HOUR + 1000);
    await expectEnded(socket, 'ERR_SESSION_EXPIRED');
    // The socket is gone: in the grace, still online, with no connection.
    assert.deepEqual(
      online.list().map(({ userKey, connections }) => [userKey, connections]),
      [['1', 0]],
    );
    await kit.clock.advance(2999);
    assert.deepEqual(events.seen, ['join alice'], 'not before the grace has passed');
    await kit.clock.advance(1);
    assert.deepEqual(events.seen, ['join alice', 'leave alice']);
    assert.equal(online.isOnline('1'), false);
  });

  test('a reload within the grace: neither a leave nor a join; a later close leaves after it', async (tc) => {
    const { kit, online, events, gone } = await setup(tc, { server: { graceMs: 3000 } });
    // From its first advance the package's time moves only when advanced: the grace too.
    await kit.clock.advance(0);
    const agent = await kit.loginAs(userOf(alice));
    const before = await agent.connect('/chat');
    const { since } = online.list()[0] ?? assert.fail('alice is online');
    before.disconnect();
    await gone.until(1, "the server's side of the page before the reload");
    assert.equal(online.list()[0]?.connections, 0, 'its socket is gone');
    await kit.clock.advance(2000);
    const after = await agent.connect('/chat');
    assert.deepEqual(events.seen, ['join alice'], 'no second join');
    await kit.clock.advance(10_000);
    assert.deepEqual(events.seen, ['join alice'], 'no leave: the grace timer is cleared');
    assert.deepEqual(online.list()[0]?.since, since, 'online since the first connect');

    after.disconnect();
    await gone.until(2, "the server's side of the page after the reload");
    await kit.clock.advance(3000);
    assert.deepEqual(events.seen, ['join alice', 'leave alice']);
  });
});

describe('presence: connection state recovery', () => {
  test('a socket restored within the grace is counted again, under its new record: one join, one leave', async (tc) => {
    const { t, kit, online, events, gone } = await setup(
      tc,
      { server: { graceMs: 3000 } },
      { serverOptions: { connectionStateRecovery: {} } },
    );
    await kit.clock.advance(0);
    const socket = await (
      await kit.loginAs(userOf(alice))
    ).connect('/chat', {
      transport: 'websocket',
    });
    // Socket.IO restores a session from the offset of the last broadcast its client received.
    t.io.of('/chat').emit('news', 'before');
    await socket.expectEvent('news');
    socket.io.engine.close();
    await gone.until(1, "the server's side of the dropped connection");
    assert.equal(online.list()[0]?.connections, 0);
    const back = within(
      new Promise<void>((resolve) => socket.once('connect', resolve)),
      'the recovery',
    );
    socket.connect();
    await back;
    assert.equal(socket.recovered, true, 'restored by connectionStateRecovery');
    await socket.emitWithAck('ping');
    assert.equal(online.list()[0]?.connections, 1, 'counted once its check has passed');
    await kit.clock.advance(10_000);
    assert.deepEqual(events.seen, ['join alice'], 'no leave, no second join');

    socket.disconnect();
    await gone.until(2, "the server's side of the restored socket");
    await kit.clock.advance(3000);
    assert.deepEqual(events.seen, ['join alice', 'leave alice']);
    assert.equal(t.io.of('/chat').sockets.size, 0);
  });
});

describe('presence: the client feed', () => {
  test('the state on connect, then one coalesced diff; only userData summaries, no session or foreign socket ID', async (tc) => {
    const { kit, gone } = await setup(tc, { chat: { feed: { intervalMs: 1000 } } });
    await kit.clock.advance(0);
    const bobAgent = await kit.loginAs(userOf(bob));
    const observer = await bobAgent.connect('/chat');
    const received: unknown[] = [];
    const take = async <T>(event: string): Promise<T> => {
      const payload = await observer.expectEvent<T>(event);
      received.push(payload);
      return payload;
    };
    const state = await take<PresenceFeedEntry[]>('presence:state');
    assert.equal(state.length, 1);
    const [bobEntry] = state;
    assert.deepEqual(Object.keys(bobEntry ?? {}).sort(), ['id', 'since', 'user']);
    assert.deepEqual(bobEntry?.user, { id: '2', username: 'bob' });
    // The first diff goes at once (none was sent within the interval).
    const first = await take<PresenceDiff>('presence:diff');
    assert.deepEqual(first, { joins: [bobEntry], leaves: [] });

    // Alice joins, leaves, joins again within the interval: one diff, with the net change.
    const aliceAgent = await kit.loginAs(userOf(alice));
    const once = await aliceAgent.connect('/chat');
    const onceId = once.id;
    once.disconnect();
    await gone.until(1, "the server's side of alice's first socket");
    const [aliceA, aliceB] = await aliceAgent.connect('/news', { tabs: 2 });
    const aliceChat = await aliceAgent.connect('/chat');
    await observer.emitWithAck('ping');
    await observer.refuteEvent('presence:diff', { within: 0 });
    await kit.clock.advance(1000);
    const diff = await take<PresenceDiff>('presence:diff');
    assert.deepEqual(diff.leaves, []);
    assert.deepEqual(
      diff.joins.map(({ user }) => user),
      [{ id: '1', username: 'alice' }],
    );
    await observer.emitWithAck('ping');
    await observer.refuteEvent('presence:diff', { within: 0 });

    const aliceState = await aliceChat.expectEvent<PresenceFeedEntry[]>('presence:state');
    received.push(aliceState);
    assert.deepEqual(
      aliceState.map(({ user }) => user),
      [
        { id: '2', username: 'bob' },
        { id: '1', username: 'alice' },
      ],
    );
    assert.equal(aliceState[1]?.id, diff.joins[0]?.id, 'one ID per user, for the merge');
    assert.notEqual(aliceState[1]?.id, '1', 'not the user key');
    assert.deepEqual(pageMerge([state, first, diff]), aliceState, "the docs' merge, replayed");

    const json = JSON.stringify(received);
    const secrets = [
      (await bobAgent.session())?.id,
      (await aliceAgent.session())?.id,
      onceId,
      aliceA?.id,
      aliceB?.id,
      aliceChat.id,
      observer.id,
    ];
    for (const secret of secrets) {
      assert.ok(secret !== undefined && secret.length > 8, 'a session or socket ID to look for');
      assert.ok(!json.includes(secret), `${secret} must not reach a client`);
    }
    for (const { username } of users)
      assert.ok(json.includes(username), 'the scan saw the payloads');
  });
});

describe('presence: setup', () => {
  test('checks its target and options at once, naming the helper', async (tc) => {
    const { t } = await setup(tc);
    const io = t.io;
    throwsNaming(() => presence({} as never), 'presence');
    throwsNaming(() => presence(io, null as never), 'presence');
    throwsNaming(() => presence(io, { graceMs: -1 }), 'presence');
    throwsNaming(() => presence(io, { graceMs: 1.5 }), 'presence');
    throwsNaming(() => presence(io, { feed: 'yes' as never }), 'presence');
    throwsNaming(() => presence(io, { feed: true }), 'presence');
    throwsNaming(() => presence(io.of('/chat'), { feed: { intervalMs: 0 } }), 'presence');
    // Several nodes: checked before anything starts (a client never connected is enough).
    const redis = createClient();
    throwsNaming(() => presence(io, { redis: {} as never }), 'presence');
    throwsNaming(() => presence(io.of('/chat'), { redis, feed: { intervalMs: -1 } }), 'presence');
    throwsNaming(() => presence(io, { redis, heartbeatMs: 1000, expiryMs: 1999 }), 'presence');
    throwsNaming(() => presence(io, { redis, redisPrefix: '' }), 'presence');
    const online = presence(io);
    throwsNaming(() => online.on('joined' as never, () => undefined), 'presence');
    online.close();
  });
});

const UNTRACKED = 'SOCKET_IO_SESSION_AUTH_PRESENCE_UNTRACKED';

// In this order, at the end of the file: the warning is once per process, so the test that
// expects it comes last, and its seeing the warning shows that no test before it gave it.
describe('presence: a scope nothing tracks is named, once', () => {
  test('session namespaces, anonymous and logged-in sockets, presence made first: no warning', async (tc) => {
    const warnings = warningsOf(tc, UNTRACKED);
    const made: Presence[] = [];
    const t = await start(tc, ({ io, session, passport }) => {
      // presence() before the namespaces are layered: the check runs at the first connects.
      made.push(presence(io), presence(io.of('/open')), presence(io.of('/chat')));
      sessionNamespace(io.of('/open'), session, { passport }).on('connection', (socket) => {
        socket.on('ping', (ack: () => void) => {
          ack();
        });
      });
      requireAuth(sessionNamespace(io.of('/chat'), session, { passport }));
    });
    tc.after(() => {
      for (const each of made) each.close();
    });
    // A plain namespace beside them first: a whole server is tracked when one of its namespaces is.
    await connected(t.connect('/'));
    // An anonymous socket of an open session namespace is tracked, userless: not "untracked".
    const anonymous = await connected(t.connect('/open'));
    const cookie = await t.login('alice');
    await connected(t.connect('/open', { cookie }));
    await connected(t.connect('/chat', { cookie }));
    assert.deepEqual(
      made.map((each) => each.count()),
      [1, 1, 1],
    );
    // process.emitWarning emits on a later tick: this round trip comes after it.
    await emitWithReply(anonymous, 'ping');
    assert.deepEqual(warnings, []);
  });

  test('presence on a namespace no sessionNamespace tracks: a warning that names the fix', async (tc) => {
    const warnings = warningsOf(tc, UNTRACKED);
    let lobby: Presence | undefined;
    const t = await start(tc, ({ io, session, passport }) => {
      requireAuth(sessionNamespace(io.of('/chat'), session, { passport }));
      lobby = presence(io.of('/lobby'));
    });
    assert.ok(lobby);
    const online = lobby;
    tc.after(() => {
      online.close();
    });
    const cookie = await t.login('alice');
    await connected(t.connect('/lobby', { cookie }));
    // 'warning' events come on a later tick than the connect that gives them.
    const deadline = Date.now() + 5000;
    while (warnings.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0] ?? '',
      /namespace \/lobby.* presence\(sessionNamespace\(io\.of\('\/lobby'\), sessionMiddleware, \{ passport \}\)\)/,
    );
    // What it warns of: alice is connected there, and counted nowhere.
    assert.deepEqual([online.count(), online.isOnline('1')], [0, false]);
  });
});
