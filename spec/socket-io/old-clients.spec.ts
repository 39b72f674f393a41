// Socket.IO 2 and 3 clients, still in the field in mobile apps, on a server with `allowEIO3: true`:
// the real socket.io-client 2.5 (protocol 3) and 3.1 (protocol 4/5), with the login cookie in
// `extraHeaders`. What each sees when it is admitted, refused and ended, and that a refused one does
// not come back each time the server's `connectTimeout` drops its idle connection (short here, so
// the spec need not wait 45 s).
import assert from 'node:assert/strict';
import { after, describe, test, type TestContext as NodeTestContext } from 'node:test';
import type { Socket as ServerSocket } from 'socket.io';
import io2 from 'socket.io-client2';
import { io as io3 } from 'socket.io-client3';
import {
  disconnectOnLogout,
  refreshUser,
  requireAuth,
  sessionNamespace,
  SESSION_ENDED_EVENT,
} from '../../lib/index.js';
import { connected, within } from '../support/bounded.js';
import { type TestContext, type TestServer, start, users } from '../support/server.js';

type Version = 'v2' | 'v3';

/** What the spec uses of either client's socket. */
interface OldSocket {
  readonly connected: boolean;
  on(event: string, listener: (arg: unknown) => void): unknown;
  emit(event: string, ...args: unknown[]): unknown;
  close(): unknown;
}

/** The server's `connectTimeout` in this spec (45 s by default). */
const CONNECT_TIMEOUT_MS = 300;

const open: OldSocket[] = [];

/**
 * A client of that version for `nsp`: the cookie in `extraHeaders` (both versions take it in
 * Node), and a short, fixed reconnection delay, so that a client that returns does so at once.
 */
function connectOld(
  version: Version,
  t: TestServer,
  nsp: string,
  { cookie, name = 'client' }: { cookie?: string; name?: string } = {},
): OldSocket {
  const options = {
    forceNew: true,
    reconnectionDelay: 50,
    randomizationFactor: 0,
    query: { client: name },
    ...(cookie !== undefined && { extraHeaders: { cookie } }),
  };
  const socket: OldSocket =
    version === 'v2' ? io2(`${t.url}${nsp}`, options) : io3(`${t.url}${nsp}`, options);
  open.push(socket);
  return socket;
}

/** The first argument of the socket's next `event`, within 5 s. */
function next(socket: OldSocket, event: string): Promise<unknown> {
  return within(
    new Promise((resolve) => {
      socket.on(event, resolve);
    }),
    `the client's ${event}`,
  );
}

/** Every argument the socket receives with `event`, in order. */
function record(socket: OldSocket, event: string): unknown[] {
  const seen: unknown[] = [];
  socket.on(event, (arg) => seen.push(arg));
  return seen;
}

/** What a refused socket of that version receives: v2 an `error`, v3 a `connect_error`. */
async function refusalOf(version: Version, socket: OldSocket): Promise<unknown> {
  if (version === 'v2') return next(socket, 'error');
  const err = (await next(socket, 'connect_error')) as Error & { data?: unknown };
  return { message: err.message, data: err.data };
}

/** `whoami` over the client's own emit with an ack. */
function whoami(socket: OldSocket): Promise<unknown> {
  return within(
    new Promise((resolve) => {
      socket.emit('whoami', resolve);
    }),
    'the whoami ack',
  );
}

function setRole(username: string, role: 'admin' | 'member'): void {
  const user = users.find((u) => u.username === username);
  assert.ok(user);
  (user as { role: 'admin' | 'member' }).role = role;
}
after(() => {
  setRole('alice', 'admin');
});

/** `/chat` for any user, `/admin` for admins; `withRoot` puts the package on `/` too. */
function namespaces(withRoot: boolean) {
  return ({ io, session, passport }: TestContext): void => {
    const answer = (socket: ServerSocket): void => {
      socket.on('whoami', (cb: (user: unknown) => void) => {
        cb(socket.request.user ?? null);
      });
    };
    if (withRoot) requireAuth(sessionNamespace(io, session, { passport }));
    requireAuth(sessionNamespace(io.of('/chat'), session, { passport })).on('connection', answer);
    requireAuth(sessionNamespace(io.of('/admin'), session, { passport }), {
      authorize: (user) => user.role === 'admin',
    }).on('connection', answer);
  };
}

function startOld(tc: NodeTestContext, withRoot = false): Promise<TestServer> {
  // Before the server's cleanup (after hooks run in order): a client left open would reconnect to
  // the closed server until it is closed.
  tc.after(() => {
    for (const socket of open.splice(0)) socket.close();
  });
  return start(tc, namespaces(withRoot), {
    serverOptions: { allowEIO3: true, connectTimeout: CONNECT_TIMEOUT_MS },
    afterSession: (io) => [disconnectOnLogout(io)],
  });
}

/** How many Engine.IO connections each named client (its `client` query) has opened. */
function countHandshakes(t: TestServer): Map<string, number> {
  const counts = new Map<string, number>();
  t.io.engine.on('connection', (conn: { request: { url?: string } }) => {
    const name = new URL(conn.request.url ?? '/', 'http://x').searchParams.get('client') ?? '';
    counts.set(name, (counts.get(name) ?? 0) + 1);
  });
  return counts;
}

const alice = { id: '1', username: 'alice', role: 'admin', tenants: ['acme'] };

for (const version of ['v2', 'v3'] as const) {
  describe(`a Socket.IO ${version === 'v2' ? '2.5' : '3.1'} client`, () => {
    test('is admitted with the login cookie and sees its user', async (tc) => {
      const t = await startOld(tc);
      const cookie = await t.login('alice');
      const socket = connectOld(version, t, '/chat', { cookie });
      await next(socket, 'connect');
      assert.deepEqual(await whoami(socket), alice);
    });

    test('is refused without a login, with the payload its version receives', async (tc) => {
      const t = await startOld(tc);
      const socket = connectOld(version, t, '/chat');
      assert.deepEqual(
        await refusalOf(version, socket),
        version === 'v2'
          ? // Socket.IO sends a protocol-3 client `err.data || err.message`: no message.
            { code: 'ERR_UNAUTHORIZED', status: 401 }
          : { message: 'Unauthorized', data: { code: 'ERR_UNAUTHORIZED', status: 401 } },
      );
    });

    test('receives session:ended on logout, then is disconnected', async (tc) => {
      const t = await startOld(tc);
      const cookie = await t.login('alice');
      const socket = connectOld(version, t, '/chat', { cookie });
      await next(socket, 'connect');
      const ended = next(socket, SESSION_ENDED_EVENT);
      const disconnected = next(socket, 'disconnect');
      await t.logout(cookie);
      assert.deepEqual(await ended, {
        message: 'Session revoked',
        data: { code: 'ERR_SESSION_REVOKED', status: 401 },
      });
      assert.equal(await disconnected, 'io server disconnect');
    });

    test('receives session:ended when refreshUser finds authorize turns it down', async (tc) => {
      const t = await startOld(tc);
      const cookie = await t.login('alice');
      const socket = connectOld(version, t, '/admin', { cookie });
      await next(socket, 'connect');
      const ended = next(socket, SESSION_ENDED_EVENT);
      const disconnected = next(socket, 'disconnect');
      setRole('alice', 'member');
      try {
        await refreshUser(t.io, '1');
      } finally {
        setRole('alice', 'admin');
      }
      assert.deepEqual(await ended, {
        message: 'Forbidden',
        data: { code: 'ERR_FORBIDDEN', status: 403 },
      });
      assert.equal(await disconnected, 'io server disconnect');
    });
  });
}

describe('a refused old client does not come back', () => {
  test('v2 stops by itself; v3 stops with the README line, and comes back without it', async (tc) => {
    // The package on `/` too, so that no namespace of the refused connections joins and the
    // server's connectTimeout drops them: the moment a client that kept its socket returns.
    const t = await startOld(tc, true);
    const handshakes = countHandshakes(t);
    const v2 = connectOld('v2', t, '/chat', { name: 'v2' });
    const v2Errors = record(v2, 'error');
    const v2Gone = next(v2, 'disconnect');
    const v3 = connectOld('v3', t, '/chat', { name: 'v3-closing' });
    // The README's line for Socket.IO 3 clients.
    v3.on('connect_error', (err) => {
      if ((err as { data?: { code?: string } }).data?.code) v3.close();
    });
    const control = connectOld('v3', t, '/chat', { name: 'v3-control' });
    const controlBack = new Promise<void>((resolve) => {
      t.io.engine.on('connection', () => {
        if ((handshakes.get('v3-control') ?? 0) >= 3) resolve();
      });
    });
    // The control, with the same timings and no line, came back twice: the windows in which the
    // others would have come back have passed.
    await within(controlBack, 'the v3 control client coming back twice');
    control.close();
    assert.equal(handshakes.get('v2'), 1, 'the v2 client connected once');
    assert.equal(handshakes.get('v3-closing'), 1, 'the v3 client with the line connected once');
    // What the v2 client saw: `/`'s refusal (every socket of a protocol-3 connection receives an
    // error on `/`), its own, then the package's DISCONNECT for `/chat`.
    assert.equal(await v2Gone, 'io server disconnect');
    assert.deepEqual(v2Errors, [
      { code: 'ERR_UNAUTHORIZED', status: 401 },
      { code: 'ERR_UNAUTHORIZED', status: 401 },
    ]);
    assert.equal(v2.connected, false);
  });

  test('v2 lets go of its connection when `/` is open and joined', async (tc) => {
    // `/` admits anyone: the v2 connection joined `/`, so connectTimeout never drops it. Refused
    // on `/chat`, the client used to keep it open, idle, for ever.
    const t = await startOld(tc);
    const closed = new Promise<string>((resolve) => {
      t.io.engine.on('connection', (conn: { on(e: 'close', fn: (r: string) => void): void }) => {
        conn.on('close', resolve);
      });
    });
    const socket = connectOld('v2', t, '/chat');
    assert.deepEqual(await next(socket, 'error'), { code: 'ERR_UNAUTHORIZED', status: 401 });
    assert.equal(await within(closed, 'the v2 connection closing'), 'transport close');
    assert.equal(t.io.engine.clientsCount, 0);
  });
});

describe("the v2 client's automatic `/` join", () => {
  test('with the package on `/`, an admitted v2 client costs up to two session reads', async (tc) => {
    const t = await startOld(tc, true);
    const cookie = await t.login('alice');
    t.store.reset();
    const before = t.deserializeCount();
    const socket = connectOld('v2', t, '/chat', { cookie });
    await next(socket, 'connect');
    assert.deepEqual(await whoami(socket), alice);
    // `/` (joined by the server for every protocol-3 connection) and `/chat`: one read each,
    // unless `/chat`'s connect arrives while `/`'s read is still under way (a slow store, a busy
    // machine), when the two share it as overlapping connects do. Never more.
    const reads = t.store.gets;
    assert.ok(reads === 1 || reads === 2, `${reads} store reads for a v2 connect to /chat`);
    assert.equal(t.deserializeCount() - before, reads);
    assert.equal(t.io.of('/').sockets.size, 1, 'the server holds a `/` socket for it');
    // A v4 client asks for `/chat` only: one read.
    t.store.reset();
    await connected(t.connect('/chat', { cookie }));
    assert.equal(t.store.gets, 1);
  });
});
