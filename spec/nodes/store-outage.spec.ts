// Session store outages with a real Redis (connect-redis v9 over a node-redis client) that is
// killed and started again while the Socket.IO server keeps running. New sockets must be refused
// with ERR_SESSION_UNAVAILABLE (503) within timeoutMs, sockets already connected must keep
// working, and new connections must succeed again once Redis is back, without a server restart.
//
// node-redis facts these tests rely on (read in @redis/client's source):
// - by default a command issued while the client is reconnecting waits in the offline queue until
//   the connection is back: connect-redis's get() then never answers during the outage, and it is
//   sessionNamespace's timeoutMs that turns the hang into a refusal;
// - with `disableOfflineQueue: true` the same command rejects at once with "The client is offline";
// - the client emits 'error' on every failed (re)connection attempt: an app must listen to it, or
//   the process crashes on an unhandled 'error' event;
// - connect-redis does not emit express-session's 'disconnect'/'connect' store events itself: an
//   app that wants express-session's "store disconnected" fast path wires them to the client.
import assert from 'node:assert/strict';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import { RedisStore } from 'connect-redis';
import { createClient, type RedisClientOptions } from 'redis';
import type { Namespace } from 'socket.io';
import {
  ERR_SESSION_UNAVAILABLE,
  ERR_UNAUTHORIZED,
  requireAuth,
  sessionNamespace,
  type SessionNamespaceOptions,
} from '../../lib/index.js';
import { request, waitFor } from '../support/client.js';
import { redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';
import { pendingOf, start, type TestServer } from '../support/server.js';
import { connectError } from '../support/bounded.js';
import { expectUser, reporting } from '../support/whoami.js';

// Under CI=true a missing redis-server throws here: the spec fails instead of being skipped.
const skip = redisUnavailable();

/** The namespace's timeoutMs in the tests that wait for it. */
const TIMEOUT_MS = 500;

type StoreClient = ReturnType<typeof createClient>;

interface Stack {
  t: TestServer;
  redis: RedisServer;
  client: StoreClient;
  store: RedisStore;
  nsp: Namespace;
  /** What sessionNamespace's onError received. */
  reported: unknown[];
  /** The 'error' events of the Redis client. */
  clientErrors: unknown[];
}

/**
 * A real redis-server, a node-redis client, connect-redis as express-session's store, and a
 * guarded /private namespace answering `ping` and `whoami`.
 *
 * `reconnectStrategy`: 'default' is node-redis's own (exponential back-off, 50 ms doubling up to
 * 2 s, plus up to 200 ms of jitter: what most apps run); a number retries at that fixed interval
 * (shorter recoveries in the spec); false never reconnects.
 */
async function startStack(
  tc: NodeTestContext,
  clientOptions: Partial<RedisClientOptions> & { reconnectStrategy?: number | false | 'default' },
  nspOptions: Partial<SessionNamespaceOptions>,
): Promise<Stack> {
  const redis = await startRedis();
  const clientErrors: unknown[] = [];
  const { reconnectStrategy = 100, ...options } = clientOptions;
  const client = createClient({
    url: redis.url,
    ...options,
    socket: {
      connectTimeout: 1000,
      ...(reconnectStrategy !== 'default' && { reconnectStrategy }),
    },
  });
  client.on('error', (error: unknown) => {
    clientErrors.push(error);
  });
  await client.connect();
  const store = new RedisStore({ client });
  const reported: unknown[] = [];
  let nsp: Namespace | undefined;
  const t = await start(
    tc,
    ({ io, session, passport }) => {
      nsp = requireAuth(
        sessionNamespace(io.of('/private'), session, {
          passport,
          onError: (error) => {
            reported.push(error);
          },
          ...nspOptions,
        }),
      );
      reporting(nsp).on('connection', (socket) => {
        socket.on('ping', (cb: (answer: string) => void) => {
          cb('pong');
        });
      });
    },
    { sessionOptions: { store } },
  );
  // After start's cleanup (after hooks run in the order they were added): the server first.
  tc.after(async () => {
    client.destroy();
    await redis.stop();
  });
  assert.ok(nsp);
  return { t, redis, client, store, nsp, reported, clientErrors };
}

/** The session ID in a `connect.sid=s%3A<id>.<signature>` Cookie header. */
function sidOf(cookie: string): string {
  const value = decodeURIComponent(/connect\.sid=([^;]+)/.exec(cookie)?.[1] ?? '');
  assert.ok(value.startsWith('s:'), `a signed session cookie: ${cookie}`);
  return value.slice(2, value.lastIndexOf('.'));
}

/** Kills redis-server and waits until the client has noticed. */
async function outage(stack: Stack): Promise<void> {
  await stack.redis.stop();
  await waitFor(() => !stack.client.isReady, 10_000, 'the client to notice the outage');
}

/**
 * Starts redis-server again (empty: the spec's Redis keeps nothing on disk), waits for the client
 * to reconnect, and puts the saved session back, as a Redis with persistence would have kept it.
 */
async function recovery(stack: Stack, sessions: Map<string, string>): Promise<void> {
  await stack.redis.start();
  await waitFor(() => stack.client.isReady, 15_000, 'the client to reconnect');
  for (const [key, value] of sessions) await stack.client.set(key, value);
}

async function savedSession(stack: Stack, cookie: string): Promise<Map<string, string>> {
  const key = `sess:${sidOf(cookie)}`;
  const value = await stack.client.get(key);
  assert.equal(typeof value, 'string', 'the login saved the session in Redis');
  return new Map([[key, String(value)]]);
}

function pending(nsp: Namespace): number {
  return pendingOf(nsp);
}

const UNAVAILABLE = { code: ERR_SESSION_UNAVAILABLE, status: 503 };

interface Refusal {
  /** From opening the client to its connect_error. */
  elapsed: number;
  /** What reached onError meanwhile: the store's error when it refused, nothing for a timeout. */
  reported: unknown[];
}

/**
 * Opens a socket and expects a 503 ERR_SESSION_UNAVAILABLE. Which path refused it shows in
 * `reported`: a store error goes to onError before the refusal is sent; the timeout reports
 * nothing. That, not a bound on how long it took, tells the fast path from timeoutMs.
 */
async function expectUnavailable(stack: Stack, cookie: string, what: string): Promise<Refusal> {
  const reportedBefore = stack.reported.length;
  const started = Date.now();
  const socket = stack.t.connect('/private', { cookie, transports: ['websocket'] });
  const refused = await connectError(socket);
  const elapsed = Date.now() - started;
  assert.deepEqual(refused.data, UNAVAILABLE, what);
  assert.equal(refused.message, 'Service Unavailable', what);
  assert.doesNotMatch(refused.message, /offline|closed|disconnected|ECONN/i, 'nothing internal');
  assert.equal(socket.active, false, `${what}: no reconnect loop`);
  return { elapsed, reported: stack.reported.slice(reportedBefore) };
}

/** Refused by timeoutMs: not before it, and with no store error behind it. */
function byTimeout({ elapsed, reported }: Refusal, what: string): void {
  assert.ok(elapsed >= TIMEOUT_MS - 50, `${what}: refused after ${elapsed} ms, before timeoutMs?`);
  assert.deepEqual(reported, [], `${what}: a store error, not the timeout, refused it`);
}

/** Refused at once by the store's own error (the fast path), not by timeoutMs. */
function byStoreError({ reported }: Refusal, what: string, error: RegExp): void {
  assert.equal(reported.length, 1, `${what}: ${reported.length} errors reported, not the store's`);
  const [first] = reported;
  assert.ok(first instanceof Error && error.test(first.message), `${what}: ${String(first)}`);
}

describe('store outages with a real Redis (connect-redis + node-redis)', { skip }, () => {
  test('offline queue (default): the store read hangs, timeoutMs refuses with 503; Redis back → connections succeed', async (tc) => {
    // touchIntervalMs: each event also touches the session, a write that hangs in the offline
    // queue during the outage: it must not hold the event's ack.
    const stack = await startStack(
      tc,
      { reconnectStrategy: 'default' },
      { timeoutMs: TIMEOUT_MS, touchIntervalMs: 50 },
    );
    const { t, nsp } = stack;
    const connections: string[] = [];
    nsp.on('connection', (socket) => {
      connections.push(socket.id);
    });
    const cookie = await t.login('alice');
    const sessions = await savedSession(stack, cookie);
    const before = t.connect('/private', { cookie, transports: ['websocket'] });
    await expectUser(before, 'alice', 'before the outage');

    await outage(stack);
    // One socket, then several at once: each is refused at timeoutMs, none is left pending.
    byTimeout(await expectUnavailable(stack, cookie, 'during the outage'), 'during the outage');
    const many = await Promise.all(
      Array.from({ length: 5 }, (_, i) => expectUnavailable(stack, cookie, `concurrent #${i}`)),
    );
    for (const refusal of many) byTimeout(refusal, 'concurrent');
    // A socket connected before the outage keeps working: its event's touch waits in the offline
    // queue, its ack does not.
    assert.equal(before.connected, true);
    assert.equal(await request(before, 'ping'), 'pong', 'an ack during the outage');
    assert.equal(pending(nsp), 0, 'no refused socket is left pending');
    assert.equal(nsp.sockets.size, 1);

    // A client that gives up while its store read hangs leaves nothing behind.
    const quitter = t.connect('/private', { cookie, transports: ['websocket'] });
    await waitFor(() => pending(nsp) === 1, 5000, 'the handshake to be pending');
    quitter.disconnect();
    await waitFor(() => pending(nsp) === 0, 5000, 'the pending handshake to go');
    const connectionsBefore = connections.length;

    await recovery(stack, sessions);
    // Same server, same cookie: let in again. And a new login works end to end.
    await expectUser(
      t.connect('/private', { cookie, transports: ['websocket'] }),
      'alice',
      'after recovery',
    );
    const bob = await t.login('bob');
    await expectUser(t.connect('/private', { cookie: bob }), 'bob', 'new login after recovery');
    assert.equal(before.connected, true, 'the old socket lived through it');
    assert.equal(await request(before, 'ping'), 'pong');
    assert.ok(stack.clientErrors.length > 0, 'the Redis client did report the outage');
    // The reads queued during the outage were answered on reconnection, for refused sockets.
    assert.equal(connections.length, connectionsBefore + 2, 'only the two new sockets joined');
    assert.equal(pending(nsp), 0);
  });

  test('disableOfflineQueue: the store read fails at once → 503 long before timeoutMs; onError gets the error', async (tc) => {
    // timeoutMs is large here so that a fast refusal cannot be the timeout's. Revalidation every
    // 200 ms also reads the store during the outage: a failed read is not a revocation.
    const stack = await startStack(
      tc,
      { disableOfflineQueue: true },
      { timeoutMs: 10_000, revalidateIntervalMs: 200, touchIntervalMs: 50 },
    );
    const { t, nsp, reported, store } = stack;
    // Store reads that fail: the revalidation rounds' during the outage.
    let failedReads = 0;
    const get = store.get.bind(store);
    store.get = (sid, cb) =>
      get(sid, (err: unknown, session: unknown) => {
        if (err) failedReads++;
        return cb?.(err, session) as unknown;
      });
    const cookie = await t.login('alice');
    const sessions = await savedSession(stack, cookie);
    const before = t.connect('/private', { cookie, transports: ['websocket'] });
    await expectUser(before, 'alice', 'before the outage');
    const ended: unknown[] = [];
    before.on('session:ended', (payload: unknown) => {
      ended.push(payload);
    });

    await outage(stack);
    byStoreError(
      await expectUnavailable(stack, cookie, 'offline client'),
      'offline client',
      /offline/i,
    );

    // Several revalidation rounds fail meanwhile: their reads are counted, not slept through.
    const failedBefore = failedReads;
    await waitFor(() => failedReads >= failedBefore + 3, 3 * 200 + 5000, 'failed revalidations');
    assert.equal(before.connected, true);
    const reportedBefore = reported.length;
    assert.equal(await request(before, 'ping'), 'pong', 'an ack during the outage');
    // That event's touch failed: reported, not thrown at the socket.
    await waitFor(() => reported.length > reportedBefore, 5000, 'the failed touch to be reported');
    assert.deepEqual(ended, [], 'a store outage is not a revocation');
    assert.equal(pending(nsp), 0);

    await recovery(stack, sessions);
    const bob = await t.login('bob');
    await expectUser(t.connect('/private', { cookie: bob }), 'bob', 'new login after recovery');
  });

  test("express-session's 'disconnect' store event: 503 at once; 'connect' → connections succeed", async (tc) => {
    const stack = await startStack(tc, {}, { timeoutMs: 10_000 });
    const { t, store, reported } = stack;
    const cookie = await t.login('alice');
    const before = t.connect('/private', { cookie, transports: ['websocket'] });
    await expectUser(before, 'alice', 'before');

    // express-session then calls next() with no req.session at all.
    store.emit('disconnect');
    byStoreError(
      await expectUnavailable(stack, cookie, "after the store's 'disconnect'"),
      "after the store's 'disconnect'",
      /disconnected/,
    );
    // Anonymous clients are refused for the same reason, not as 401: the store is the problem.
    const anonymous = t.connect('/private', { transports: ['websocket'] });
    assert.deepEqual((await connectError(anonymous)).data, UNAVAILABLE);
    assert.equal(await request(before, 'ping'), 'pong', 'connected sockets keep working');
    assert.ok(
      reported.some((error) => error instanceof Error && /disconnected/.test(error.message)),
      'onError was told why',
    );

    store.emit('connect');
    await expectUser(
      t.connect('/private', { cookie, transports: ['websocket'] }),
      'alice',
      "after the store's 'connect'",
    );
    assert.deepEqual(
      (await connectError(t.connect('/private', { transports: ['websocket'] }))).data,
      { code: ERR_UNAUTHORIZED, status: 401 },
      'anonymous is 401 again',
    );
  });

  test("the client's events wired to the store's: a real outage takes the fast path, recovery follows 'ready'", async (tc) => {
    const stack = await startStack(tc, {}, { timeoutMs: 10_000 });
    const { t, client, store } = stack;
    // What an app does to get express-session's "store disconnected" behaviour with connect-redis.
    const flips: string[] = [];
    client.on('error', () => {
      if (flips.at(-1) !== 'disconnect') flips.push('disconnect');
      store.emit('disconnect');
    });
    client.on('ready', () => {
      flips.push('connect');
      store.emit('connect');
    });
    const cookie = await t.login('alice');
    const sessions = await savedSession(stack, cookie);
    const before = t.connect('/private', { cookie, transports: ['websocket'] });
    await expectUser(before, 'alice', 'before');

    await outage(stack);
    await waitFor(() => flips.includes('disconnect'), 10_000, "the client's error event");
    byStoreError(
      await expectUnavailable(stack, cookie, 'real outage, wired events'),
      'real outage, wired events',
      /disconnected/,
    );
    assert.equal(await request(before, 'ping'), 'pong', 'connected sockets keep working');

    await recovery(stack, sessions);
    assert.equal(flips.at(-1), 'connect');
    await expectUser(
      t.connect('/private', { cookie, transports: ['websocket'] }),
      'alice',
      'after recovery',
    );
    assert.equal(before.connected, true);
  });

  test('reconnectStrategy: false — the client gives up for good: 503 at once, also after Redis is back', async (tc) => {
    // Not a recovery: the node-redis client is closed for ever, so the app needs a new client.
    // What matters here is that the package answers at once and never hangs on a dead client.
    const stack = await startStack(tc, { reconnectStrategy: false }, { timeoutMs: 10_000 });
    const { t, client } = stack;
    const cookie = await t.login('alice');
    const before = t.connect('/private', { cookie, transports: ['websocket'] });
    await expectUser(before, 'alice', 'before');
    await outage(stack);
    await waitFor(() => !client.isOpen, 10_000, 'the client to close');
    byStoreError(
      await expectUnavailable(stack, cookie, 'closed client'),
      'closed client',
      /closed/i,
    );
    await stack.redis.start();
    byStoreError(
      await expectUnavailable(stack, cookie, 'closed client, Redis back'),
      'closed client, Redis back',
      /closed/i,
    );
    assert.equal(await request(before, 'ping'), 'pong', 'connected sockets keep working');
  });

  test('a frozen Redis (SIGSTOP): the client still looks ready, reads hang even without the offline queue; timeoutMs refuses with 503', async (tc) => {
    const stack = await startStack(tc, { disableOfflineQueue: true }, { timeoutMs: TIMEOUT_MS });
    const { t, client, nsp } = stack;
    const pid = Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1]);
    assert.ok(pid > 0, 'the pid of our redis-server');
    const cookie = await t.login('alice');
    const before = t.connect('/private', { cookie, transports: ['websocket'] });
    await expectUser(before, 'alice', 'before');

    // Frozen, not down: the TCP connection stays up, so no error and no reconnection.
    process.kill(pid, 'SIGSTOP');
    let frozen = true;
    tc.after(() => {
      // Only if the test failed while Redis was frozen (it may already have been killed).
      if (frozen) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // already gone
        }
      }
    });
    byTimeout(await expectUnavailable(stack, cookie, 'frozen Redis'), 'frozen Redis');
    assert.ok(client.isReady, 'the client noticed nothing');
    assert.equal(await request(before, 'ping'), 'pong', 'connected sockets keep working');
    assert.equal(pending(nsp), 0);

    process.kill(pid, 'SIGCONT');
    frozen = false;
    // Nothing was lost: the same cookie works again at once.
    await expectUser(
      t.connect('/private', { cookie, transports: ['websocket'] }),
      'alice',
      'after SIGCONT',
    );
  });
});
