// What socket.io-client v4 (the repository's) does with a rateLimit refusal: the socket is left
// inactive and does not reconnect on its own, on the main namespace as on another; and the few
// lines docs/limits.md gives a client to wait retryAfterMs and try again, taken from the page and
// run against a real server.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { ERR_RATE_LIMITED, rateLimit, requireAuth, sessionNamespace } from '../../lib/index.js';
import { connected, connectError, within } from '../support/bounded.js';
import { codeBlocks, readmeSection } from '../support/readme.js';
import { start } from '../support/server.js';

describe('rateLimit: the client side of a 429', () => {
  for (const nsp of ['/', '/chat']) {
    test(`a refused ${nsp} socket stays down: no reconnect of its own`, async (tc) => {
      const t = await start(tc, ({ io, session, passport }) => {
        requireAuth(sessionNamespace(io.of(nsp), session, { passport }));
        rateLimit(io, { connections: { perUser: 1 } });
      });
      const cookie = await t.login('alice');
      await connected(t.connect(nsp, { cookie }));
      let engines = 0;
      t.io.engine.on('connection', () => engines++);
      // Reconnection on, quick: were it to retry, it would within 100 ms.
      const refused = t.connect(nsp, {
        cookie,
        reconnection: true,
        reconnectionDelay: 100,
        reconnectionDelayMax: 100,
        randomizationFactor: 0,
      });
      const err = await connectError(refused);
      assert.equal(err.data?.code, ERR_RATE_LIMITED);
      assert.equal(refused.active, false);
      // Only a window can show that nothing comes: five reconnection delays.
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(engines, 1, 'one connection: no reconnect');
      assert.equal(refused.connected, false);
    });
  }

  test("docs/limits.md's snippet waits retryAfterMs and gets in once there is room", async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      requireAuth(sessionNamespace(io.of('/chat'), session, { passport }));
      rateLimit(io, { connections: { perUser: 1, retryAfterMs: 200 } });
    });
    const cookie = await t.login('alice');
    const first = t.connect('/chat', { cookie });
    await connected(first);
    const [block] = codeBlocks(
      readmeSection('## What the client does with a 429', 'docs/limits.md'),
    );
    assert.equal(block?.lang, 'js');
    let made: ClientSocket | undefined;
    const io = (nsp: string): ClientSocket => {
      made = ioClient(`${t.url}${nsp}`, { forceNew: true, extraHeaders: { cookie } });
      tc.after(() => made?.disconnect());
      return made;
    };
    const socket = runInNewContext(`${block.code}\nsocket`, { io, setTimeout }) as ClientSocket;
    assert.equal(socket, made);
    const refusal = await connectError(socket);
    assert.equal(refusal.data?.code, ERR_RATE_LIMITED);
    // Room made: the snippet's own retry gets in, with no help from the test.
    first.disconnect();
    await within(
      new Promise<void>((resolve) =>
        socket.once('connect', () => {
          resolve();
        }),
      ),
      'the snippet connects again after retryAfterMs',
    );
  });
});
