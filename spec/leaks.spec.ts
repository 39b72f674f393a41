// Leaks: thousands of handshakes that hang (middleware that never calls next, a session store that
// never answers, an authorize that never settles), and thousands of clients that leave while
// their handshake hangs, must leave no pending socket, timer, listener or heap behind, and no
// `connection` event for a client that has left.
//
// The clients live in a child process (spec/support/load-clients.ts), so this process's heap and
// timers are the server's. LEAK_HANDSHAKES sets how many handshakes each test makes (CI default
// 1000; `npm run test:full` makes 5000). Each test warms up first, then compares after with
// before: Socket.IO's pending sockets (pendingOf: see support/pending.ts), `io.engine.clientsCount`, active
// timers, listener counts, and the heap after forced GCs.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import session, { MemoryStore, type SessionData } from 'express-session';
import type { Namespace } from 'socket.io';
import {
  ERR_MIDDLEWARE_TIMEOUT,
  ERR_SESSION_UNAVAILABLE,
  requireAuth,
  sessionNamespace,
  wrapExpressMiddleware,
} from '../lib/index.js';
import { waitFor } from './support/client.js';
import { ClientProcess, type HandshakesArgs } from './support/client-process.js';
import { createTestServer, type TestServer, pendingOf } from './support/server.js';
import { heapAfterGc } from './support/heap.js';

const HANDSHAKES = Number(process.env.LEAK_HANDSHAKES ?? 1000);
const CONCURRENCY = Number(process.env.LEAK_CONCURRENCY ?? 200);
const WARMUP = Math.min(300, HANDSHAKES);
/** A real leak of ~8 KB per handshake is 8 MB at 1000 handshakes, 40 MB at 5000. */
const HEAP_BOUND_MB = 5;
/** The timeout of the namespaces whose handshakes hang until refused. */
const HUNG_MS = 200;
/** The timeout of the namespaces clients leave: never reached, so only the leave can free them. */
const LONG_MS = 120_000;
/** The `/late` middleware calls next() this long after its client has gone. */
const LATE_MS = 5000;
/** requireAuth's timeout for clients that leave: they are let go once it has passed. */
const AUTHZ_MID_MS = 2000;
/** requireAuth's default timeout. */
const AUTHZ_LONG_MS = 10_000;
/** How soon a socket whose client left must be let go. */
const RELEASE_MS = 2000;
/** How long the server may take to be quiet again after a batch. Far below LONG_MS. */
const QUIET_MS = 20_000;

/** A session store whose `get` never answers (and keeps nothing of the request). */
class SilentStore extends MemoryStore {
  gets = 0;
  override get(_sid: string, _cb: (err: unknown, session?: SessionData | null) => void): void {
    this.gets++;
    notePending();
  }
}

const counters = {
  hung: 0,
  late: 0,
  lateNexts: 0,
  authorize: 0,
  peakPending: 0,
};
const connections = new Map<string, number>();
const silentStore = new SilentStore();
const sharedNeverSettles = new Promise<boolean>(() => undefined);
const neverSettles = (): Promise<boolean> => new Promise<boolean>(() => undefined);
let server: TestServer;
let clients: ClientProcess;
let cookie: string;

type Emitter = NodeJS.EventEmitter;

function pendingTotal(): number {
  let total = 0;
  for (const nsp of server.io._nsps.values()) total += pendingOf(nsp);
  return total;
}

function notePending(): void {
  counters.peakPending = Math.max(counters.peakPending, pendingTotal());
}

function connectionsTotal(): number {
  let total = 0;
  for (const count of connections.values()) total += count;
  return total;
}

function resourceCount(type: string): number {
  return process.getActiveResourcesInfo().filter((r) => r === type).length;
}

/** Listener counts of every emitter the package or Socket.IO could add listeners to. */
function listeners(): Record<string, number> {
  const emitters: [string, NodeJS.EventEmitter][] = [
    ['http', server.http],
    ['engine', server.io.engine],
    ['io', server.io],
    ['store', server.store],
    ['silentStore', silentStore],
    ['process', process],
  ];
  for (const [name, nsp] of server.io._nsps) emitters.push([`nsp ${name}`, nsp]);
  const counts: Record<string, number> = {};
  for (const [name, emitter] of emitters) {
    for (const event of emitter.eventNames()) {
      counts[`${name} ${String(event)}`] = emitter.listenerCount(event);
    }
  }
  return counts;
}

interface Snapshot {
  timers: number;
  tcp: number;
  listeners: Record<string, number>;
  heap: number;
}

async function snapshot(): Promise<Snapshot> {
  const heap = await heapAfterGc();
  return {
    timers: resourceCount('Timeout'),
    tcp: resourceCount('TCPSocketWrap'),
    listeners: listeners(),
    heap,
  };
}

/** Waits until no handshake is pending, no connection is open and `settled()` holds. */
async function quiet(settled: () => boolean = () => true): Promise<void> {
  await waitFor(
    () => pendingTotal() === 0 && server.io.engine.clientsCount === 0 && settled(),
    QUIET_MS,
    `no pending socket (${pendingTotal()} left) and no connection (${server.io.engine.clientsCount} left)`,
  );
}

const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

interface LeakCase {
  label: string;
  args: Omit<HandshakesArgs, 'url' | 'count' | 'concurrency'>;
  /** The refusal code every handshake gets, or undefined for clients that leave before one. */
  code?: string;
  /** How many handshakes reached the hung step so far. */
  reached: () => number;
  /** Whether everything the hung step started has finished (e.g. late next() calls). */
  settled?: () => boolean;
}

async function leakCase({ label, args, code, reached, settled }: LeakCase): Promise<void> {
  const run = (count: number) =>
    clients.call('handshakes', { ...args, url: server.url, count, concurrency: CONCURRENCY });
  const warm = await run(WARMUP);
  assert.deepEqual(warm.failures, []);
  await quiet(settled);
  const before = await snapshot();
  const reachedBefore = reached();
  const connectionsBefore = connectionsTotal();
  counters.peakPending = 0;

  const started = performance.now();
  const result = await run(HANDSHAKES);
  await quiet();
  const releasedMs = performance.now() - started - result.ms;
  await quiet(settled);
  const stayed =
    args.mode === 'leave' ? `clients stayed at most ${Math.round(result.maxStayMs)} ms; ` : '';
  // Timers of closing connections (ws's close timeout) go a moment after the socket.
  await waitFor(() => resourceCount('Timeout') <= before.timers, 5000, 'timers').catch(
    () => undefined,
  );
  const afterSnap = await snapshot();
  const seconds = ((performance.now() - started) / 1000).toFixed(1);

  console.log(
    `[leaks] ${label}: ${HANDSHAKES} handshakes (${CONCURRENCY} at a time) in ${seconds} s, ` +
      `all let go ${(releasedMs / 1000).toFixed(1)} s after the last client; ${stayed}` +
      `peak pending ${counters.peakPending}, now ${pendingTotal()}; ` +
      `heap ${mb(before.heap)} -> ${mb(afterSnap.heap)} MB ` +
      `(${afterSnap.heap >= before.heap ? '+' : ''}${mb(afterSnap.heap - before.heap)}); ` +
      `timers ${before.timers} -> ${afterSnap.timers}; ` +
      `engine clients ${server.io.engine.clientsCount}; ` +
      `connections ${connectionsTotal() - connectionsBefore}; ` +
      `answers ${JSON.stringify(result.codes)}`,
  );

  assert.deepEqual(result.failures, [], 'every connection opened and was answered');
  assert.equal(result.connected, 0, 'no client connected');
  assert.deepEqual(result.codes, code === undefined ? {} : { [code]: HANDSHAKES });
  assert.equal(reached() - reachedBefore, HANDSHAKES, 'every handshake reached the hung step');
  assert.ok(counters.peakPending > 1, 'handshakes were pending at the same time');
  assert.equal(pendingTotal(), 0, 'no pending socket');
  assert.equal(server.io.engine.clientsCount, 0, 'no engine client');
  assert.equal(
    connectionsTotal(),
    connectionsBefore,
    `no connection event (clients stayed at most ${Math.round(result.maxStayMs)} ms)`,
  );
  assert.equal(afterSnap.timers, before.timers, 'active timers back to the baseline');
  // Fewer is fine: the login's keep-alive connection may have closed in between.
  assert.ok(afterSnap.tcp <= before.tcp, `TCP sockets ${before.tcp} -> ${afterSnap.tcp}`);
  assert.deepEqual(afterSnap.listeners, before.listeners, 'listener counts unchanged');
  assert.ok(
    afterSnap.heap - before.heap < HEAP_BOUND_MB * 2 ** 20,
    `heap grew by ${mb(afterSnap.heap - before.heap)} MB (bound ${HEAP_BOUND_MB} MB)`,
  );
}

describe(`leaks: ${HANDSHAKES} hung or abandoned handshakes leave nothing behind`, () => {
  before(async () => {
    const hung = (): void => {
      counters.hung++;
      notePending();
    };
    const late = (_req: unknown, _res: unknown, next: () => void): void => {
      counters.late++;
      notePending();
      setTimeout(() => {
        counters.lateNexts++;
        next();
      }, LATE_MS);
    };
    server = await createTestServer(({ io, session: sessionMiddleware, passport }) => {
      const silentSession = session({
        secret: 'spec-secret',
        resave: false,
        saveUninitialized: false,
        store: silentStore,
      });
      const authorize = (): Promise<boolean> => {
        counters.authorize++;
        notePending();
        return neverSettles();
      };
      const namespaces: Namespace[] = [
        io.of('/'),
        io.of('/hung').use(wrapExpressMiddleware(hung, { timeoutMs: HUNG_MS })),
        io.of('/hung-long').use(wrapExpressMiddleware(hung, { timeoutMs: LONG_MS })),
        io.of('/late').use(wrapExpressMiddleware(late, { timeoutMs: LONG_MS })),
        sessionNamespace(io.of('/store-hung'), silentSession, { passport, timeoutMs: HUNG_MS }),
        sessionNamespace(io.of('/store-long'), silentSession, { passport, timeoutMs: LONG_MS }),
        requireAuth(sessionNamespace(io.of('/authz-hung'), sessionMiddleware, { passport }), {
          authorize,
          timeoutMs: HUNG_MS,
        }),
        requireAuth(sessionNamespace(io.of('/authz-mid'), sessionMiddleware, { passport }), {
          authorize,
          timeoutMs: AUTHZ_MID_MS,
        }),
        requireAuth(sessionNamespace(io.of('/authz-shared'), sessionMiddleware, { passport }), {
          authorize: () => {
            counters.authorize++;
            notePending();
            return sharedNeverSettles;
          },
          timeoutMs: HUNG_MS,
        }),
        requireAuth(sessionNamespace(io.of('/authz-long'), sessionMiddleware, { passport }), {
          authorize,
          timeoutMs: AUTHZ_LONG_MS,
        }),
      ];
      for (const nsp of namespaces) {
        nsp.on('connection', () => {
          connections.set(nsp.name, (connections.get(nsp.name) ?? 0) + 1);
        });
      }
      io.of(/^\/multi-\d+$/)
        .use(wrapExpressMiddleware(hung, { timeoutMs: HUNG_MS }))
        .on('connection', (socket) => {
          const name = socket.nsp.name;
          connections.set(name, (connections.get(name) ?? 0) + 1);
        });
    });
    cookie = await server.login('alice');
    clients = await ClientProcess.start('leak clients');
  });

  after(async () => {
    await clients.stop();
    await server.cleanup();
  });

  test('wrapExpressMiddleware: handshakes against middleware that never calls next are refused after timeoutMs', async () => {
    await leakCase({
      label: 'wrapExpressMiddleware, hung middleware, refused after timeoutMs',
      args: { nsps: ['/hung'], mode: 'answer' },
      code: ERR_MIDDLEWARE_TIMEOUT,
      reached: () => counters.hung,
    });
  });

  test('wrapExpressMiddleware: clients that leave mid-handshake are let go at once, and never connect', async () => {
    // Half hang for ever, half call next() LATE_MS after their client has gone.
    await leakCase({
      label: 'wrapExpressMiddleware, clients leaving mid-handshake',
      args: { nsps: ['/hung-long', '/late'], mode: 'leave', stayMs: [10, 60] },
      reached: () => counters.hung + counters.late,
      settled: () => counters.lateNexts === counters.late,
    });
  });

  test('sessionNamespace: handshakes against a store whose get never answers are refused after timeoutMs', async () => {
    await leakCase({
      label: 'sessionNamespace, store.get never answers, refused after timeoutMs',
      args: { nsps: ['/store-hung'], mode: 'answer', cookie },
      code: ERR_SESSION_UNAVAILABLE,
      reached: () => silentStore.gets,
    });
  });

  test('sessionNamespace: clients that leave while the store read hangs are let go at once', async () => {
    await leakCase({
      label: 'sessionNamespace, clients leaving while store.get hangs',
      args: { nsps: ['/store-long'], mode: 'leave', cookie, stayMs: [10, 60] },
      reached: () => silentStore.gets,
    });
  });

  test('requireAuth: handshakes whose authorize never settles are refused after timeoutMs', async () => {
    await leakCase({
      label: 'requireAuth, authorize never settles, refused after timeoutMs',
      args: { nsps: ['/authz-hung'], mode: 'answer', cookie },
      code: ERR_MIDDLEWARE_TIMEOUT,
      reached: () => counters.authorize,
    });
  });

  test('requireAuth: clients that leave while authorize hangs leave nothing behind once timeoutMs has passed', async () => {
    await leakCase({
      label: `requireAuth, clients leaving while authorize hangs (timeoutMs ${AUTHZ_MID_MS})`,
      args: { nsps: ['/authz-mid'], mode: 'leave', cookie, stayMs: [30, 100] },
      reached: () => counters.authorize,
    });
  });

  test('one connection with / connected: hung handshakes on its other namespaces leave nothing behind', async () => {
    // The case Socket.IO's connectTimeout does not cover: once / is connected, a hung namespace
    // handshake on the same connection would stay pending for as long as the connection lives.
    const names = Array.from({ length: 50 }, (_, i) => `/multi-${i}`);
    const rounds = Math.max(2, Math.round(HANDSHAKES / names.length));
    await clients.call('multiplexOpen', { url: server.url });
    const engineClients = (server.io.engine as unknown as { clients: Record<string, Emitter> })
      .clients;
    const [conn] = Object.values(engineClients);
    assert.ok(conn, 'the connection');
    // Warm-up: creates the child namespaces, which Socket.IO keeps.
    for (let i = 0; i < 2; i++) await clients.call('multiplexRound', { nsps: names });
    await waitFor(() => pendingTotal() === 0, QUIET_MS, 'no pending socket');
    const before = await snapshot();
    const closeListeners = conn.listenerCount('close');
    const connectionsBefore = connectionsTotal();
    const started = performance.now();
    const codes: Record<string, number> = {};
    let connectedCount = 0;
    for (let round = 0; round < rounds; round++) {
      const result = await clients.call('multiplexRound', { nsps: names });
      connectedCount += result.connected;
      for (const [key, n] of Object.entries(result.codes)) codes[key] = (codes[key] ?? 0) + n;
    }
    await waitFor(() => pendingTotal() === 0, QUIET_MS, 'no pending socket');
    await waitFor(() => resourceCount('Timeout') <= before.timers, 5000, 'timers').catch(
      () => undefined,
    );
    const afterSnap = await snapshot();
    const total = rounds * names.length;
    console.log(
      `[leaks] one connection, / connected, ${total} hung handshakes on ${names.length} namespaces ` +
        `in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
        `heap ${mb(before.heap)} -> ${mb(afterSnap.heap)} MB; timers ${before.timers} -> ` +
        `${afterSnap.timers}; close listeners on the connection ${closeListeners} -> ` +
        `${conn.listenerCount('close')}; pending ${pendingTotal()}`,
    );
    assert.equal(connectedCount, 0);
    assert.deepEqual(codes, { [ERR_MIDDLEWARE_TIMEOUT]: total });
    assert.equal(pendingTotal(), 0);
    assert.equal(server.io.engine.clientsCount, 1, 'the connection is still open');
    assert.equal(conn.listenerCount('close'), closeListeners, 'no close listener piles up');
    assert.equal(connectionsTotal() - connectionsBefore, 0);
    assert.equal(afterSnap.timers, before.timers);
    assert.deepEqual(afterSnap.listeners, before.listeners);
    assert.ok(
      afterSnap.heap - before.heap < HEAP_BOUND_MB * 2 ** 20,
      `heap grew by ${mb(afterSnap.heap - before.heap)} MB (bound ${HEAP_BOUND_MB} MB)`,
    );
    await clients.call('multiplexClose', null);
    await waitFor(() => server.io.engine.clientsCount === 0, QUIET_MS, 'the connection closed');
  });

  test('requireAuth: handshakes whose authorize returns one shared promise that never settles', async () => {
    await leakCase({
      label: 'requireAuth, authorize returns one shared never-settling promise',
      args: { nsps: ['/authz-shared'], mode: 'answer', cookie },
      code: ERR_MIDDLEWARE_TIMEOUT,
      reached: () => counters.authorize,
    });
  });

  // Known failure: requireAuth does not watch the connection while authorize runs, so a socket
  // whose client has left stays pending (with its timer) until timeoutMs, 10 s by default.
  // wrapExpressMiddleware and sessionNamespace let it go as soon as the connection closes.
  test('requireAuth: a client that leaves while authorize hangs is let go at once, not at timeoutMs', async () => {
    const nsp = server.io.of('/authz-long');
    const reachedBefore = counters.authorize;
    const result = await clients.call('handshakes', {
      url: server.url,
      nsps: ['/authz-long'],
      mode: 'leave',
      cookie,
      stayMs: [30, 100],
      count: CONCURRENCY,
      concurrency: CONCURRENCY,
    });
    assert.deepEqual(result.failures, []);
    assert.equal(
      counters.authorize - reachedBefore,
      CONCURRENCY,
      'every handshake reached authorize',
    );
    await waitFor(() => server.io.engine.clientsCount === 0, QUIET_MS, 'every connection closed');
    const left = performance.now();
    const released = await waitFor(() => pendingOf(nsp) === 0, RELEASE_MS).then(
      () => true,
      () => false,
    );
    const pending = pendingOf(nsp);
    const timers = resourceCount('Timeout');
    console.log(
      `[leaks] requireAuth, ${CONCURRENCY} clients left while authorize hung (timeoutMs ` +
        `${AUTHZ_LONG_MS}): ${pending} sockets and ${timers} timers still there ` +
        `${Math.round(performance.now() - left)} ms after the last connection closed`,
    );
    try {
      assert.ok(
        released,
        `${pending} sockets still pending (with ${timers} timers) ${RELEASE_MS} ms after their ` +
          `clients left; they go only at requireAuth's timeoutMs (${AUTHZ_LONG_MS} ms)`,
      );
    } finally {
      // Whatever the outcome, leave nothing for the process to wait on.
      await quiet();
    }
  });
});
