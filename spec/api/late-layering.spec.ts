// sessionNamespace and requireAuth called on a namespace that already has connected sockets (an
// afterInit that runs late, a namespace layered when its tenant is set up, the children a parent
// already has): the sockets from before are brought under the guard, each checked as a fresh
// connect. A refused one gets `session:ended` with the refusal's message and data, then is
// disconnected; one let in gets its session and user, and is kept true from then on (a logout
// ends it). Socket.IO itself runs middleware only at a connect: without this, they stay unguarded.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import type { Namespace, Socket as ServerSocket } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import {
  ERR_FORBIDDEN,
  ERR_SESSION_REVOKED,
  ERR_UNAUTHORIZED,
  SESSION_ENDED_EVENT,
  type SessionEndedPayload,
  disconnectOnLogout,
  requireAuth,
  sessionNamespace,
} from '../../lib/index.js';
import { connectError, connected, emitWithReply, within } from '../support/bounded.js';
import { type TestServer, start } from '../support/server.js';

/** The app's own handlers, there before the package: `whoami` answers with the socket's user. */
function chat(nsp: Namespace, seen: string[] = []): Namespace {
  return nsp.on('connection', (socket: ServerSocket) => {
    socket.on('whoami', (ack: (name: string | null) => void) => {
      const name = socket.request.user?.username ?? null;
      seen.push(`${socket.nsp.name} ${name ?? 'anonymous'}`);
      ack(name);
    });
  });
}

/** The `session:ended` the socket receives, then its disconnect. */
async function ended(client: ClientSocket): Promise<SessionEndedPayload> {
  const disconnected = new Promise((resolve) => client.once('disconnect', resolve));
  const payload = await within(
    new Promise<SessionEndedPayload>((resolve) => client.once(SESSION_ENDED_EVENT, resolve)),
    'session:ended',
  );
  await within(disconnected, 'the disconnect after session:ended');
  return payload;
}

async function connectAs(t: TestServer, nsp: string, user?: string): Promise<ClientSocket> {
  const cookie = user === undefined ? undefined : await t.login(user);
  return connected(t.connect(nsp, cookie === undefined ? {} : { cookie }));
}

describe('layering a namespace that already has connected sockets', () => {
  test('the anonymous socket from before is ended with the refusal; the logged-in one is kept true', async (tc) => {
    const seen: string[] = [];
    const t = await start(tc, ({ io }) => void chat(io.of('/chat'), seen), {
      afterSession: (io) => [disconnectOnLogout(io)],
    });
    const stranger = await connectAs(t, '/chat');
    const aliceCookie = await t.login('alice');
    const alice = await connected(t.connect('/chat', { cookie: aliceCookie }));

    requireAuth(sessionNamespace(t.io.of('/chat'), t.session, { passport: t.passport }));

    assert.deepEqual(await ended(stranger), {
      message: 'Unauthorized',
      data: { code: ERR_UNAUTHORIZED, status: 401 },
    });
    // Alice's socket was let in: it has her session and user, and her logout ends it.
    assert.deepEqual(await emitWithReply(alice, 'whoami'), ['alice']);
    const aliceEnded = ended(alice);
    await t.logout(aliceCookie);
    assert.equal((await aliceEnded).data.code, ERR_SESSION_REVOKED);
    assert.deepEqual(seen, ['/chat alice']);
  });

  test("events sent while a socket from before is checked wait for the check's answer", async (tc) => {
    const seen: string[] = [];
    const t = await start(tc, ({ io }) => void chat(io.of('/chat'), seen));
    const alice = await connectAs(t, '/chat', 'alice');
    // The store's answer is held: the check is under way until the spec lets it go.
    const held: (() => void)[] = [];
    const get = t.store.get.bind(t.store);
    t.store.get = (sid, cb) => {
      held.push(() => {
        get(sid, cb);
      });
    };
    const [serverSocket] = [...t.io.of('/chat').sockets.values()];
    assert.ok(serverSocket);
    requireAuth(sessionNamespace(t.io.of('/chat'), t.session, { passport: t.passport }));

    const arrived = once(serverSocket.conn, 'packet');
    const reply = emitWithReply(alice, 'whoami');
    await within(arrived, 'the event at the server');
    assert.equal(held.length, 1, 'the check reads the session once');
    // A macrotask later (Socket.IO calls handlers a tick after the event's middleware) the handler
    // has still not run: the event waits for the check.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, []);
    t.store.get = get;
    for (const release of held) release();
    assert.deepEqual(await reply, ['alice']);
    assert.deepEqual(seen, ['/chat alice']);
  });

  test('the children a parent namespace already has: each socket checked by authorize too', async (tc) => {
    let tenants: Namespace | undefined;
    const t = await start(tc, ({ io }) => {
      tenants = chat(io.of(/^\/tenant-\w+$/));
    });
    const alice = await connectAs(t, '/tenant-acme', 'alice');
    const bob = await connectAs(t, '/tenant-acme', 'bob');
    const stranger = await connectAs(t, '/tenant-acme');

    assert.ok(tenants);
    requireAuth(sessionNamespace(tenants, t.session, { passport: t.passport }), {
      authorize: (user, socket) => user.tenants.includes(socket.nsp.name.slice('/tenant-'.length)),
    });

    const [bobEnded, strangerEnded] = await Promise.all([ended(bob), ended(stranger)]);
    assert.deepEqual(bobEnded, {
      message: 'Forbidden',
      data: { code: ERR_FORBIDDEN, status: 403 },
    });
    assert.equal(strangerEnded.data.code, ERR_UNAUTHORIZED);
    assert.deepEqual(await emitWithReply(alice, 'whoami'), ['alice']);
  });

  test('requireAuth alone, layered later on a session namespace: its guard checks the sockets from before', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      chat(sessionNamespace(io.of('/chat'), session, { passport }));
    });
    const alice = await connectAs(t, '/chat', 'alice');
    const stranger = await connectAs(t, '/chat');

    requireAuth(t.io.of('/chat'), { authorize: (user) => user.role === 'admin' });

    assert.equal((await ended(stranger)).data.code, ERR_UNAUTHORIZED);
    assert.deepEqual(await emitWithReply(alice, 'whoami'), ['alice']);
    // Bob connects after: the guard is on the namespace for new connects as before.
    const bobCookie = await t.login('bob');
    const bob = t.connect('/chat', { cookie: bobCookie });
    assert.equal((await connectError(bob)).data?.code, ERR_FORBIDDEN);
  });
});
