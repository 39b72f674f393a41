// storeEvents across node processes (spec/support/cluster-node.ts with STORE_EVENTS=on: the
// connect-redis feed on the adapter's Redis client), on a real redis-server: a session deleted in
// Redis ends its sockets on every node; a login's rotation on one node is told to a tab on another
// as a rotation (ERR_SESSION_ROTATED), not the `del` Redis publishes first; a feed that drops
// misses nothing (one full round when it is back); and with the feed up, no periodic reads.
//
// Needs redis-server. Under CI=true its absence fails this spec; elsewhere it is skipped. Run it
// alone with:
//   node --import tsx --test --test-timeout=120000 spec/nodes/store-events-cluster.spec.ts
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { ERR_SESSION_EXPIRED, ERR_SESSION_REVOKED, ERR_SESSION_ROTATED } from '../../lib/index.js';
import {
  ClusterNode,
  closeClients,
  expectAllEnded,
  killAll,
  label,
  login,
  settle,
  tabs,
  until,
} from '../support/cluster.js';
import type { NodeWho } from '../support/cluster-node.js';
import { redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';
import { cookieOf, users } from '../support/server.js';
import { expectUntouched, sidOf } from '../support/session-ending.js';
import { whoami } from '../support/whoami.js';

const unavailable = redisUnavailable();
const skip = unavailable ?? false;

type Client = ReturnType<typeof createClient>;

/** POST /login on `node` with the browser's cookie: Passport's login regenerates its session. */
async function loginAgain(node: ClusterNode, cookie: string, username: string): Promise<string> {
  const user = users.find((u) => u.username === username) ?? assert.fail(`no user ${username}`);
  const res = await fetch(`${node.url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
    body: new URLSearchParams({ username, password: user.password }),
  });
  assert.equal(res.status, 200, `login again as ${username} on ${node.name}`);
  await res.arrayBuffer();
  return cookieOf(res);
}

/** Waits until the node's feed has said `state`, `n` times from its start (a hang guard). */
async function feedSaid(node: ClusterNode, state: string, n = 1): Promise<void> {
  await until(
    () => node.call('storeEvents', { from: 0 }),
    (said) => said.filter((m) => m.state === state).length >= n,
    15_000,
    `${node.name}'s feed ${state}`,
  );
}

/** The node's store reads of `sid`, from the `from`-th read on. */
async function readsOf(node: ClusterNode, sid: string, from: number): Promise<number> {
  const reads = await node.call('storeReads', { from });
  return reads.filter((read) => read.sid === sid).length;
}

describe('storeEvents: the connect-redis feed on node processes', { skip }, () => {
  let redis: RedisServer | undefined;
  let admin: Client | undefined;
  const nodes: ClusterNode[] = [];

  const start = async (name: string, env: Record<string, string>): Promise<ClusterNode> => {
    assert.ok(redis);
    const node = await ClusterNode.start(name, {
      REDIS_URL: redis.url,
      ADAPTER_KEY: 'store-events',
      ...env,
    });
    nodes.push(node);
    return node;
  };
  const redisAdmin = (): Client => admin ?? assert.fail('no Redis client');

  before(async () => {
    redis = await startRedis();
    admin = createClient({ url: redis.url });
    admin.on('error', (error: unknown) => {
      console.error('store-events spec: redis client:', error);
    });
    await admin.connect();
  });
  after(async () => {
    closeClients();
    killAll();
    if (admin?.isOpen) admin.destroy();
    await redis?.stop();
  });
  afterEach(async () => {
    await settle(nodes);
    await Promise.all(nodes.map((node) => node.stop()));
    nodes.length = 0;
    await redisAdmin().configSet('maxclients', '10000');
  });

  test('a DEL in Redis ends the session’s sockets on every node at once, without a store read', async () => {
    // Revalidation every 10 minutes: only the feed can end them within the test.
    const env = { STORE_EVENTS: 'on', REVALIDATE_MS: '600000' };
    const [A, B] = await Promise.all([start('A', env), start('B', env)]);
    await Promise.all([feedSaid(A, 'up'), feedSaid(B, 'up')]);
    const [alice, bob] = await Promise.all([login(A, 'alice'), login(A, 'bob')]);
    const aliceTabs = [
      ...(await tabs(A, alice, ['/chat'], 'alice')),
      ...(await tabs(B, alice, ['/', '/chat'], 'alice')),
    ];
    const [bobTab] = await tabs(B, bob, ['/chat'], 'bob');
    assert.ok(bobTab);
    const readsFrom = await Promise.all([A, B].map((n) => n.call('storeReads', { from: 0 })));

    assert.equal(await redisAdmin().del(`sess:${sidOf(alice)}`), 1);
    await expectAllEnded(aliceTabs, ERR_SESSION_REVOKED);
    for (const [i, node] of [A, B].entries()) {
      assert.equal(await readsOf(node, sidOf(alice), readsFrom[i]?.length ?? 0), 0);
      const ended = await node.call('sessionsEnded', { from: 0 });
      assert.ok(ended.length > 0 && ended.every((m) => m.how === 'store-event'), node.name);
    }
    await whoami<NodeWho>(bobTab.socket, label(bobTab));
    expectUntouched(bobTab.socket, bobTab.seen, `bob: ${label(bobTab)}`);
  });

  test('a TTL shortened in Redis that lapses ends the sockets on every node with ERR_SESSION_EXPIRED', async () => {
    // The cookie lasts a day: only Redis's `expired` event, heard by each node, can end them.
    const env = { STORE_EVENTS: 'on', REVALIDATE_MS: '600000' };
    const [A, B] = await Promise.all([start('A', env), start('B', env)]);
    await Promise.all([feedSaid(A, 'up'), feedSaid(B, 'up')]);
    const alice = await login(A, 'alice');
    const aliceTabs = [
      ...(await tabs(A, alice, ['/chat'], 'alice')),
      ...(await tabs(B, alice, ['/chat'], 'alice')),
    ];
    assert.equal(await redisAdmin().pExpire(`sess:${sidOf(alice)}`, 200), 1);
    await expectAllEnded(aliceTabs, ERR_SESSION_EXPIRED);
    for (const node of [A, B]) {
      const ended = await node.call('sessionsEnded', { from: 0 });
      assert.ok(ended.length > 0 && ended.every((m) => m.how === 'store-event'), node.name);
    }
  });

  test('a login again on A (a rotation) ends the tabs on A and B with ERR_SESSION_ROTATED, not REVOKED', async () => {
    // The login route answers 300 ms after Passport's login (an app's own work after it): the
    // rotation's END, sent after the response, comes long after Redis published the `del`.
    const env = { STORE_EVENTS: 'on', REVALIDATE_MS: '600000', LOGIN_DELAY_MS: '300' };
    const [A, B] = await Promise.all([start('A', env), start('B', env)]);
    await Promise.all([feedSaid(A, 'up'), feedSaid(B, 'up')]);
    const alice = await login(A, 'alice');
    const aliceTabs = [
      ...(await tabs(A, alice, ['/chat'], 'alice')),
      ...(await tabs(B, alice, ['/chat'], 'alice')),
    ];
    // Redis publishes the old session's `del` before A has its reply; A announced the rotation to
    // every node before it, and tells them it ended after the response. The feeds wait for that.
    const rotated = await loginAgain(A, alice, 'alice');
    assert.notEqual(sidOf(rotated), sidOf(alice));
    await expectAllEnded(aliceTabs, ERR_SESSION_ROTATED);
  });

  test('with the feed up, no periodic read; a drop brings polling back at once', async () => {
    // A keeps polling (no feed): the control that rounds come every 300 ms on this machine now.
    const A = await start('A', { REVALIDATE_MS: '300' });
    const B = await start('B', { STORE_EVENTS: 'on', REVALIDATE_MS: '300' });
    await feedSaid(B, 'up');
    const [alice, bob] = await Promise.all([login(A, 'alice'), login(A, 'bob')]);
    await tabs(A, bob, ['/chat'], 'bob');
    await tabs(B, alice, ['/chat'], 'alice');
    const fromA = (await A.call('storeReads', { from: 0 })).length;
    const fromB = (await B.call('storeReads', { from: 0 })).length;
    // A window is the only proof of "no reads": it is measured by A's own rounds, on the same
    // interval, so a busy machine stretches both alike. Three rounds on A: B's timer ticked too.
    await until(
      () => readsOf(A, sidOf(bob), fromA),
      (n) => n >= 3,
      10_000,
      "three of A's rounds",
    );
    assert.equal(await readsOf(B, sidOf(alice), fromB), 0, 'B read alice’s session');

    await dropFeeds(redisAdmin());
    await feedSaid(B, 'down');
    // Down: B polls again, every 300 ms (the feed cannot come back while Redis refuses it).
    await until(
      () => readsOf(B, sidOf(alice), fromB),
      (n) => n >= 2,
      10_000,
      'B polling while its feed is down',
    );
  });

  test('a session deleted while the feed is down is ended by the one full round when it is back', async () => {
    const env = { STORE_EVENTS: 'on', REVALIDATE_MS: '600000' };
    const [A, B] = await Promise.all([start('A', env), start('B', env)]);
    await Promise.all([feedSaid(A, 'up'), feedSaid(B, 'up')]);
    const [alice, bob] = await Promise.all([login(A, 'alice'), login(A, 'bob')]);
    const aliceTabs = await tabs(B, alice, ['/', '/chat'], 'alice');
    const bobTabs = await tabs(B, bob, ['/chat'], 'bob');

    await dropFeeds(redisAdmin());
    await feedSaid(B, 'down');
    assert.equal(await redisAdmin().del(`sess:${sidOf(alice)}`), 1);
    // Nobody heard it: a round trip on each tab after the delete finds it connected.
    for (const tab of aliceTabs) await whoami<NodeWho>(tab.socket, label(tab));
    for (const tab of aliceTabs) expectUntouched(tab.socket, tab.seen, label(tab));

    // As a restarted Redis would have it: the setting the feeds turned on is lost.
    await redisAdmin().configSet('notify-keyspace-events', '');
    await redisAdmin().configSet('maxclients', '10000');
    await feedSaid(B, 'resync');
    // Checked again at the reconnection, and turned on again.
    const { 'notify-keyspace-events': flags = '' } =
      await redisAdmin().configGet('notify-keyspace-events');
    assert.deepEqual(flags.split('').sort(), ['E', 'e', 'g', 'x']);
    await expectAllEnded(aliceTabs, ERR_SESSION_REVOKED);
    await feedSaid(B, 'up', 2);
    const ended = await B.call('sessionsEnded', { from: 0 });
    assert.deepEqual(
      ended.map((m) => m.how),
      ['revalidation', 'revalidation'],
      'ended by the full round',
    );
    for (const tab of bobTabs) {
      await whoami<NodeWho>(tab.socket, label(tab));
      expectUntouched(tab.socket, tab.seen, `bob: ${label(tab)}`);
    }
    const said = (await B.call('storeEvents', { from: 0 })).map((m) => m.state);
    assert.deepEqual(said, ['up', 'down', 'resync', 'up']);
  });
});

/**
 * Drops every subscribed connection (the feeds' and the adapters') and keeps them out: Redis takes
 * no new connection until `maxclients` is raised again.
 */
async function dropFeeds(admin: Client): Promise<void> {
  const info = await admin.info('clients');
  const connected = Number(/connected_clients:(\d+)/.exec(info)?.[1]);
  const subscribed = (await admin.clientList({ TYPE: 'PUBSUB' })).length;
  assert.ok(
    connected > subscribed && subscribed > 0,
    `${connected} clients, ${subscribed} subscribed`,
  );
  await admin.configSet('maxclients', String(connected - subscribed));
  await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
}
