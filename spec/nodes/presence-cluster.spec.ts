// Presence across nodes: two node processes (spec/support/cluster-node.ts, PRESENCE=on: presence
// on /chat with the adapter's Redis client) over a real redis-server, users logged in over HTTP
// with real socket.io-client tabs. A user on both nodes joins once and leaves once, seen on both;
// a node killed with SIGKILL has its users' leaves published by the other; a node that comes back
// is a new node and counts nobody twice.
//
// Here, not in spec/presence: it starts node processes and Redis, as the rest of spec/nodes does,
// which runs on the newest leg only (spec/legs.ts).
//
// Needs redis-server. Under CI=true its absence fails this spec; elsewhere it is skipped with a
// warning. Run it alone with:
//   node --import tsx --test --test-timeout=120000 spec/nodes/presence-cluster.spec.ts
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import {
  ClusterNode,
  closeClients,
  expectPresenceSeen,
  killAll,
  login,
  nodeNamed,
  open,
  presenceSeen,
  settle,
  startNodes,
  tabs,
  until,
} from '../support/cluster.js';
import type { Socket as ClientSocket } from 'socket.io-client';
import type { NodeWho } from '../support/cluster-node.js';
import { redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';
import { sidOf } from '../support/session-ending.js';
import { whoami } from '../support/whoami.js';

// Throws under CI=true when redis-server is missing: the spec then fails instead of skipping.
const unavailable = redisUnavailable();
const skip = unavailable ?? false;

const PREFIX = 'socket.io-session-auth:presence';
const NODES_KEY = `${PREFIX}:{/chat}:nodes`;
const EVENTS = `${PREFIX}:{/chat}:events`;
// Small, so that a crash is cleaned up in about 2 s: the spec's bound is the issue's, 15 s.
const HEARTBEAT_MS = 500;
const EXPIRY_MS = 1500;
const FEED_MS = 50;
const ALICE = '1';
const BOB = '2';

interface FeedEntry {
  id: string;
  user: { username?: string };
}

/**
 * What a page merging the client feed as docs/presence.md shows has: who is online (by id), how
 * many states and diffs came, and every payload as received.
 */
function followFeed(socket: ClientSocket) {
  const online = new Map<string, FeedEntry>();
  const feed = {
    states: 0,
    diffs: 0,
    payloads: [] as string[],
    names: (): string[] => [...online.values()].map((entry) => String(entry.user.username)).sort(),
    ids: (): string[] =>
      [...online.values()].map((e) => `${String(e.user.username)} ${e.id}`).sort(),
  };
  socket.on('presence:state', (entries: FeedEntry[]) => {
    feed.states++;
    feed.payloads.push(JSON.stringify(entries));
    online.clear();
    for (const entry of entries) online.set(entry.id, entry);
  });
  socket.on('presence:diff', (diff: { joins: FeedEntry[]; leaves: FeedEntry[] }) => {
    feed.diffs++;
    feed.payloads.push(JSON.stringify(diff));
    for (const entry of diff.leaves) online.delete(entry.id);
    for (const entry of diff.joins) online.set(entry.id, entry);
  });
  return feed;
}

describe('presence on several nodes: a real Redis and two node processes', { skip }, () => {
  let redis: RedisServer | undefined;
  let spy: ReturnType<typeof createClient> | undefined;
  let listener: ReturnType<typeof createClient> | undefined;
  /** Every message on presence's channels, to check that no session ID is ever in one. */
  const messages: string[] = [];
  const nodes: ClusterNode[] = [];
  const A = (): ClusterNode => nodeNamed(nodes, 'A');
  const B = (): ClusterNode => nodeNamed(nodes, 'B');
  const store = (): ReturnType<typeof createClient> => {
    assert.ok(spy, 'the spec’s Redis client');
    return spy;
  };

  before(async () => {
    redis = await startRedis();
    spy = createClient({ url: redis.url });
    spy.on('error', (error: unknown) => {
      console.error('presence-cluster spec: redis client:', error);
    });
    await spy.connect();
    listener = spy.duplicate();
    listener.on('error', () => {});
    await listener.connect();
    await listener.pSubscribe(`${PREFIX}*`, (message) => messages.push(message));
    await startNodes(
      ['A', 'B'],
      {
        REDIS_URL: redis.url,
        ADAPTER_KEY: 'presence-cluster',
        PRESENCE: 'on',
        PRESENCE_GRACE_MS: '0',
        PRESENCE_HEARTBEAT_MS: String(HEARTBEAT_MS),
        PRESENCE_EXPIRY_MS: String(EXPIRY_MS),
        PRESENCE_FEED_MS: String(FEED_MS),
      },
      nodes,
    );
  });
  // Registered before any node starts (`before` starts them), so that a failed start cleans up.
  after(async () => {
    closeClients();
    killAll();
    if (spy?.isOpen) spy.destroy();
    if (listener?.isOpen) listener.destroy();
    await redis?.stop();
  });
  afterEach(async () => {
    await settle(nodes.filter((node) => node.running));
    // Each user's last event on every node is a leave: the next test starts from nobody online.
    for (const node of nodes.filter((n) => n.running)) {
      await until(
        () => presenceSeen(node),
        (events) =>
          [ALICE, BOB].every((key) => {
            const last = events.filter((e) => e.endsWith(` ${key}`)).at(-1);
            return last === undefined || last.startsWith('leave');
          }),
        10_000,
        `every leave on ${node.name}`,
      );
    }
  });

  test('one user on both nodes: one join and one leave, on both; counts agree', async () => {
    const [fromA, fromB] = [(await presenceSeen(A())).length, (await presenceSeen(B())).length];
    const alice = await login(A(), 'alice');
    const [onA] = await tabs(A(), alice, ['/chat'], 'alice');
    const [onB] = await tabs(B(), alice, ['/chat'], 'alice');
    await expectPresenceSeen(A(), fromA, [`join ${ALICE}`]);
    await expectPresenceSeen(B(), fromB, [`join ${ALICE}`]);
    for (const node of nodes) {
      const view = await node.call('presence', { keys: [ALICE, BOB] });
      assert.equal(view.countShared, 1, `countShared on ${node.name}`);
      assert.equal(view.count, 1, `this node's count on ${node.name}`);
      assert.deepEqual(view.online, { [ALICE]: [true, true], [BOB]: [false, false] });
      assert.deepEqual(view.listShared, [{ userKey: ALICE, connections: 2 }]);
    }

    // Alice's tab on A closes: she is still on B, so no leave. A has let go of her once its own
    // count is 0; bob's join, published after, is the mark: a leave of alice would come before it.
    onA?.socket.disconnect();
    await until(
      () => A().call('presence', { keys: [ALICE] }),
      (view) => view.count === 0,
      5000,
      'A to let go of alice',
    );
    const bob = await login(B(), 'bob');
    await tabs(B(), bob, ['/chat'], 'bob');
    await expectPresenceSeen(A(), fromA, [`join ${ALICE}`, `join ${BOB}`]);
    await expectPresenceSeen(B(), fromB, [`join ${ALICE}`, `join ${BOB}`]);
    assert.deepEqual((await A().call('presence', { keys: [ALICE] })).online, {
      [ALICE]: [false, true],
    });

    // Her last tab closes: one leave, on both nodes.
    onB?.socket.disconnect();
    const leave = [`join ${ALICE}`, `join ${BOB}`, `leave ${ALICE}`];
    await expectPresenceSeen(A(), fromA, leave);
    await expectPresenceSeen(B(), fromB, leave);
    for (const node of nodes) {
      const view = await node.call('presence', { keys: [ALICE] });
      assert.equal(view.countShared, 1, `countShared on ${node.name}`);
      assert.deepEqual(view.online, { [ALICE]: [false, false] });
    }

    // No session ID in Redis's presence keys, nor in any message on its channel.
    const sid = sidOf(alice);
    const keys = await store().keys(`${PREFIX}*`);
    assert.ok(keys.length > 0, 'presence keys in Redis');
    const dump = await Promise.all(keys.map((key) => store().dump(key)));
    for (const text of [...keys, ...dump.map(String), ...messages]) {
      assert.ok(!text.includes(sid), 'no session ID in Redis or on the channel');
    }
    assert.ok(messages.length >= 3, 'the joins and the leave went through Redis');
  });

  test('the client feed across nodes: a tab on A sees who is on B, with one ID per user', async () => {
    const [alice, bob] = await Promise.all([login(B(), 'alice'), login(A(), 'bob')]);
    const [aliceOnB] = await tabs(B(), alice, ['/chat'], 'alice');
    // Bob's tab on A, its feed listened to from before it connects, merged as docs/presence.md's
    // page does; every payload kept, to look for session and socket IDs.
    const bobTab = open(A(), '/chat', bob);
    const feed = followFeed(bobTab.socket);
    assert.equal((await whoami<NodeWho>(bobTab.socket)).user, 'bob');
    // Alice is on B only: A's state has her, read from Redis.
    await until(
      () => Promise.resolve(feed.names()),
      (names) => names.join() === 'alice,bob',
      10_000,
      'alice (on B) and bob in the feed of a tab on A',
    );
    assert.equal(feed.states, 1, 'one presence:state');
    // A tab of alice's on B sees the same IDs: one user, one ID, on every node.
    const aliceTab = open(B(), '/chat', alice);
    const aliceFeed = followFeed(aliceTab.socket);
    await until(
      () => Promise.resolve(aliceFeed.names()),
      (names) => names.join() === 'alice,bob',
      10_000,
      'alice and bob (on A) in the feed of a tab on B',
    );
    assert.deepEqual(aliceFeed.ids(), feed.ids(), 'the same IDs on both nodes');
    // Alice leaves B altogether: A's tab gets her leave in a diff.
    const socketIds = [aliceOnB?.socket.id, aliceTab.socket.id, bobTab.socket.id];
    aliceOnB?.socket.disconnect();
    aliceTab.socket.disconnect();
    await until(
      () => Promise.resolve(feed.names()),
      (names) => names.join() === 'bob',
      10_000,
      'alice’s leave in the feed on A',
    );
    assert.ok(feed.diffs > 0, 'a presence:diff');
    // Only the userData summary: no session ID, no socket ID.
    for (const payload of [...feed.payloads, ...aliceFeed.payloads]) {
      for (const secret of [sidOf(alice), sidOf(bob), ...socketIds]) {
        assert.ok(secret && !payload.includes(secret), `no session or socket ID in ${payload}`);
      }
    }
    bobTab.socket.disconnect();
  });

  test('kill -9 of a node: the other publishes its users’ leaves, not of one still there', async () => {
    const fromB = (await presenceSeen(B())).length;
    const [alice, bob] = await Promise.all([login(A(), 'alice'), login(A(), 'bob')]);
    await tabs(A(), alice, ['/chat'], 'alice');
    await tabs(B(), alice, ['/chat'], 'alice');
    await tabs(A(), bob, ['/chat'], 'bob');
    await expectPresenceSeen(B(), fromB, [`join ${ALICE}`, `join ${BOB}`]);

    await A().kill();
    const killedAt = Date.now();
    // Bob was on A alone: his leave, published by B's reap, within the 15 s.
    await expectPresenceSeen(B(), fromB, [`join ${ALICE}`, `join ${BOB}`, `leave ${BOB}`], 15_000);
    const cleanUpMs = Date.now() - killedAt;
    console.log(`presence-cluster: crash clean-up took ${cleanUpMs} ms (bound 15000)`);
    assert.ok(cleanUpMs <= 15_000, `clean-up within 15 s, took ${cleanUpMs} ms`);
    // Alice is still on B: no leave. Bob's join on B, published after the reap, is the mark.
    const again = await login(B(), 'bob');
    await tabs(B(), again, ['/chat'], 'bob');
    await expectPresenceSeen(B(), fromB, [
      `join ${ALICE}`,
      `join ${BOB}`,
      `leave ${BOB}`,
      `join ${BOB}`,
    ]);
    const view = await B().call('presence', { keys: [ALICE, BOB] });
    assert.equal(view.countShared, 2);
    assert.deepEqual(view.listShared, [
      { userKey: ALICE, connections: 1 },
      { userKey: BOB, connections: 1 },
    ]);
    await A().launch();
  });

  test('a node that comes back is a new node: nobody counted twice', async () => {
    const alice = await login(B(), 'alice');
    await tabs(A(), alice, ['/chat'], 'alice');
    await tabs(B(), alice, ['/chat'], 'alice');
    await until(
      () => B().call('presence', { keys: [ALICE] }),
      (view) => view.listShared[0]?.connections === 2,
      5000,
      'alice’s two connections',
    );
    const fromB = (await presenceSeen(B())).length;

    await A().kill();
    await A().launch();
    await tabs(A(), alice, ['/chat'], 'alice');
    // The killed process's node is reaped; the new one holds alice beside B: two nodes left.
    await until(
      () => store().zCard(NODES_KEY),
      (count) => count === 2,
      15_000,
      'the killed node reaped',
    );
    for (const node of nodes) {
      const view = await node.call('presence', { keys: [ALICE] });
      assert.equal(view.countShared, 1, `countShared on ${node.name}`);
      assert.deepEqual(view.listShared, [{ userKey: ALICE, connections: 2 }], node.name);
    }
    // No leave nor join of alice meanwhile: bob's join is the mark.
    const bob = await login(B(), 'bob');
    await tabs(B(), bob, ['/chat'], 'bob');
    await expectPresenceSeen(B(), fromB, [`join ${BOB}`]);
    await expectPresenceSeen(A(), 0, [`join ${BOB}`]);
  });

  test('Redis restarted, its data lost: the nodes write their users again, no leave', async () => {
    const [alice, bob] = await Promise.all([login(A(), 'alice'), login(A(), 'bob')]);
    await tabs(A(), alice, ['/chat'], 'alice');
    await tabs(B(), alice, ['/chat'], 'alice');
    const [bobTab] = await tabs(A(), bob, ['/chat'], 'bob');
    const whole = [
      { userKey: ALICE, connections: 2 },
      { userKey: BOB, connections: 1 },
    ];
    await until(
      () => B().call('presence', { keys: [] }),
      (view) => JSON.stringify(view.listShared) === JSON.stringify(whole),
      5000,
      'both users in the shared state',
    );
    const fromB = (await presenceSeen(B())).length;

    assert.ok(redis);
    await redis.stop();
    await redis.start();
    // Each node's channel subscription comes back on its own reconnect, which may lag its command
    // connection's: a leave published before it is back would be missed (docs/presence.md says
    // so). The spec's own listener is a pattern subscription, not counted here.
    await until(
      async () => {
        const reply = await store().sendCommand<unknown[]>(['PUBSUB', 'NUMSUB', EVENTS]);
        return Number(reply[1] ?? 0);
      },
      (subscribers) => subscribers === 2,
      15_000,
      'both nodes subscribed again',
    );
    // Each node's next heartbeat finds itself gone and writes its own fields again.
    for (const node of nodes) {
      await until(
        () => node.call('presence', { keys: [] }),
        (view) => JSON.stringify(view.listShared) === JSON.stringify(whole),
        15_000,
        `the shared state rewritten, seen on ${node.name}`,
      );
    }
    // No leave meanwhile: bob's leave, published after, is the mark.
    bobTab?.socket.disconnect();
    const events = await until(
      () => presenceSeen(B(), fromB),
      (list) => list.includes(`leave ${BOB}`),
      10_000,
      'bob’s leave on B',
    );
    assert.deepEqual(
      events.filter((e) => e.startsWith('leave')),
      [`leave ${BOB}`],
    );
  });
});
