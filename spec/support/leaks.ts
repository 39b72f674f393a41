// Shared by the leak specs (spec/leaks/leaks-*.spec.ts): thousands of handshakes that hang (middleware
// that never calls next, a session store that never answers, an authorize that never settles), and
// thousands of clients that leave while their handshake hangs, must leave no pending socket, timer,
// listener or heap behind, and no `connection` event for a client that has left. The tests are
// spread over three files because the test runner's --test-timeout bounds each file as a whole.
//
// The clients live in a child process (spec/support/load-clients.ts), so this process's heap and
// timers are the server's. LEAK_HANDSHAKES sets how many handshakes each test makes (CI default
// 1000; `npm run test:full` makes 5000). Each test warms up first, then compares after with
// before: Socket.IO's pending sockets (pendingOf: see support/pending.ts), `io.engine.clientsCount`, active
// timers, listener counts, and the heap after forced GCs.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before } from 'node:test';
import session, { MemoryStore, type SessionData } from 'express-session';
import type { Namespace } from 'socket.io';
import { requireAuth, sessionNamespace, wrapExpressMiddleware } from '../../lib/index.js';
import { waitFor } from './client.js';
import { ClientProcess, handshakeOf, type HandshakesArgs } from './client-process.js';
import { createTestServer, type TestServer, pendingOf } from './server.js';
import { heapAfterGc } from './heap.js';

export const HANDSHAKES = Number(process.env.LEAK_HANDSHAKES ?? 1000);
export const CONCURRENCY = Number(process.env.LEAK_CONCURRENCY ?? 200);
const WARMUP = Math.min(300, HANDSHAKES);
/** A real leak of ~8 KB per handshake is 8 MB at 1000 handshakes, 40 MB at 5000. */
export const HEAP_BOUND_MB = 5;
/** The timeout of the namespaces whose handshakes hang until refused. */
const HUNG_MS = 200;
/**
 * The timeout of the namespaces clients leave: never reached, so only the leave can free them (a
 * client leaves once the server has reached the hung step for it, however long that took).
 */
export const LONG_MS = 120_000;
/** How long the server may take to be quiet again after a batch. Far below LONG_MS. */
export const QUIET_MS = 20_000;

/** The request whose session `silentStore` is asked for (express-session reads synchronously). */
let readingFor: { url?: string } | undefined;

/** A session store whose `get` never answers (and keeps nothing of the request). */
class SilentStore extends MemoryStore {
  gets = 0;
  override get(_sid: string, _cb: (err: unknown, session?: SessionData | null) => void): void {
    this.gets++;
    notePending();
    if (readingFor) reached(readingFor);
  }
}

export const counters = {
  hung: 0,
  late: 0,
  lateNexts: 0,
  authorize: 0,
  peakPending: 0,
};
export const connections = new Map<string, number>();
export const silentStore = new SilentStore();
const sharedNeverSettles = new Promise<boolean>(() => undefined);
const neverSettles = (): Promise<boolean> => new Promise<boolean>(() => undefined);
export let server: TestServer;
export let clients: ClientProcess;
export let cookie: string;

export type Emitter = NodeJS.EventEmitter;

export function pendingTotal(): number {
  let total = 0;
  for (const nsp of server.io._nsps.values()) total += pendingOf(nsp);
  return total;
}

function notePending(): void {
  counters.peakPending = Math.max(counters.peakPending, pendingTotal());
}

/** Failed `release` calls to the client process: each test checks there are none. */
export const releaseErrors: unknown[] = [];

/**
 * The server has reached the hung step for this request's handshake: tells its client (a `leave`
 * one, which carries its number in the URL) that it may go. Clients leave on this word, not after
 * a time meant to be long enough for the server to get there.
 */
function reached(req: { url?: string }): void {
  const handshake = handshakeOf(req);
  if (handshake === undefined) return;
  clients.call('release', { handshakes: [handshake] }).catch((error: unknown) => {
    releaseErrors.push(error);
  });
}

/** The engine.io connection of a socket's request (a view that reads the connection's fields). */
function connectionOf(req: object): Emitter {
  const engineClients = (
    server.io.engine as unknown as {
      clients: Record<string, Emitter & { request: { rawHeaders: unknown } }>;
    }
  ).clients;
  const { rawHeaders } = req as { rawHeaders: unknown };
  const conn = Object.values(engineClients).find(
    (c) => c.request === req || c.request.rawHeaders === rawHeaders,
  );
  assert.ok(conn, 'the connection of a pending handshake');
  return conn;
}

export function connectionsTotal(): number {
  let total = 0;
  for (const count of connections.values()) total += count;
  return total;
}

export function resourceCount(type: string): number {
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

export async function snapshot(): Promise<Snapshot> {
  const heap = await heapAfterGc();
  return {
    timers: resourceCount('Timeout'),
    tcp: resourceCount('TCPSocketWrap'),
    listeners: listeners(),
    heap,
  };
}

/** Waits until no handshake is pending, no connection is open and `settled()` holds. */
export async function quiet(settled: () => boolean = () => true): Promise<void> {
  await waitFor(
    () => pendingTotal() === 0 && server.io.engine.clientsCount === 0 && settled(),
    QUIET_MS,
    `no pending socket (${pendingTotal()} left) and no connection (${server.io.engine.clientsCount} left)`,
  );
}

export const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

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

export async function leakCase({ label, args, code, reached, settled }: LeakCase): Promise<void> {
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

  assert.deepEqual(releaseErrors, [], 'every client was told when to leave');
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

/** Registers, in the calling describe, the server with every leak namespace and the client process. */
export function leakSuite(): void {
  before(async () => {
    const hung = (req: { url?: string }): void => {
      counters.hung++;
      notePending();
      reached(req);
    };
    const late = (req: { url?: string }, _res: unknown, next: () => void): void => {
      counters.late++;
      notePending();
      // next() once the client has gone: after its connection's close, and what the close set
      // off, rather than after a time meant to be longer than the client stays.
      connectionOf(req).once('close', () => {
        setImmediate(() => {
          counters.lateNexts++;
          next();
        });
      });
      reached(req);
    };
    server = await createTestServer(({ io, session: sessionMiddleware, passport }) => {
      const storeSession = session({
        secret: 'spec-secret',
        resave: false,
        saveUninitialized: false,
        store: silentStore,
      });
      const silentSession = (req: { url?: string }, res: never, next: () => void): void => {
        readingFor = req;
        try {
          storeSession(req as never, res, next);
        } finally {
          readingFor = undefined;
        }
      };
      const authorize = (
        _user: unknown,
        socket: { request: { url?: string } },
      ): Promise<boolean> => {
        counters.authorize++;
        notePending();
        reached(socket.request);
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
        requireAuth(sessionNamespace(io.of('/authz-leave'), sessionMiddleware, { passport }), {
          authorize,
          timeoutMs: LONG_MS,
        }),
        requireAuth(sessionNamespace(io.of('/authz-shared'), sessionMiddleware, { passport }), {
          authorize: () => {
            counters.authorize++;
            notePending();
            return sharedNeverSettles;
          },
          timeoutMs: HUNG_MS,
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
}
