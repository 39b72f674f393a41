// lib/socket-io/connection-close.ts: a handshake step waiting on something lets go of a client that left.
// Driven through real namespace middleware and the real client.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Socket } from 'socket.io';
import { onConnectionClose } from '../../lib/socket-io/connection-close.js';
import { connected } from '../support/bounded.js';
import { waitFor } from '../support/client.js';
import { start } from '../support/server.js';

test('a client that leaves mid-handshake aborts every step waiting on its connection, once', async (tc) => {
  const aborted: string[] = [];
  const pending: Socket[] = [];
  let before: number | undefined;
  const t = await start(tc, ({ io }) => {
    for (const name of ['/a', '/b', '/c']) {
      io.of(name).use((socket) => {
        // What the connection had before any step watched it.
        before ??= socket.conn.listenerCount('close');
        // Never calls next: only the client leaving ends the wait.
        onConnectionClose(socket, () => {
          aborted.push(socket.nsp.name);
        });
        pending.push(socket);
      });
    }
  });
  const root = t.connect('/a', { transports: ['websocket'] });
  const manager = root.io;
  manager.socket('/b').connect();
  manager.socket('/c').connect();
  await waitFor(() => pending.length === 3, 5000, 'three pending handshakes');
  const conn = pending[0]?.conn;
  assert.ok(conn);
  assert.ok(before !== undefined);

  // However many handshakes wait on one connection, it gets one 'close' listener from them.
  assert.equal(
    new Set(pending.map((socket) => socket.conn)).size,
    1,
    'the three share one connection',
  );
  assert.equal(conn.listenerCount('close'), before + 1, 'one listener, not one per waiting step');

  // Listening after the package: once this runs, the close has called every abort it calls.
  const closed = new Promise((resolve) => conn.once('close', resolve));
  manager.engine.close();
  await closed;
  await waitFor(() => aborted.length >= 3, 5000, 'the aborts');
  // Each step's abort once: the connection closes once, and nothing else calls them.
  assert.deepEqual([...aborted].sort(), ['/a', '/b', '/c']);
});

test('a step that stopped watching is not called when the client leaves later', async (tc) => {
  const aborted: string[] = [];
  let stopped = false;
  const t = await start(tc, ({ io }) => {
    io.of('/x').use((socket, next) => {
      const stop = onConnectionClose(socket, () => {
        aborted.push('x');
      });
      // The step finishes on its own: it stops watching, then lets the socket in.
      stop();
      stopped = true;
      next();
    });
  });
  const client = t.connect('/x', { transports: ['websocket'] });
  await connected(client);
  assert.equal(stopped, true);
  const [socket] = t.io.of('/x').sockets.values();
  assert.ok(socket);
  // The close is what would call the abort: once it has been emitted, it has not.
  const closed = new Promise((resolve) => socket.conn.once('close', resolve));
  client.io.engine.close();
  await closed;
  assert.deepEqual(aborted, []);
});
