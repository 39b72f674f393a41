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
  killAll,
  login,
  nodeNamed,
  settle,
  startNodes,
  tabs,
  until,
} from '../support/cluster.js';
import type { PresenceSeen } from '../support/cluster-node.js';
import { redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';
import { sidOf } from '../support/session-ending.js';

// Throws under CI=true when redis-server is missing: the spec then fails instead of skipping.
const unavailable = redisUnavailable();
const skip = unavailable ?? false;

const PREFIX = 'socket.io-session-auth:presence';
const NODES_KEY = `${PREFIX}:{/chat}:nodes`;
// Small, so that a crash is cleaned up in about 2 s: the spec's bound is the issue's, 15 s.
const HEARTBEAT_MS = 500;
const EXPIRY_MS = 1500;
const ALICE = '1';
const BOB = '2';

/** The events a node emitted from `from` on, as `type key` strings. */
async function seen(node: ClusterNode, from = 0): Promise<string[]> {
  const events = await node.call('presenceEvents', { from });
  return events.map(({ type, userKey }: PresenceSeen) => `${type} ${userKey}`);
}

/** Waits (bounded) until the node has emitted `expected` from `from` on, then checks it exactly. */
async function expectSeen(
  node: ClusterNode,
  from: number,
  expected: string[],
  ms = 10_000,
): Promise<void> {
  const got = await until(
    () => seen(node, from),
    (events) => events.length >= expected.length,
    ms,
    `${expected.join(', ')} on ${node.name}`,
  );
  assert.deepEqual(got, expected, `presence events on ${node.name}`);
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
        () => seen(node),
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
    const [fromA, fromB] = [(await seen(A())).length, (await seen(B())).length];
    const alice = await login(A(), 'alice');
    const [onA] = await tabs(A(), alice, ['/chat'], 'alice');
    const [onB] = await tabs(B(), alice, ['/chat'], 'alice');
    await expectSeen(A(), fromA, [`join ${ALICE}`]);
    await expectSeen(B(), fromB, [`join ${ALICE}`]);
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
    await expectSeen(A(), fromA, [`join ${ALICE}`, `join ${BOB}`]);
    await expectSeen(B(), fromB, [`join ${ALICE}`, `join ${BOB}`]);
    assert.deepEqual((await A().call('presence', { keys: [ALICE] })).online, {
      [ALICE]: [false, true],
    });

    // Her last tab closes: one leave, on both nodes.
    onB?.socket.disconnect();
    const leave = [`join ${ALICE}`, `join ${BOB}`, `leave ${ALICE}`];
    await expectSeen(A(), fromA, leave);
    await expectSeen(B(), fromB, leave);
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

  test('kill -9 of a node: the other publishes its users’ leaves, not of one still there', async () => {
    const fromB = (await seen(B())).length;
    const [alice, bob] = await Promise.all([login(A(), 'alice'), login(A(), 'bob')]);
    await tabs(A(), alice, ['/chat'], 'alice');
    await tabs(B(), alice, ['/chat'], 'alice');
    await tabs(A(), bob, ['/chat'], 'bob');
    await expectSeen(B(), fromB, [`join ${ALICE}`, `join ${BOB}`]);

    await A().kill();
    const killedAt = Date.now();
    // Bob was on A alone: his leave, published by B's reap, within the 15 s.
    await expectSeen(B(), fromB, [`join ${ALICE}`, `join ${BOB}`, `leave ${BOB}`], 15_000);
    const cleanUpMs = Date.now() - killedAt;
    console.log(`presence-cluster: crash clean-up took ${cleanUpMs} ms (bound 15000)`);
    assert.ok(cleanUpMs <= 15_000, `clean-up within 15 s, took ${cleanUpMs} ms`);
    // Alice is still on B: no leave. Bob's join on B, published after the reap, is the mark.
    const again = await login(B(), 'bob');
    await tabs(B(), again, ['/chat'], 'bob');
    await expectSeen(B(), fromB, [`join ${ALICE}`, `join ${BOB}`, `leave ${BOB}`, `join ${BOB}`]);
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
    const fromB = (await seen(B())).length;

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
    await expectSeen(B(), fromB, [`join ${BOB}`]);
    await expectSeen(A(), 0, [`join ${BOB}`]);
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
    const fromB = (await seen(B())).length;

    assert.ok(redis);
    await redis.stop();
    await redis.start();
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
      () => seen(B(), fromB),
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
