// rateLimit's event budgets in a real redis-server: each counted event is at most one Redis round
// trip, and once a user is refused, their further events are refused from the node's memory
// (rate-limiter-flexible's in-memory block) until the window ends: no Redis command at all, the
// same ack error with retryAfterMs. Another user's events still go to Redis, one command each.
// Redis commands are counted with MONITOR (what clients send; a script's own commands are not
// round trips), read after each ack: the limiter has its answer before the ack leaves the server.
//
// Needs redis-server. Under CI=true its absence fails this spec; elsewhere it is skipped with a
// warning. Run it alone with:
//   node --import tsx --test --test-timeout=120000 spec/nodes/limits-block-cache.spec.ts
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import session from 'express-session';
import { createClient } from 'redis';
import type { Socket as ServerSocket } from 'socket.io';
import { rateLimit, requireAuth, sessionNamespace } from '../../lib/index.js';
import { createTestKit, expectAckError, type TestKit } from '../../lib/testing/index.js';
import { redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';
import { usersPassport } from '../support/server.js';
import { Server } from '../support/stack.js';

// Throws under CI=true when redis-server is missing: the spec then fails instead of skipping.
const skip = redisUnavailable() ?? false;
const alice: Express.User = { id: '1', username: 'alice', role: 'admin', tenants: [] };
const bob: Express.User = { id: '2', username: 'bob', role: 'member', tenants: [] };
const POINTS = 3;
const WINDOW_MS = 60_000;

type Client = ReturnType<typeof createClient>;

/**
 * Counts the commands clients send to Redis (MONITOR; the commands a Lua script runs inside its
 * one EVAL are not round trips, and are left out). `sent()` says how many since its last call: it
 * PINGs a marker from a client of its own and counts what MONITOR reported before it.
 */
async function commandWatch(url: string) {
  const monitor = createClient({ url });
  const marker = createClient({ url });
  await Promise.all([monitor.connect(), marker.connect()]);
  let count = 0;
  let waiting: { mark: string; resolve: () => void } | undefined;
  await monitor.monitor((line: string) => {
    if (waiting && line.includes(waiting.mark)) waiting.resolve();
    else if (!/\[\d+ lua\]/.test(line)) count++;
  });
  let marks = 0;
  return {
    async sent(): Promise<number> {
      const mark = `limits-block-cache-mark-${marks++}`;
      const seen = new Promise<void>((resolve) => {
        waiting = { mark, resolve };
      });
      await marker.ping(mark);
      await seen;
      const since = count;
      count = 0;
      return since;
    },
    async close(): Promise<void> {
      // A client in MONITOR mode answers no QUIT: closed from this side.
      monitor.destroy();
      await marker.quit();
    },
  };
}

describe("event budgets in Redis: a refused user's events cost no round trip", { skip }, () => {
  let redis: RedisServer | undefined;
  let kit: TestKit;
  let limiterClient: Client;
  let watch: Awaited<ReturnType<typeof commandWatch>>;

  before(async () => {
    redis = await startRedis();
    limiterClient = createClient({ url: redis.url });
    await limiterClient.connect();
    watch = await commandWatch(redis.url);
    // Sessions in memory: the limiter is the only one to send commands to this Redis.
    const sessionMiddleware = session({
      secret: 'limits-block-cache-spec',
      resave: false,
      saveUninitialized: false,
    });
    const passport = usersPassport();
    const io = new Server();
    const app = express();
    const chat = requireAuth(
      sessionNamespace(io.of('/chat'), sessionMiddleware, { passport, app }),
    );
    chat.on('connection', (socket: ServerSocket) => {
      socket.on('say', (ack: (reply: unknown) => void) => {
        ack({ ok: true });
      });
    });
    rateLimit(chat, {
      events: { default: { points: POINTS, durationMs: WINDOW_MS } },
      redis: limiterClient,
    });
    kit = await createTestKit({ io, session: sessionMiddleware, passport, app });
  });
  after(async () => {
    await kit.close();
    await Promise.all([limiterClient.quit(), watch.close()]);
    await redis?.stop();
  });

  test('one command per event until refused, then none until the window ends', async () => {
    const socket = await (await kit.loginAs(alice)).connect('/chat');
    await watch.sent();
    for (let i = 0; i < POINTS; i++)
      assert.deepEqual(await socket.emitWithAck('say'), { ok: true });
    // The first refusal is Redis's answer: the budget is spent. One round trip per event.
    const first = await expectAckError(socket.emitWithAck('say'), 'ERR_RATE_LIMITED');
    assert.equal(await watch.sent(), POINTS + 1);
    // Blocked: refused with a wait no longer than the first one's, and Redis hears nothing of it.
    for (let i = 0; i < 20; i++) {
      const error = await expectAckError(socket.emitWithAck('say'), 'ERR_RATE_LIMITED');
      const wait = error.retryAfterMs ?? 0;
      assert.ok(wait > 0 && wait <= (first.retryAfterMs ?? 0), `retryAfterMs ${wait}`);
    }
    assert.equal(await watch.sent(), 0);
    // Another user is not blocked: their event is one round trip (the watch sees commands).
    const other = await (await kit.loginAs(bob)).connect('/chat');
    assert.deepEqual(await other.emitWithAck('say'), { ok: true });
    assert.equal(await watch.sent(), 1);
    socket.close();
    other.close();
  });
});
