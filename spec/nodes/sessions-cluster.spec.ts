// listSessions / endSessions across two node processes (spec/support/cluster-node.ts with
// SESSION_REGISTRY=redis: sessionRegistry on the adapter's Redis client, connect-redis sessions)
// over a real redis-server: alice's sessions on both nodes, one without a socket, listed from A
// with every node's sockets counted; "sign out other devices" from A ends B's socket and destroys
// the other sessions in Redis; a session known only by its socket on B is destroyed by B.
//
// Needs redis-server. Under CI=true its absence fails this spec; elsewhere it is skipped with a
// warning. Run it alone with:
//   node --import tsx --test --test-timeout=120000 spec/nodes/sessions-cluster.spec.ts
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { digestOf, sessionDigest } from '../../lib/core/state.js';
import {
  ClusterNode,
  closeClients,
  expectAllEnded,
  killAll,
  login,
  logout,
  nodeNamed,
  settle,
  startNodes,
  tabs,
} from '../support/cluster.js';
import type { NodeWho } from '../support/cluster-node.js';
import { redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';
import { sidOf } from '../support/session-ending.js';
import { whoami } from '../support/whoami.js';

// Throws under CI=true when redis-server is missing: the spec then fails instead of skipping.
const unavailable = redisUnavailable();
const skip = unavailable ?? false;

const ALICE = '1';
const PREFIX = 'sio-sessions:';

describe(
  'listSessions / endSessions on two nodes: a real Redis and two node processes',
  { skip },
  () => {
    let redis: RedisServer | undefined;
    let spy: ReturnType<typeof createClient> | undefined;
    const nodes: ClusterNode[] = [];
    const A = (): ClusterNode => nodeNamed(nodes, 'A');
    const B = (): ClusterNode => nodeNamed(nodes, 'B');
    const store = (): ReturnType<typeof createClient> => {
      assert.ok(spy, 'the spec’s Redis client');
      return spy;
    };
    const handle = (cookie: string): string => sessionDigest(sidOf(cookie));

    before(async () => {
      redis = await startRedis();
      spy = createClient({ url: redis.url });
      spy.on('error', (error: unknown) => {
        console.error('sessions-cluster spec: redis client:', error);
      });
      await spy.connect();
      await startNodes(
        ['A', 'B'],
        { REDIS_URL: redis.url, ADAPTER_KEY: 'sessions-cluster', SESSION_REGISTRY: 'redis' },
        nodes,
      );
    });
    // Registered before any node starts (`before` starts them), so that a failed start cleans up.
    after(async () => {
      closeClients();
      killAll();
      if (spy?.isOpen) spy.destroy();
      await redis?.stop();
    });
    afterEach(async () => {
      await settle(nodes.filter((node) => node.running));
      await store().flushAll();
    });

    test('three sessions over two nodes, one without a socket: listed from A; sign out the others', async () => {
      const onA = await login(A(), 'alice');
      const onB = await login(B(), 'alice');
      const noSocket = await login(B(), 'alice');
      const [tabA] = await tabs(A(), onA, ['/chat'], 'alice');
      const [tabB] = await tabs(B(), onB, ['/chat'], 'alice');
      assert.ok(tabA && tabB);

      const list = await A().call('listSessions', { key: ALICE });

      assert.deepEqual(
        list.map((s) => [s.handle, s.sockets]).sort(),
        [
          [handle(onA), 1],
          [handle(onB), 1],
          [handle(noSocket), 0],
        ].sort(),
      );
      for (const entry of list) {
        assert.equal(entry.userAgent, 'node', 'the login request’s user agent');
        assert.equal(entry.ip, '127.0.0.1');
        assert.ok((entry.expiresAt ?? 0) > Date.now());
      }
      const text = JSON.stringify(list);
      for (const cookie of [onA, onB, noSocket]) {
        assert.ok(!text.includes(sidOf(cookie)), 'no session ID in listSessions');
      }
      // One hash for alice, named by a digest of her user key, never the key in clear; it expires.
      const hash = `${PREFIX}u:${digestOf(ALICE)}`;
      assert.deepEqual(await store().keys(`${PREFIX}u:*`), [hash]);
      assert.ok((await store().pTTL(hash)) > 0, 'the user’s hash expires');

      const result = await A().call('endSessions', { key: ALICE, except: handle(onA) });

      assert.deepEqual(result, { sessions: 2, sockets: 1 });
      await expectAllEnded([tabB], 'ERR_SESSION_REVOKED');
      assert.equal(await store().get(`sess:${sidOf(onB)}`), null);
      assert.equal(await store().get(`sess:${sidOf(noSocket)}`), null);
      assert.notEqual(await store().get(`sess:${sidOf(onA)}`), null);
      // A's own socket is untouched: it still answers, and no session:ended came before the answer.
      assert.equal((await whoami<NodeWho>(tabA.socket, 'A')).user, 'alice');
      assert.deepEqual(tabA.seen.events, []);
      // The destroyed sessions left the registry with the store's destroys.
      assert.deepEqual(await store().hKeys(hash), [handle(onA)]);
      const left = await B().call('listSessions', { key: ALICE });
      assert.deepEqual(
        left.map((s) => [s.handle, s.sockets]),
        [[handle(onA), 1]],
      );
    });

    test('a session known only by its socket on B (no registry entry) is destroyed by B', async () => {
      const onA = await login(A(), 'alice');
      const onB = await login(B(), 'alice');
      const [tabB] = await tabs(B(), onB, ['/chat'], 'alice');
      assert.ok(tabB);
      // As for a session from before the registry: only B's socket knows its ID.
      await store().del(`${PREFIX}u:${digestOf(ALICE)}`);
      assert.deepEqual(
        (await A().call('listSessions', { key: ALICE })).map((s) => [s.handle, s.sockets]),
        [[handle(onB), 1]],
      );

      const result = await A().call('endSessions', { key: ALICE });

      assert.deepEqual(result, { sessions: 1, sockets: 1 });
      await expectAllEnded([tabB], 'ERR_SESSION_REVOKED');
      assert.equal(await store().get(`sess:${sidOf(onB)}`), null);
      // A's session had no socket and no entry: the package could not know of it.
      assert.notEqual(await store().get(`sess:${sidOf(onA)}`), null);
    });

    test('a session deleted in Redis behind the package’s back leaves the list and the registry', async () => {
      const kept = await login(A(), 'alice');
      const deleted = await login(B(), 'alice');
      const hash = `${PREFIX}u:${digestOf(ALICE)}`;
      assert.deepEqual((await store().hKeys(hash)).sort(), [handle(kept), handle(deleted)].sort());
      // As an admin script would.
      await store().del(`sess:${sidOf(deleted)}`);

      const list = await A().call('listSessions', { key: ALICE });

      assert.deepEqual(
        list.map((s) => s.handle),
        [handle(kept)],
      );
      assert.deepEqual(await store().hKeys(hash), [handle(kept)]);
    });

    test('a session whose user changed in Redis behind the package’s back is not listed or ended for alice', async () => {
      const kept = await login(A(), 'alice');
      const changed = await login(B(), 'alice');
      const hash = `${PREFIX}u:${digestOf(ALICE)}`;
      assert.deepEqual((await store().hKeys(hash)).sort(), [handle(kept), handle(changed)].sort());
      // As another app sharing the store would: the session now holds bob, and no write told the
      // registry.
      const key = `sess:${sidOf(changed)}`;
      const stored = JSON.parse((await store().get(key)) ?? 'null') as { passport: object };
      stored.passport = { user: '2' };
      await store().set(key, JSON.stringify(stored), { KEEPTTL: true });

      const list = await A().call('listSessions', { key: ALICE });

      assert.deepEqual(
        list.map((s) => s.handle),
        [handle(kept)],
      );
      assert.deepEqual(await store().hKeys(hash), [handle(kept)], 'out of alice’s list');
      assert.deepEqual(await A().call('endSessions', { key: ALICE, except: handle(kept) }), {
        sessions: 0,
        sockets: 0,
      });
      assert.notEqual(await store().get(key), null, 'bob’s session is not destroyed');
    });

    test('logins and logouts on both nodes leave nothing in the registry', async () => {
      for (let i = 0; i < 10; i++) {
        const node = i % 2 === 0 ? A() : B();
        const cookie = await login(node, 'alice');
        await tabs(node, cookie, ['/chat'], 'alice');
        await logout(node, cookie);
      }
      assert.deepEqual(await store().keys(`${PREFIX}*`), []);
      assert.deepEqual(await A().call('listSessions', { key: ALICE }), []);
    });
  },
);

// A node that does not answer within the adapter's requestsTimeout (C, frozen with SIGSTOP) must
// not make A throw away B's answer: Socket.IO rejects, with the answers it got on the error.
// No registry: B's session is known only by B's socket, so only B's answer can name it.
describe(
  'listSessions / endSessions with a node that does not answer: the other nodes’ answers kept',
  { skip },
  () => {
    let redis: RedisServer | undefined;
    const nodes: ClusterNode[] = [];
    let frozen: number | undefined;
    const thaw = (): void => {
      if (frozen !== undefined) process.kill(frozen, 'SIGCONT');
      frozen = undefined;
    };

    before(async () => {
      redis = await startRedis();
      // Short, so that the frozen node costs seconds; B answers from memory in a round trip.
      const env = {
        REDIS_URL: redis.url,
        ADAPTER_KEY: 'sessions-frozen',
        REQUESTS_TIMEOUT: '1500',
      };
      await startNodes(['A', 'B', 'C'], env, nodes);
    });
    after(async () => {
      thaw();
      closeClients();
      killAll();
      await redis?.stop();
    });

    test('C frozen: A lists and ends alice’s session that has its socket on B', async () => {
      const A = nodeNamed(nodes, 'A');
      const B = nodeNamed(nodes, 'B');
      const onB = await login(B, 'alice');
      const [tabB] = await tabs(B, onB, ['/chat'], 'alice');
      assert.ok(tabB);
      frozen = nodeNamed(nodes, 'C').pid;
      assert.ok(frozen !== undefined);
      process.kill(frozen, 'SIGSTOP');
      try {
        const list = await A.call('listSessions', { key: ALICE });
        assert.deepEqual(
          list.map((s) => [s.handle, s.sockets]),
          [[sessionDigest(sidOf(onB)), 1]],
        );

        const result = await A.call('endSessions', { key: ALICE });

        assert.deepEqual(result, { sessions: 1, sockets: 1 }, 'B’s destroy counted');
        await expectAllEnded([tabB], 'ERR_SESSION_REVOKED');
        const check = createClient({ url: redis?.url });
        await check.connect();
        try {
          assert.equal(await check.get(`sess:${sidOf(onB)}`), null, 'destroyed in the store');
        } finally {
          check.destroy();
        }
      } finally {
        thaw();
      }
    });
  },
);
