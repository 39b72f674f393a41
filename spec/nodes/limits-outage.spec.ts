// rateLimit's Redis down (a real redis-server killed while the Socket.IO server runs): each
// onStoreError value does what docs/limits.md says for perUser and perIp, the rate-limited channel
// says 'store-error', and the process is warned once. The session store is the run's own (not
// Redis): only the limiter's store is away.
//
// Needs redis-server. Under CI=true its absence fails this spec; elsewhere it is skipped with a
// warning. Run it alone with:
//   node --import tsx --test --test-timeout=120000 spec/nodes/limits-outage.spec.ts
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { after, before, describe, test, type TestContext as NodeTestContext } from 'node:test';
import { createClient } from 'redis';
import {
  ERR_RATE_LIMITED,
  rateLimit,
  requireAuth,
  sessionNamespace,
  type OnStoreError,
  type RateLimitedMessage,
} from '../../lib/index.js';
import { connected, connectError } from '../support/bounded.js';
import { redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';
import { start } from '../support/server.js';

const skip = redisUnavailable() ?? false;
const STORE_TIMEOUT_MS = 200;

describe('rateLimit with its Redis down: onStoreError', { skip }, () => {
  let redis: RedisServer;
  let servers = 0;
  const warnings: string[] = [];
  const onWarning = (warning: Error & { code?: string }): void => {
    if (warning.code) warnings.push(warning.code);
  };
  before(async () => {
    redis = await startRedis();
    process.on('warning', onWarning);
  });
  after(async () => {
    process.off('warning', onWarning);
    await redis.stop();
  });

  /** A server limited through a Redis client of its own; Redis killed once alice is in. */
  async function downAfterAlice(
    tc: NodeTestContext,
    onStoreError: OnStoreError,
    connections: object = { perUser: 1, perIp: { points: 100, durationMs: 60_000 } },
  ) {
    await redis.start();
    const client = createClient({ url: redis.url });
    client.on('error', () => undefined);
    await client.connect();
    tc.after(() => {
      client.destroy();
    });
    const messages: RateLimitedMessage[] = [];
    const listener = (m: unknown): void => void messages.push(m as RateLimitedMessage);
    diagnosticsChannel.subscribe('socket.io-session-auth:rate-limited', listener);
    tc.after(() => diagnosticsChannel.unsubscribe('socket.io-session-auth:rate-limited', listener));
    const t = await start(tc, ({ io, session, passport }) => {
      requireAuth(sessionNamespace(io.of('/chat'), session, { passport }));
      rateLimit(io, {
        connections,
        redis: client,
        redisPrefix: `outage-${onStoreError}-${++servers}`,
        onStoreError,
        storeTimeoutMs: STORE_TIMEOUT_MS,
      });
    });
    const alice = await t.login('alice');
    const bob = await t.login('bob');
    await connected(t.connect('/chat', { cookie: alice }));
    await redis.stop();
    const outcomes = () => messages.map(({ limit, outcome }) => `${limit} ${outcome}`);
    return { t, alice, bob, outcomes };
  }

  test("'memory': each node counts alone, so alice's second socket is still refused", async (tc) => {
    const { t, alice, bob, outcomes } = await downAfterAlice(tc, 'memory');
    const err = await connectError(t.connect('/chat', { cookie: alice }));
    assert.equal(err.data?.code, ERR_RATE_LIMITED);
    await connected(t.connect('/chat', { cookie: bob }));
    assert.deepEqual(outcomes(), [
      'ip store-error',
      'connections store-error',
      'connections refused',
      'ip store-error',
      'connections store-error',
    ]);
    assert.deepEqual(warnings, ['SOCKET_IO_SESSION_AUTH_LIMIT_STORE'], 'warned once');
  });

  test("'allow': everything through, over the limit, and said so", async (tc) => {
    const { t, alice, outcomes } = await downAfterAlice(tc, 'allow');
    await connected(t.connect('/chat', { cookie: alice }), 'over perUser while Redis is away');
    assert.deepEqual(outcomes(), ['ip store-error', 'connections store-error']);
  });

  test("'refuse': every handshake refused with 429 while Redis is away", async (tc) => {
    for (const [connections, limit] of [
      [{ perUser: 1 }, 'connections'],
      [{ perIp: { points: 100, durationMs: 60_000 } }, 'ip'],
    ] as const) {
      const { t, bob, outcomes } = await downAfterAlice(tc, 'refuse', connections);
      const err = await connectError(t.connect('/chat', { cookie: bob }));
      assert.deepEqual(
        { code: err.data?.code, status: err.data?.status },
        { code: ERR_RATE_LIMITED, status: 429 },
      );
      assert.deepEqual(outcomes(), [`${limit} store-error`, `${limit} refused`]);
    }
    assert.deepEqual(warnings, ['SOCKET_IO_SESSION_AUTH_LIMIT_STORE'], 'still once per process');
  });
});
