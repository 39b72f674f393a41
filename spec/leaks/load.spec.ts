// Load: many authenticated sockets on one server process stay connected and answer acks while
// anonymous clients hammer the guarded namespace; every anonymous client is refused once, with
// ERR_UNAUTHORIZED, and those that have reconnection on never come back.
//
// LOAD_SOCKETS and LOAD_REFUSED set the sizes (CI default 2000 and 200; `npm run test:full` runs
// 10 000 and 1000). The clients live in two child processes (spec/support/load-clients.ts): one
// holds the authenticated sockets, the other runs the refused clients, so that they run at the
// same time and the server's heap and CPU figures are its own.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import type { Namespace } from 'socket.io';
import { ERR_UNAUTHORIZED, requireAuth, sessionNamespace } from '../../lib/index.js';
import { delay, waitFor } from '../support/client.js';
import { ClientProcess, type AcksResult } from '../support/client-process.js';
import { createTestServer, type TestServer, pendingOf } from '../support/server.js';
import { heapAfterGc } from '../support/heap.js';

const SOCKETS = Number(process.env.LOAD_SOCKETS ?? 2000);
const REFUSED = Number(process.env.LOAD_REFUSED ?? 200);
/** Sessions the authenticated sockets share (each a real login). */
const SESSIONS = Math.min(100, SOCKETS);
const OPEN_CONCURRENCY = 200;
const REFUSED_CONCURRENCY = 100;
/** Every 4th refused client is a browser-like one: reconnection on, polling then websocket. */
const RECONNECT_EVERY = 4;
/** How long the refused clients are watched after their refusal: past two reconnection delays. */
const QUIET_MS = 4000;
const ACK_TIMEOUT_MS = 30_000;
/** The pause between two rounds of acks, so that the hammering gets its share of the CPU. */
const ACK_PAUSE_MS = 250;
const ECHO = 'echo';
const PING_INTERVAL_MS = 5000;

/** The soft limit on open files of a shell started like this process, or undefined. */
function openFileLimit(): number | undefined {
  const out = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim();
  return out === 'unlimited' ? Infinity : Number(out) || undefined;
}

const counts = {
  connections: 0,
  anonymousHandshakes: 0,
  anonymousConnections: 0,
};
const serverDisconnects: string[] = [];
let server: TestServer;
let guarded: Namespace;
let authClients: ClientProcess;
let hammer: ClientProcess;
let cookies: string[];

describe(`load: ${SOCKETS} authenticated sockets while ${REFUSED} refused clients hammer`, () => {
  before(async () => {
    const limit = openFileLimit();
    // Each process holds one descriptor per socket (the server all of them), plus a margin.
    const needed = SOCKETS + REFUSED_CONCURRENCY + 500;
    if (limit !== undefined && limit < needed) {
      throw new Error(
        `ulimit -n is ${limit}, below the ${needed} open files ${SOCKETS} sockets need: ` +
          `raise it (ulimit -n ${needed}) or lower LOAD_SOCKETS`,
      );
    }
    server = await createTestServer(
      ({ io, session, passport }) => {
        io.engine.on('connection', (conn: { request: { headers: { cookie?: string } } }) => {
          if (conn.request.headers.cookie === undefined) counts.anonymousConnections++;
        });
        guarded = io.of('/guarded');
        // Counts every handshake of an anonymous client, before the package sees it.
        guarded.use((socket, next) => {
          if (socket.request.headers.cookie === undefined) counts.anonymousHandshakes++;
          next();
        });
        requireAuth(sessionNamespace(guarded, session, { passport }));
        guarded.on('connection', (socket) => {
          counts.connections++;
          socket.on(ECHO, (value: unknown, ack: unknown) => {
            if (typeof ack === 'function') (ack as (reply: unknown) => void)(value);
          });
          socket.on('disconnect', (reason) => {
            serverDisconnects.push(reason);
          });
        });
        // Heartbeats every 5 s instead of 25 s: every socket must answer several during the test.
      },
      { serverOptions: { pingInterval: PING_INTERVAL_MS } },
    );
    cookies = [];
    for (let i = 0; i < SESSIONS; i++) cookies.push(await server.login(i % 2 ? 'bob' : 'alice'));
    [authClients, hammer] = await Promise.all([
      ClientProcess.start('authenticated clients'),
      ClientProcess.start('refused clients'),
    ]);
  });

  after(async () => {
    await Promise.all([authClients.stop(), hammer.stop()]);
    await server.cleanup();
  });

  test('every authenticated socket stays connected and answers its acks; every refused client is refused once and stays away', async () => {
    const heapBefore = await heapAfterGc();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();

    const opened = await authClients.call('open', {
      url: server.url,
      nsp: '/guarded',
      cookies,
      count: SOCKETS,
      concurrency: OPEN_CONCURRENCY,
    });
    assert.deepEqual(opened.failures, [], 'every authenticated socket connected');
    assert.equal(opened.opened, SOCKETS);
    assert.equal(guarded.sockets.size, SOCKETS);
    const cpuOpen = process.cpuUsage(cpuBefore);

    // The refused clients hammer while every authenticated socket is asked for acks, round after
    // round, until the hammering (and its quiet period) is over, and for two heartbeats at least.
    const hammering = hammer.call('refused', {
      url: server.url,
      nsp: '/guarded',
      count: REFUSED,
      concurrency: REFUSED_CONCURRENCY,
      reconnectEvery: RECONNECT_EVERY,
      quietMs: QUIET_MS,
    });
    const hammerState = { done: false };
    const markDone = (): void => {
      hammerState.done = true;
    };
    void hammering.then(markDone, markDone);
    const rounds: AcksResult[] = [];
    const acksFrom = performance.now();
    // At least two heartbeat intervals, so that every socket answers pings under load too.
    const busy = (): boolean =>
      !hammerState.done || performance.now() - acksFrom < 2 * PING_INTERVAL_MS;
    do {
      rounds.push(
        await authClients.call('acks', { event: ECHO, rounds: 1, timeoutMs: ACK_TIMEOUT_MS }),
      );
      await delay(ACK_PAUSE_MS);
    } while (busy() || rounds.length < 2);
    const refused = await hammering;
    // One more round once the dust has settled.
    rounds.push(
      await authClients.call('acks', { event: ECHO, rounds: 1, timeoutMs: ACK_TIMEOUT_MS }),
    );
    const cpuTotal = process.cpuUsage(cpuBefore);
    const seconds = (performance.now() - started) / 1000;
    const status = await authClients.call('status', null);

    const sum = (pick: (r: AcksResult) => number): number =>
      rounds.reduce((total, r) => total + pick(r), 0);
    const acks = {
      sent: sum((r) => r.sent),
      answered: sum((r) => r.answered),
      failed: sum((r) => r.failed),
      wrong: sum((r) => r.wrong),
      maxLatencyMs: Math.max(...rounds.map((r) => r.maxLatencyMs)),
    };
    // Memory last: forced GCs throw away warm code (see NOTES, "Measuring").
    const heapAfter = await heapAfterGc();
    const cpuMs = (usage: NodeJS.CpuUsage): number => (usage.user + usage.system) / 1000;

    console.log(
      `[load] ${SOCKETS} authenticated sockets (${SESSIONS} sessions) opened in ` +
        `${(opened.ms / 1000).toFixed(1)} s (server CPU ${(cpuMs(cpuOpen) / SOCKETS).toFixed(2)} ms ` +
        `per handshake); ${REFUSED} refused clients (${refused.reconnecting} with reconnection) ` +
        `in ${(refused.ms / 1000).toFixed(1)} s (then watched ${QUIET_MS / 1000} s), answers ${JSON.stringify(refused.codes)}, ` +
        `came back ${refused.cameBack}, reconnect attempts ${refused.reconnectAttempts}; ` +
        `acks ${acks.answered}/${acks.sent} in ${rounds.length} rounds, failed ${acks.failed}, ` +
        `max latency ${Math.round(acks.maxLatencyMs)} ms; disconnects ${serverDisconnects.length}; ` +
        `server heap ${(heapBefore / 2 ** 20).toFixed(1)} -> ${(heapAfter / 2 ** 20).toFixed(1)} MB ` +
        `(${((heapAfter - heapBefore) / 1024 / SOCKETS).toFixed(1)} KiB per socket), ` +
        `rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB; ` +
        `server CPU ${(cpuMs(cpuTotal) / 1000).toFixed(1)} s; ${seconds.toFixed(1)} s in all ` +
        `(heartbeats every ${PING_INTERVAL_MS / 1000} s)`,
    );

    // Every authenticated socket answered every ack; none was dropped.
    assert.equal(acks.failed, 0, 'no ack timed out');
    assert.equal(acks.wrong, 0, 'every ack answered its own value');
    assert.equal(acks.answered, rounds.length * SOCKETS);
    assert.equal(status.connected, SOCKETS, 'every authenticated socket is still connected');
    assert.deepEqual(status.disconnects, [], 'no client saw a disconnect');
    assert.deepEqual(serverDisconnects, [], 'the server saw no disconnect');
    assert.equal(guarded.sockets.size, SOCKETS);
    assert.equal(counts.connections, SOCKETS, 'no connection but the authenticated ones');
    // Every refused client was refused once, with ERR_UNAUTHORIZED, and none came back.
    assert.deepEqual(refused.failures, []);
    assert.deepEqual(refused.codes, { [ERR_UNAUTHORIZED]: REFUSED });
    assert.equal(refused.connected, 0);
    assert.equal(refused.cameBack, 0, 'no refused client came back');
    assert.equal(refused.stillActive, 0, 'no refused client is still trying');
    assert.equal(refused.reconnectAttempts, 0);
    assert.equal(counts.anonymousHandshakes, REFUSED, 'one handshake per refused client');
    assert.equal(counts.anonymousConnections, REFUSED, 'one connection per refused client');
    assert.equal(pendingOf(guarded), 0, 'no pending socket');

    await authClients.call('closeAll', null);
    await waitFor(() => server.io.engine.clientsCount === 0, 60_000, 'every connection closed');
    assert.equal(guarded.sockets.size, 0);
  });
});
