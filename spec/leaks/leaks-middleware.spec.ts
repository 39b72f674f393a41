// Leaks in wrapExpressMiddleware, and on one connection with / connected: see spec/support/leaks.ts.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { ERR_MIDDLEWARE_TIMEOUT } from '../../lib/index.js';
import { waitFor } from '../support/client.js';
import {
  clients,
  connectionsTotal,
  counters,
  HANDSHAKES,
  HEAP_BOUND_MB,
  leakCase,
  leakSuite,
  mb,
  pendingTotal,
  QUIET_MS,
  resourceCount,
  server,
  snapshot,
  type Emitter,
} from '../support/leaks.js';

describe(`leaks in wrapExpressMiddleware and one multiplexed connection: ${HANDSHAKES} hung or abandoned handshakes leave nothing behind`, () => {
  leakSuite();

  test('wrapExpressMiddleware: handshakes against middleware that never calls next are refused after timeoutMs', async () => {
    await leakCase({
      label: 'wrapExpressMiddleware, hung middleware, refused after timeoutMs',
      args: { nsps: ['/hung'], mode: 'answer' },
      code: ERR_MIDDLEWARE_TIMEOUT,
      reached: () => counters.hung,
    });
  });

  test('wrapExpressMiddleware: clients that leave mid-handshake are let go at once, and never connect', async () => {
    // Half hang for ever, half call next() once their client has gone.
    await leakCase({
      label: 'wrapExpressMiddleware, clients leaving mid-handshake',
      args: { nsps: ['/hung-long', '/late'], mode: 'leave', stayMs: [10, 60] },
      reached: () => counters.hung + counters.late,
      settled: () => counters.lateNexts === counters.late,
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
});
