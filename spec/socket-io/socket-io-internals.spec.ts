// Every Socket.IO private member the package reads or patches is listed in
// lib/socket-io/socket-io-internals.ts with a probe. On the Socket.IO version of this run (SOCKET_IO=4.6,
// 4.7 or 4.8), each probe must find its member: an upgrade that renames or removes one fails here,
// with the member's name, before it fails anywhere else.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import type { Namespace, Socket as ServerSocket } from 'socket.io';
import {
  INTERNALS,
  childrenOf,
  spansNodes,
  watchHandshakes,
  pendingHandshakes,
} from '../../lib/socket-io/socket-io-internals.js';
import { connected } from '../support/bounded.js';
import { redisUnavailable, startRedis } from '../support/redis.js';
import { start } from '../support/server.js';
import { versions } from '../support/stack.js';

// Throws under CI=true when redis-server is missing; elsewhere only the Redis test is skipped.
const noRedis = redisUnavailable() ?? false;

describe(`Socket.IO ${versions.socketIo}: the private members the package uses`, () => {
  test('each one is where the package reads it', async (tc) => {
    let nsp: Namespace | undefined;
    let parent: Namespace | undefined;
    const server = await start(
      tc,
      (ctx) => {
        nsp = ctx.io.of('/probe');
        parent = ctx.io.of(/^\/parent-\w+$/);
        ctx.io.of('/parent-a');
      },
      // Socket#pid exists only with connectionStateRecovery.
      { serverOptions: { connectionStateRecovery: {} } },
    );
    assert.ok(nsp && parent);
    const joined = new Promise<ServerSocket>((resolve) => nsp?.once('connection', resolve));
    await connected(server.connect('/probe'));
    const socket = await joined;
    const parts = { io: server.io, nsp, parent, socket };
    const missing = INTERNALS.filter((internal) => !internal.present(parts)).map((i) => i.member);
    assert.deepEqual(missing, [], `Socket.IO ${versions.socketIo} lacks ${missing.join(', ')}`);
    assert.equal(childrenOf(parent)?.size, 1, 'ParentNamespace#children holds /parent-a');
  });

  test('Adapter#serverSideEmit tells an adapter that spans nodes from the in-memory one', async (tc) => {
    // The probe the package runs on every server (revalidation, broadcasts to other nodes, the
    // MemoryStore warning), read where INTERNALS lists it.
    assert.ok(
      INTERNALS.some((internal) => internal.member === 'Adapter#serverSideEmit'),
      'INTERNALS lists Adapter#serverSideEmit',
    );
    const server = await start(tc, () => undefined);
    assert.equal(spansNodes(server.io.of('/').adapter), false, 'the in-memory adapter');
  });

  test('a real Redis adapter spans nodes', { skip: noRedis }, async (tc) => {
    const redis = await startRedis();
    const pub = createClient({ url: redis.url });
    const sub = pub.duplicate();
    for (const client of [pub, sub]) {
      client.on('error', (error: unknown) => {
        console.error('socket-io-internals spec: redis client:', error);
      });
    }
    const closeRedis = async (): Promise<void> => {
      // quit, not destroy: the adapter's commands under way settle instead of rejecting.
      await Promise.allSettled([pub, sub].filter((c) => c.isOpen).map((c) => c.quit()));
      await redis.stop();
    };
    let server: Awaited<ReturnType<typeof start>>;
    try {
      await Promise.all([pub.connect(), sub.connect()]);
      server = await start(tc, () => undefined, {
        serverOptions: { adapter: createAdapter(pub, sub) },
      });
    } catch (error) {
      await closeRedis();
      throw error;
    }
    // After hooks run in the order they are added: the Socket.IO server (and its adapter's
    // subscriptions) closes first, then its Redis clients, then redis-server.
    tc.after(closeRedis);
    assert.equal(spansNodes(server.io.of('/').adapter), true, '@socket.io/redis-adapter');
  });

  test('pendingHandshakes counts a socket until Socket.IO connects it', async (tc) => {
    let release = (): void => undefined;
    let reached = (): void => undefined;
    const inMiddleware = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let nsp: Namespace | undefined;
    const server = await start(tc, (ctx) => {
      nsp = ctx.io.of('/held');
      watchHandshakes(nsp, () => undefined);
      nsp.use((_socket, next) => {
        release = next;
        reached();
      });
    });
    assert.ok(nsp);
    const client = server.connect('/held');
    await inMiddleware;
    assert.equal(pendingHandshakes(nsp), 1, 'one socket in its handshake');
    release();
    await connected(client);
    assert.equal(pendingHandshakes(nsp), 0, 'none once it has connected');
  });
});
