// rateLimit's perUser across two node processes (spec/support/cluster-node.ts with LIMITS) over a
// real redis-server: one count per user for both nodes, no overshoot when both admit at once, the
// oldest socket ended on the other node, and a node killed with SIGKILL holding a user out for no
// longer than nodeTimeoutMs.
//
// Needs redis-server. Under CI=true its absence fails this spec; elsewhere it is skipped with a
// warning. Run it alone with:
//   node --import tsx --test --test-timeout=120000 spec/nodes/limits-cluster.spec.ts
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { ERR_RATE_LIMITED } from '../../lib/index.js';
import { connected, connectError, within } from '../support/bounded.js';
import {
  ClusterNode,
  closeClients,
  killAll,
  login,
  nodeNamed,
  open,
  settle,
  startNodes,
} from '../support/cluster.js';
import { redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';

// Throws under CI=true when redis-server is missing: the spec then fails instead of skipping.
const skip = redisUnavailable() ?? false;

// Small, so that a killed node stops counting in about 1.5 s (the default is 15 s).
const NODE_TIMEOUT_MS = 1500;

describe('rateLimit perUser across two nodes over Redis', { skip }, () => {
  let redis: RedisServer;
  let nodes: ClusterNode[] = [];
  let run = 0;

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    killAll();
    await redis.stop();
  });
  afterEach(async () => {
    await settle(nodes).catch(() => undefined);
    closeClients();
    await Promise.all(nodes.map((node) => node.stop()));
    nodes = [];
  });

  /** Nodes A and B, a cluster of their own (adapter key and limit prefix fresh per test). */
  async function cluster(connections: object): Promise<[ClusterNode, ClusterNode]> {
    run++;
    const env = {
      REDIS_URL: redis.url,
      ADAPTER_KEY: `limits-${run}`,
      LIMITS: JSON.stringify({ connections, redisPrefix: `limits-${run}` }),
    };
    await startNodes(['A', 'B'], env, nodes);
    return [nodeNamed(nodes, 'A'), nodeNamed(nodes, 'B')];
  }

  test('the N+1th socket is refused on either node; a socket gone anywhere makes room', async () => {
    const [a, b] = await cluster({ perUser: 2 });
    const alice = await login(a, 'alice');
    const onA = open(a, '/chat', alice);
    await connected(onA.socket);
    await connected(open(b, '/chat', alice).socket);
    for (const node of [a, b]) {
      const err = await connectError(open(node, '/', alice).socket);
      assert.deepEqual(err.data, { code: ERR_RATE_LIMITED, status: 429, retryAfterMs: 5000 });
    }
    await connected(open(b, '/chat', await login(b, 'bob')).socket, 'bob has his own count');
    onA.socket.disconnect();
    // The leave reaches Redis after the client's disconnect: the retry of the docs' snippet.
    const again = open(b, '/', alice, { reconnection: false });
    await within(
      new Promise<void>((resolve) => {
        again.socket.on('connect', () => {
          resolve();
        });
        again.socket.on('connect_error', () => setTimeout(() => again.socket.connect(), 50));
      }),
      'alice gets in on B once her socket on A is gone',
    );
  });

  test('six connects at once, three on each node: exactly perUser get in', async () => {
    const [a, b] = await cluster({ perUser: 3 });
    const alice = await login(a, 'alice');
    const tabs = [a, b, a, b, a, b].map((node) => open(node, '/chat', alice));
    const outcomes = await Promise.all(
      tabs.map(
        (tab) =>
          new Promise<string>((resolve) => {
            tab.socket.once('connect', () => {
              resolve('in');
            });
            tab.socket.once('connect_error', (err: { data?: { code?: string } }) => {
              resolve(String(err.data?.code));
            });
          }),
      ),
    );
    assert.deepEqual(outcomes.filter((o) => o === 'in').length, 3, outcomes.join());
    assert.deepEqual(outcomes.filter((o) => o === ERR_RATE_LIMITED).length, 3, outcomes.join());
  });

  test("'end-oldest': the user's socket on the other node is ended", async () => {
    const [a, b] = await cluster({ perUser: 1, onExceed: 'end-oldest' });
    const alice = await login(a, 'alice');
    const oldest = open(a, '/chat', alice);
    await connected(oldest.socket);
    const ended = within(
      new Promise((resolve) => oldest.socket.once('session:ended', resolve)),
      'the oldest socket, on A, is ended',
    );
    await connected(open(b, '/chat', alice).socket);
    assert.deepEqual(await ended, {
      message: 'Too Many Requests',
      data: { code: ERR_RATE_LIMITED, status: 429 },
    });
  });

  test('a node killed with SIGKILL holds its users out for at most nodeTimeoutMs', async () => {
    const [a, b] = await cluster({ perUser: 1, nodeTimeoutMs: NODE_TIMEOUT_MS });
    const alice = await login(a, 'alice');
    await connected(open(b, '/chat', alice).socket);
    await b.kill();
    const killedAt = Date.now();
    // B's socket still counts: B may only be slow.
    const err = await connectError(open(a, '/chat', alice).socket);
    assert.equal(err.data?.code, ERR_RATE_LIMITED);
    // Then tried again until it gets in: it must, within the node timeout (and a margin for one
    // heartbeat and this machine's load), never for ever.
    const tab = open(a, '/chat', alice);
    await within(
      new Promise<void>((resolve) => {
        tab.socket.on('connect', () => {
          resolve();
        });
        tab.socket.on('connect_error', () => setTimeout(() => tab.socket.connect(), 100));
      }),
      'alice gets in on A once B stopped counting',
      NODE_TIMEOUT_MS + 5000,
    );
    assert.ok(Date.now() - killedAt < NODE_TIMEOUT_MS + 5000);
  });
});
