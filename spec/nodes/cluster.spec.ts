// Several nodes: a real redis-server, and each node a separate Node process (spec/support/
// cluster-node.ts) with a connect-redis session store and @socket.io/redis-adapter. Driven the way
// a user drives an app: HTTP logins and logouts with cookies, and real socket.io-client sockets.
//
// Clients are websocket-only. A polling client's requests must all reach the node that holds its
// engine session (sticky sessions, which a load balancer gives); this spec talks to each node
// directly, with no load balancer, so it cannot give them. One WebSocket is one TCP connection to
// one node: sticky by construction.
//
// Needs redis-server. Under CI=true its absence fails this spec; elsewhere it is skipped with a
// warning. Run it alone with:
//   node --import tsx --test --test-timeout=120000 spec/nodes/cluster.spec.ts
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import {
  ERR_SESSION_EXPIRED,
  ERR_SESSION_REVOKED,
  ERR_UNAUTHORIZED,
  ERR_FORBIDDEN,
} from '../../lib/index.js';
import { delay, waitFor } from '../support/client.js';
import {
  ClusterNode,
  closeClients,
  expectAllEnded,
  killAll,
  label,
  login,
  logout,
  nodeNamed,
  open,
  refusalOf,
  settle,
  startNodes,
  tabs,
  until,
  type Tab,
} from '../support/cluster.js';
import type { FetchedSocket, NodeWho } from '../support/cluster-node.js';
import { redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';
import { revalidationRounds } from '../support/stores.js';
import { whoami } from '../support/whoami.js';
import { expectUntouched, sidOf } from '../support/session-ending.js';

// Throws under CI=true when redis-server is missing: the spec then fails instead of skipping.
const unavailable = redisUnavailable();
if (unavailable !== undefined) {
  console.warn(
    `\n*** SKIPPED spec/nodes/cluster.spec.ts (the multi-node spec): ${unavailable}.\n` +
      '*** Install redis-server, then run it with:\n' +
      '***   node --import tsx --test --test-timeout=120000 spec/nodes/cluster.spec.ts ***\n',
  );
}
const skip = unavailable ?? false;

const REVALIDATE_MS = 500;

/** The `user` of each fetched socket's data, sorted, with the node-independent fields only. */
function onlineUsers(sockets: FetchedSocket[]): unknown[] {
  return sockets
    .map((socket) => (socket.data as { user?: unknown }).user ?? null)
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

// ---------------------------------------------------------------------------------------------
// The spec
// ---------------------------------------------------------------------------------------------

describe('cluster: a real Redis and separate node processes', { skip }, () => {
  let redis: RedisServer | undefined;
  let redisClient: ReturnType<typeof createClient> | undefined;

  const store = (): ReturnType<typeof createClient> => {
    assert.ok(redisClient, 'the spec’s Redis client');
    return redisClient;
  };

  before(async () => {
    redis = await startRedis();
    redisClient = createClient({ url: redis.url });
    redisClient.on('error', (error: unknown) => {
      console.error('cluster spec: redis client:', error);
    });
    await redisClient.connect();
  });
  // Registered before any node starts, so that a failed start still cleans up.
  after(async () => {
    closeClients();
    killAll();
    if (redisClient?.isOpen) redisClient.destroy();
    await redis?.stop();
  });
  afterEach(closeClients);

  describe('revocation broadcasts (revalidation off, so only broadcasts can end a socket)', () => {
    const nodes: ClusterNode[] = [];
    const env = { REVALIDATE_MS: 'off', ADAPTER_KEY: 'cluster-broadcast' };
    before(async () => {
      assert.ok(redis);
      await startNodes(['A', 'B', 'C'], { ...env, REDIS_URL: redis.url }, nodes);
    });
    afterEach(() => settle(nodes));
    after(async () => {
      await Promise.all(nodes.map((node) => node.stop()));
    });
    const A = (): ClusterNode => nodeNamed(nodes, 'A');
    const B = (): ClusterNode => nodeNamed(nodes, 'B');
    const C = (): ClusterNode => nodeNamed(nodes, 'C');

    test('logged in through A, the user is the same on B and C', async () => {
      const alice = await login(A(), 'alice');
      await tabs(B(), alice, ['/', '/chat'], 'alice');
      await tabs(C(), alice, ['/chat'], 'alice');
      // A stranger is still refused on every node.
      const stranger = open(B(), '/chat', 'connect.sid=s%3Anope.nope');
      await waitFor(() => stranger.errors.length > 0, 5000, 'a connect_error');
      assert.equal(stranger.errors[0]?.data?.code, ERR_UNAUTHORIZED);
    });

    test('a logout through A ends the session’s sockets on B and C: session:ended, then disconnect', async () => {
      const [alice, bob] = await Promise.all([login(A(), 'alice'), login(B(), 'bob')]);
      const aliceTabs = [
        ...(await tabs(A(), alice, ['/chat'], 'alice')),
        ...(await tabs(B(), alice, ['/', '/chat'], 'alice')),
        ...(await tabs(C(), alice, ['/', '/chat'], 'alice')),
      ];
      const bobTabs = await tabs(B(), bob, ['/', '/chat'], 'bob');

      await logout(A(), alice);
      await expectAllEnded(aliceTabs, ERR_SESSION_REVOKED);
      for (const tab of bobTabs) expectUntouched(tab.socket, tab.seen, `bob: ${label(tab)}`);
      // The old cookie opens nothing on any node.
      for (const node of [B(), C()]) {
        const again = open(node, '/chat', alice);
        await waitFor(() => again.errors.length > 0, 5000, `a connect_error on ${node.name}`);
        assert.deepEqual(refusalOf(again.errors[0]), { code: ERR_UNAUTHORIZED, status: 401 });
      }
    });

    test('disconnectUser on A ends the user’s sockets on every node, in every session', async () => {
      const [aliceOnA, aliceOnC, bob] = await Promise.all([
        login(A(), 'alice'),
        login(C(), 'alice'),
        login(B(), 'bob'),
      ]);
      assert.notEqual(sidOf(aliceOnA), sidOf(aliceOnC));
      const aliceTabs = [
        ...(await tabs(B(), aliceOnA, ['/', '/chat'], 'alice')),
        ...(await tabs(C(), aliceOnA, ['/chat'], 'alice')),
        ...(await tabs(A(), aliceOnC, ['/chat'], 'alice')),
        ...(await tabs(B(), aliceOnC, ['/chat'], 'alice')),
      ];
      const bobTabs = [
        ...(await tabs(B(), bob, ['/chat'], 'bob')),
        ...(await tabs(C(), bob, ['/'], 'bob')),
      ];

      // Resolves once every node acknowledged.
      assert.equal(await A().call('disconnectUser', { key: '1' }), null);
      await expectAllEnded(aliceTabs, ERR_SESSION_REVOKED);
      for (const tab of bobTabs) expectUntouched(tab.socket, tab.seen, `bob: ${label(tab)}`);
      for (const node of nodes) {
        const { sockets } = await node.call('stats', null);
        assert.equal(sockets['/chat'], node.name === 'B' ? 1 : 0, `${node.name}: /chat sockets`);
      }
    });

    test('refreshUser on A: a demoted admin’s /admin sockets end on B and C (ERR_FORBIDDEN); /chat stays', async () => {
      const alice = await login(A(), 'alice');
      const admins = [
        ...(await tabs(B(), alice, ['/admin'], 'alice')),
        ...(await tabs(C(), alice, ['/admin'], 'alice')),
      ];
      const [chat] = await tabs(B(), alice, ['/chat'], 'alice');
      assert.ok(chat);
      // The role changes in the "database" every node reads (here, each node's own list).
      for (const node of nodes) await node.call('setRole', { username: 'alice', role: 'member' });
      try {
        // Resolves once every node has checked its sockets and acknowledged.
        assert.equal(await A().call('refreshUser', { key: '1' }), null);
        await expectAllEnded(admins, ERR_FORBIDDEN);
        expectUntouched(chat.socket, chat.seen, label(chat));
      } finally {
        for (const node of nodes) await node.call('setRole', { username: 'alice', role: 'admin' });
      }
    });

    test('disconnectSession on C ends that session on A and B, and no other session', async () => {
      const [first, second] = await Promise.all([login(A(), 'alice'), login(A(), 'alice')]);
      const ended = [
        ...(await tabs(A(), first, ['/', '/chat'], 'alice')),
        ...(await tabs(B(), first, ['/chat'], 'alice')),
      ];
      const kept = await tabs(B(), second, ['/chat'], 'alice');
      await C().call('disconnectSession', { sid: sidOf(first) });
      await expectAllEnded(ended, ERR_SESSION_REVOKED);
      for (const tab of kept) expectUntouched(tab.socket, tab.seen, `second: ${label(tab)}`);
    });

    test('who is online: fetchSockets() on A returns the sockets of B and C with data.user', async () => {
      const [alice, bob] = await Promise.all([login(A(), 'alice'), login(A(), 'bob')]);
      await tabs(B(), alice, ['/', '/chat'], 'alice');
      await tabs(C(), bob, ['/chat'], 'bob');

      const local = await A().call('stats', null);
      assert.deepEqual(local.sockets, { '/': 0, '/chat': 0 }, 'A itself has no socket');
      const chat = await A().call('fetchSockets', { nsp: '/chat' });
      assert.deepEqual(onlineUsers(chat), [
        { id: '1', username: 'alice' },
        { id: '2', username: 'bob' },
      ]);
      const root = await A().call('fetchSockets', { nsp: '/' });
      assert.deepEqual(onlineUsers(root), [{ id: '1', username: 'alice' }]);
      // socket.data is a summary: no session ID in it, whichever node it comes from.
      for (const socket of [...chat, ...root]) {
        const json = JSON.stringify(socket.data);
        assert.ok(!json.includes(sidOf(alice)) && !json.includes(sidOf(bob)), json);
      }
    });

    test('with revalidateIntervalMs: false, a session deleted straight from Redis goes unnoticed, and nothing is read', async () => {
      // The control for the revalidation describe below: what a missed revocation looks like
      // without it.
      const alice = await login(A(), 'alice');
      const aliceTabs = await tabs(B(), alice, ['/', '/chat'], 'alice');
      const before = await B().call('stats', null);
      assert.equal(await store().del(`sess:${sidOf(alice)}`), 1);
      // Only a window can prove a revalidation that never comes (it would come on a timer, and
      // nothing marks that none is armed): three intervals. The round trip on each tab after it
      // brings any end sent before.
      await delay(3 * REVALIDATE_MS);
      const later = await B().call('stats', null);
      assert.equal(later.storeGets, before.storeGets, 'store reads on B while nothing happened');
      for (const tab of aliceTabs) await whoami<NodeWho>(tab.socket, label(tab));
      for (const tab of aliceTabs) expectUntouched(tab.socket, tab.seen, label(tab));
    });

    // Last of this describe: it restarts B.
    test('a node restarted during a logout: the client’s reconnect to it is refused, never the old identity', async () => {
      const alice = await login(A(), 'alice');
      const [root, chat] = [
        open(B(), '/', alice, { reconnection: true }),
        open(B(), '/chat', alice, { reconnection: true }),
      ];
      for (const tab of [root, chat])
        assert.equal((await whoami<NodeWho>(tab.socket, label(tab))).user, 'alice');

      await B().kill();
      await waitFor(
        () => !root.socket.connected && !chat.socket.connected,
        5000,
        'the clients to see B go',
      );
      assert.equal(chat.seen.reasons.length, 1);
      assert.match(chat.seen.reasons[0] ?? '', /^transport (close|error)$/);
      assert.ok(chat.socket.active, 'the client keeps trying to reconnect');

      await logout(A(), alice);
      // B comes back, on the same port, having heard nothing of the logout.
      await B().launch();

      // `/chat` is refused with a namespace-level 401: the client stops trying.
      await waitFor(
        () => chat.errors.some((err) => err.data?.code !== undefined),
        10_000,
        'the reconnect to /chat to be refused',
      );
      const refused = chat.errors.find((err) => err.data?.code !== undefined);
      assert.deepEqual(refusalOf(refused), { code: ERR_UNAUTHORIZED, status: 401 });
      assert.equal(chat.socket.active, false, 'the client would go on reconnecting');
      // `/` is open to anyone: it comes back, as a stranger on a fresh session.
      const who = await whoami<NodeWho>(root.socket, label(root));
      assert.equal(who.node, 'B');
      assert.equal(who.user, null);
      assert.notEqual(who.sessionID, sidOf(alice));
      // An inactive socket.io-client socket has dropped its Manager subscriptions: / coming back
      // on the Manager does not bring /chat with it (no time window needed to see that).
      assert.equal(chat.socket.connected, false, '/chat came back');
      assert.deepEqual(chat.seen.events, ['disconnect'], 'events on /chat');
      const online = await A().call('fetchSockets', { nsp: '/chat' });
      assert.deepEqual(onlineUsers(online), [], 'alice is online somewhere');
    });
  });

  describe(`missed revocations, caught by revalidation (revalidateIntervalMs: ${REVALIDATE_MS})`, () => {
    const nodes: ClusterNode[] = [];
    const env = {
      REVALIDATE_MS: String(REVALIDATE_MS),
      ADAPTER_KEY: 'cluster-revalidate',
      // The logout's broadcast to a deaf node is retried: keep those retries short.
      REQUESTS_TIMEOUT: '1000',
    };
    before(async () => {
      assert.ok(redis);
      await startNodes(['D', 'E'], { ...env, REDIS_URL: redis.url }, nodes);
    });
    afterEach(() => settle(nodes));
    after(async () => {
      await Promise.all(nodes.map((node) => node.stop()));
    });
    const D = (): ClusterNode => nodeNamed(nodes, 'D');
    const E = (): ClusterNode => nodeNamed(nodes, 'E');

    /**
     * Asserts every tab ended with ERR_SESSION_REVOKED, and that on each node of `revalidating`
     * a revalidation round that began after the revocation (`since`, the machine's one clock)
     * ended them: at most two reads of the session there since then, the one that found it gone
     * and, before it, one that may have reached Redis first. Rounds, not milliseconds: how soon a
     * round comes on a busy machine is the bench's to measure.
     */
    async function expectEndedByRevalidation(
      list: Tab[],
      since: number,
      sid: string,
      revalidating: ClusterNode[],
    ): Promise<void> {
      await expectAllEnded(list, ERR_SESSION_REVOKED);
      for (const node of revalidating) {
        const reads = await node.call('storeReads', { from: 0 });
        const after = reads.filter((read) => read.sid === sid && read.at >= since).length;
        assert.ok(after >= 1 && after <= 2, `${node.name} read the session ${after} times since`);
      }
    }

    test('a session deleted straight from Redis ends its sockets on every node within the interval', async () => {
      const [alice, bob] = await Promise.all([login(D(), 'alice'), login(D(), 'bob')]);
      const aliceTabs = [
        ...(await tabs(D(), alice, ['/chat'], 'alice')),
        ...(await tabs(E(), alice, ['/', '/chat'], 'alice')),
      ];
      const bobTabs = await tabs(E(), bob, ['/chat'], 'bob');
      // No node hears of this: no logout, no broadcast.
      const since = Date.now();
      assert.equal(await store().del(`sess:${sidOf(alice)}`), 1);
      await expectEndedByRevalidation(aliceTabs, since, sidOf(alice), [D(), E()]);
      for (const tab of bobTabs) expectUntouched(tab.socket, tab.seen, `bob: ${label(tab)}`);
    });

    test('a session whose user changed straight in Redis ends within the interval', async () => {
      const alice = await login(D(), 'alice');
      const aliceTabs = [
        ...(await tabs(D(), alice, ['/'], 'alice')),
        ...(await tabs(E(), alice, ['/chat'], 'alice')),
      ];
      const key = `sess:${sidOf(alice)}`;
      const stored = await store().get(key);
      assert.ok(stored !== null);
      const data = JSON.parse(stored) as { passport: { user: string } };
      assert.equal(data.passport.user, '1');
      data.passport.user = '2';
      const since = Date.now();
      await store().set(key, JSON.stringify(data), { expiration: 'KEEPTTL' });
      await expectEndedByRevalidation(aliceTabs, since, sidOf(alice), [D(), E()]);
    });

    test('a logout broadcast that E never hears: E ends the sockets at its next revalidation', async () => {
      const alice = await login(D(), 'alice');
      const onD = await tabs(D(), alice, ['/chat'], 'alice');
      const onE = await tabs(E(), alice, ['/', '/chat'], 'alice');
      await E().call('deafen', null);
      try {
        const since = Date.now();
        await logout(D(), alice);
        // D ends its own at once; E, which never got (nor acknowledged) the broadcast, at its
        // next revalidation round.
        await expectEndedByRevalidation([...onD, ...onE], since, sidOf(alice), [E()]);
      } finally {
        await E().call('hear', null);
      }
    });

    test('a refresh that E never hears: E’s revalidation ends the demoted admin’s socket', async () => {
      const alice = await login(D(), 'alice');
      const onD = await tabs(D(), alice, ['/admin'], 'alice');
      const onE = await tabs(E(), alice, ['/admin'], 'alice');
      for (const node of nodes) await node.call('setRole', { username: 'alice', role: 'member' });
      await E().call('deafen', { only: 'refresh' });
      try {
        await D().call('refreshUser', { key: '1' });
        // D at once; E, which never heard the refresh, at its next revalidation round.
        await expectAllEnded([...onD, ...onE], ERR_FORBIDDEN);
      } finally {
        await E().call('hear', null);
        for (const node of nodes) await node.call('setRole', { username: 'alice', role: 'admin' });
      }
    });

    test('one store read per session per interval on each node, not one per socket', async () => {
      const alice = await login(D(), 'alice');
      // Four sockets of one session on E.
      const aliceTabs = [
        ...(await tabs(E(), alice, ['/', '/chat'], 'alice')),
        ...(await tabs(E(), alice, ['/', '/chat'], 'alice')),
      ];
      const { sockets } = await E().call('stats', null);
      assert.deepEqual(sockets, { '/': 2, '/chat': 2 });
      // E's own log of its store reads, grouped into rounds (in E's clock, an interval apart):
      // one read of the session per round, where one per socket would be four.
      const from = (await E().call('storeReads', { from: 0 })).length;
      const reads = await until(
        () => E().call('storeReads', { from }),
        (log) => revalidationRounds(log, REVALIDATE_MS).length >= 4,
        4 * REVALIDATE_MS + 10_000,
        'four revalidation rounds on E',
      );
      // The last round may still be under way: judge the complete ones.
      for (const round of revalidationRounds(reads, REVALIDATE_MS).slice(0, -1)) {
        assert.deepEqual(round, [sidOf(alice)], 'the sessions read in a round');
      }
      for (const tab of aliceTabs)
        assert.equal((await whoami<NodeWho>(tab.socket, label(tab))).user, 'alice');
      for (const tab of aliceTabs) expectUntouched(tab.socket, tab.seen, label(tab));
    });
  });

  describe('expiry on every node (maxAge 3 s, the default revalidation)', () => {
    const MAX_AGE = 3000;
    const nodes: ClusterNode[] = [];
    before(async () => {
      assert.ok(redis);
      await startNodes(
        ['F', 'G'],
        { MAX_AGE: String(MAX_AGE), ADAPTER_KEY: 'cluster-expiry', REDIS_URL: redis.url },
        nodes,
      );
    });
    after(async () => {
      await Promise.all(nodes.map((node) => node.stop()));
    });

    test('the session’s sockets end with ERR_SESSION_EXPIRED on both nodes, at the expiry', async () => {
      const [F, G] = [nodeNamed(nodes, 'F'), nodeNamed(nodes, 'G')];
      const loggedIn = Date.now();
      const alice = await login(F, 'alice');
      const aliceTabs = [
        ...(await tabs(F, alice, ['/chat'], 'alice')),
        ...(await tabs(G, alice, ['/', '/chat'], 'alice')),
      ];
      await waitFor(
        () => aliceTabs.every((tab) => tab.endedAt !== undefined),
        MAX_AGE + 5000,
        'the sockets to end',
      );
      await expectAllEnded(aliceTabs, ERR_SESSION_EXPIRED);
      for (const tab of aliceTabs) {
        const at = (tab.endedAt ?? 0) - loggedIn;
        // Not before the cookie expired (the login's response set it). How long after is the
        // bench's to measure.
        assert.ok(at >= MAX_AGE - 100, `${label(tab)} ended ${at} ms after the login`);
      }
      const again = open(G, '/chat', alice);
      await waitFor(() => again.errors.length > 0, 5000, 'a connect_error');
      assert.equal(again.errors[0]?.data?.code, ERR_UNAUTHORIZED);
    });
  });
});
