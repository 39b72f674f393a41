import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { requireAuth, sessionNamespace } from '../lib/index.js';
import { connected, connectError } from './support/client.js';
import { createTestServer } from './support/server.js';

test('smoke', async () => {
  const t = await createTestServer(({ io, session, passport }) => {
    requireAuth(sessionNamespace(io.of('/admin'), session, { passport }), {
      authorize: (user) => user.role === 'admin',
    });
    io.of('/admin').on('connection', (socket) => {
      socket.emit('hello', socket.request.user?.username);
    });
  });
  after(() => t.cleanup());
  const anon = await connectError(t.connect('/admin'));
  assert.equal(anon.data?.code, 'ERR_UNAUTHORIZED');
  const bob = await connectError(t.connect('/admin', { cookie: await t.login('bob') }));
  assert.deepEqual(bob.data, { code: 'ERR_FORBIDDEN', status: 403 });
  const s = t.connect('/admin', { cookie: await t.login('alice') });
  const hello = new Promise((r) => s.once('hello', r));
  await connected(s);
  assert.equal(await hello, 'alice');
  console.log('store gets', t.store.gets, 'deser', t.deserializeCount());
});
