// Leaks in requireAuth's authorize: see spec/support/leaks.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ERR_MIDDLEWARE_TIMEOUT } from '../../lib/index.js';
import { waitFor } from '../support/client.js';
import { pendingOf } from '../support/server.js';
import {
  clients,
  CONCURRENCY,
  cookie,
  counters,
  HANDSHAKES,
  leakCase,
  leakSuite,
  LONG_MS,
  quiet,
  QUIET_MS,
  releaseErrors,
  resourceCount,
  server,
} from '../support/leaks.js';

describe(`leaks in requireAuth's authorize: ${HANDSHAKES} hung or abandoned handshakes leave nothing behind`, () => {
  leakSuite();

  test('requireAuth: handshakes whose authorize never settles are refused after timeoutMs', async () => {
    await leakCase({
      label: 'requireAuth, authorize never settles, refused after timeoutMs',
      args: { nsps: ['/authz-hung'], mode: 'answer', cookie },
      code: ERR_MIDDLEWARE_TIMEOUT,
      reached: () => counters.authorize,
    });
  });

  test('requireAuth: clients that leave while authorize hangs leave nothing behind', async () => {
    await leakCase({
      label: 'requireAuth, clients leaving while authorize hangs',
      args: { nsps: ['/authz-leave'], mode: 'leave', cookie, stayMs: [30, 100] },
      reached: () => counters.authorize,
    });
  });

  test('requireAuth: handshakes whose authorize returns one shared promise that never settles', async () => {
    await leakCase({
      label: 'requireAuth, authorize returns one shared never-settling promise',
      args: { nsps: ['/authz-shared'], mode: 'answer', cookie },
      code: ERR_MIDDLEWARE_TIMEOUT,
      reached: () => counters.authorize,
    });
  });

  test('requireAuth: a client that leaves while authorize hangs is let go at once, not at timeoutMs', async () => {
    const nsp = server.io.of('/authz-leave');
    const reachedBefore = counters.authorize;
    // Each client leaves once its handshake has reached authorize (see `reached`).
    const result = await clients.call('handshakes', {
      url: server.url,
      nsps: ['/authz-leave'],
      mode: 'leave',
      cookie,
      stayMs: [30, 100],
      count: CONCURRENCY,
      concurrency: CONCURRENCY,
    });
    assert.deepEqual(releaseErrors, [], 'every client was told when to leave');
    assert.deepEqual(result.failures, []);
    assert.deepEqual(result.codes, {}, 'no client was answered before it left');
    assert.equal(result.connected, 0);
    assert.equal(
      counters.authorize - reachedBefore,
      CONCURRENCY,
      'every handshake reached authorize',
    );
    // A connection's close lets its pending socket go in the close event itself (Socket.IO drops
    // it a tick later): once the server has seen every connection close, none may be pending,
    // whereas a socket held until timeoutMs would still be.
    await waitFor(() => server.io.engine.clientsCount === 0, QUIET_MS, 'every connection closed');
    const pending = pendingOf(nsp);
    const timers = resourceCount('Timeout');
    console.log(
      `[leaks] requireAuth, ${CONCURRENCY} clients left while authorize hung (timeoutMs ` +
        `${LONG_MS}): ${pending} sockets and ${timers} timers still there once the server ` +
        `had seen every connection close`,
    );
    assert.equal(
      pending,
      0,
      `${pending} sockets still pending (with ${timers} timers) once their clients' ` +
        `connections had closed; requireAuth's timeoutMs is ${LONG_MS} ms`,
    );
    await quiet();
  });
});
