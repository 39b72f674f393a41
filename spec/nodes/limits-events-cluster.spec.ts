// rateLimit's event limits on two nodes over a real redis-server (connect-redis sessions, the
// Redis adapter, and the limiter's budgets in the same Redis through the app's node-redis
// client): one user with a socket on each node has one budget, not one per node; kit.resetLimits()
// empties it in Redis; and with Redis stopped mid-test, `onStoreError: 'memory'` counts on in each
// node's memory (each node its own budget meanwhile), each event saying so on the rate-limited
// channel (`outcome: 'store-error'`), with no crash and no silent pass.
//
// Needs redis-server. Under CI=true its absence fails this spec; elsewhere it is skipped with a
// warning. Run it alone with:
//   node --import tsx --test --test-timeout=120000 spec/nodes/limits-events-cluster.spec.ts
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createAdapter } from '@socket.io/redis-adapter';
import { RedisStore } from 'connect-redis';
import express from 'express';
import session from 'express-session';
import type { ServerOptions, Socket as ServerSocket } from 'socket.io';
import {
  DIAGNOSTICS_CHANNELS,
  rateLimit,
  requireAuth,
  sessionNamespace,
  type RateLimitedMessage,
} from '../../lib/index.js';
import {
  createTestKit,
  expectAckError,
  type TestKit,
  type TestNode,
} from '../../lib/testing/index.js';
import { redisClients, redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';
import { usersPassport } from '../support/server.js';
import { Server } from '../support/stack.js';

// Throws under CI=true when redis-server is missing: the spec then fails instead of skipping.
const skip = redisUnavailable() ?? false;
const alice: Express.User = { id: '1', username: 'alice', role: 'admin', tenants: [] };
const POINTS = 4;
/** How long a limiter command may wait on the stopped Redis before onStoreError applies. */
const STORE_TIMEOUT_MS = 200;

/** One node: sessions in Redis, the Redis adapter, /chat limited with its budgets in Redis. */
async function node(url: string) {
  const { client, pub, sub, quit } = await redisClients(url);
  const sessionMiddleware = session({
    secret: 'limits-cluster-spec',
    resave: false,
    saveUninitialized: false,
    store: new RedisStore({ client, prefix: 'sess:' }),
  });
  const passport = usersPassport();
  const io = new Server({ adapter: createAdapter(pub, sub) as ServerOptions['adapter'] });
  const app = express();
  const chat = requireAuth(sessionNamespace(io.of('/chat'), sessionMiddleware, { passport, app }));
  chat.on('connection', (socket: ServerSocket) => {
    socket.on('say', (ack: (reply: unknown) => void) => {
      ack({ ok: true });
    });
  });
  rateLimit(io, {
    events: { default: { points: POINTS, durationMs: 60_000 } },
    redis: client,
    onStoreError: 'memory',
    storeTimeoutMs: STORE_TIMEOUT_MS,
  });
  // Two namespaces, each with a rateLimit call of its own: two budgets, even in one Redis.
  for (const name of ['/left', '/right']) {
    const nsp = sessionNamespace(io.of(name), sessionMiddleware, { passport, app });
    nsp.on('connection', (socket: ServerSocket) => {
      socket.on('say', (ack: (reply: unknown) => void) => {
        ack({ ok: true });
      });
    });
    rateLimit(nsp, { events: { default: { points: 1, durationMs: 60_000 } }, redis: client });
  }
  const http = createServer(app);
  io.attach(http);
  return {
    io,
    session: sessionMiddleware,
    passport,
    app,
    async close() {
      await io.close();
      http.closeAllConnections();
      // A client still reconnecting after the outage would never answer its quit.
      await Promise.all(
        [client, pub, sub].map((c) => (c.isReady ? Promise.resolve() : once(c, 'ready'))),
      );
      await quit();
    },
  };
}

describe('event limits on two nodes: one budget in Redis', { skip }, () => {
  let redis: RedisServer | undefined;
  let kit: TestKit;
  let a: TestNode;
  let b: TestNode;

  before(async () => {
    const server = await startRedis();
    redis = server;
    kit = await createTestKit(() => node(server.url));
    a = kit.nodes[0] ?? assert.fail('the first node');
    b = await kit.node();
  });
  after(async () => {
    // Back up first, so that the clients' quit is answered.
    await redis?.start();
    await kit.close();
    await redis?.stop();
  });
  // Every test spends alice's whole budget: without a reset of the Redis keys, the next test's
  // first event would be refused.
  beforeEach(() => kit.resetLimits());

  for (const run of ['once', 'again, after kit.resetLimits()']) {
    test(`a socket on each node shares the user's ${POINTS} points (${run})`, async () => {
      const agent = await kit.loginAs(alice);
      const onA = await agent.connect('/chat', { node: a });
      const onB = await agent.connect('/chat', { node: b });
      for (let i = 0; i < POINTS / 2; i++) {
        assert.deepEqual(await onA.emitWithAck('say'), { ok: true });
        assert.deepEqual(await onB.emitWithAck('say'), { ok: true });
      }
      const onAError = await expectAckError(onA.emitWithAck('say'), 'ERR_RATE_LIMITED');
      await expectAckError(onB.emitWithAck('say'), 'ERR_RATE_LIMITED');
      assert.ok((onAError.retryAfterMs ?? 0) > 0);
      onA.close();
      onB.close();
    });
  }

  test('two rateLimit calls on two namespaces keep two budgets in the one Redis', async () => {
    const agent = await kit.loginAs(alice);
    const left = await agent.connect('/left', { node: a });
    const right = await agent.connect('/right', { node: b });
    assert.deepEqual(await left.emitWithAck('say'), { ok: true });
    assert.deepEqual(await right.emitWithAck('say'), { ok: true });
    await expectAckError(left.emitWithAck('say'), 'ERR_RATE_LIMITED');
    await expectAckError(right.emitWithAck('say'), 'ERR_RATE_LIMITED');
    left.close();
    right.close();
  });

  // Last: it stops Redis (after() starts it again for the clients' quit).
  test("Redis stopped: 'memory' counts in each node's memory, and says so", async (tc) => {
    const heard: RateLimitedMessage[] = [];
    const listener = (message: unknown): void => {
      heard.push(message as RateLimitedMessage);
    };
    diagnosticsChannel.subscribe(DIAGNOSTICS_CHANNELS.rateLimited, listener);
    tc.after(() => diagnosticsChannel.unsubscribe(DIAGNOSTICS_CHANNELS.rateLimited, listener));
    const agent = await kit.loginAs(alice);
    const onA = await agent.connect('/chat', { node: a });
    const onB = await agent.connect('/chat', { node: b });
    // One point spent in Redis, which the nodes' memories do not know of.
    await onA.emitWithAck('say');
    await redis?.stop();
    // Each node now counts alone: the whole budget on A, then on B, then both refuse.
    for (let i = 0; i < POINTS; i++) assert.deepEqual(await onA.emitWithAck('say'), { ok: true });
    await expectAckError(onA.emitWithAck('say'), 'ERR_RATE_LIMITED');
    for (let i = 0; i < POINTS; i++) assert.deepEqual(await onB.emitWithAck('say'), { ok: true });
    await expectAckError(onB.emitWithAck('say'), 'ERR_RATE_LIMITED');
    const outages = heard.filter((m) => m.outcome === 'store-error');
    assert.equal(outages.length, 2 * (POINTS + 1));
    for (const message of outages) {
      assert.equal(message.limit, 'default');
      assert.equal(message.by, 'user');
      assert.equal(message.code, 'ERR_RATE_LIMITED');
    }
    assert.equal(heard.filter((m) => m.outcome === 'refused').length, 2);
  });
});
