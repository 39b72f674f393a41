import assert from 'node:assert/strict';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import session, { MemoryStore, type SessionData, type Store } from 'express-session';
import type { Namespace, Socket as ServerSocket } from 'socket.io';
import { Manager, type Socket as ClientSocket } from 'socket.io-client';
import {
  ERR_MIDDLEWARE_ERROR,
  ERR_SESSION_UNAVAILABLE,
  ERR_UNAUTHORIZED,
  requireAuth,
  sessionNamespace,
} from '../../lib/index.js';
import { request, waitFor } from '../support/client.js';
import {
  cookieOf,
  type ExpressFlavour,
  type TestServer,
  start,
  CountingStore,
  signedSidOf as sidOf,
} from '../support/server.js';
import { connected, connectError } from '../support/bounded.js';
import { reporting as answerWhoami, whoami } from '../support/whoami.js';
import { throwsNaming } from '../support/assertions.js';
import { Server, Passport } from '../support/stack.js';
import { cookieExpiringIn } from '../support/counting-store.js';
import { destroyElsewhere } from '../support/session-ending.js';

// ---------------------------------------------------------------------------------------------
// Helpers (local to this spec)
// ---------------------------------------------------------------------------------------------

/** What the server-side connection handler reports back about `socket.request`. */
interface Info {
  nsp: string;
  conn: string;
  hasSession: boolean;
  sessionID: string | null;
  user: string | null;
  authenticated: boolean | null;
  passportUser: string | null;
}

interface SeenRequest {
  session?: { passport?: { user?: string } };
  sessionID?: unknown;
  user?: Express.User;
  isAuthenticated?: () => boolean;
}

// A number per engine.io connection, to tell whether two sockets share one connection.
const connectionIds = new WeakMap<object, string>();
function connectionOf(socket: ServerSocket): string {
  let id = connectionIds.get(socket.conn);
  if (id === undefined) {
    id = `conn-${++connectionCount}`;
    connectionIds.set(socket.conn, id);
  }
  return id;
}
let connectionCount = 0;

function infoOf(socket: ServerSocket): Info {
  const req = socket.request as unknown as SeenRequest;
  return {
    nsp: socket.nsp.name,
    conn: connectionOf(socket),
    hasSession: req.session !== undefined,
    sessionID: typeof req.sessionID === 'string' ? req.sessionID : null,
    user: req.user?.username ?? null,
    authenticated: typeof req.isAuthenticated === 'function' ? req.isAuthenticated() : null,
    passportUser: req.session?.passport?.user ?? null,
  };
}

/** The shared `whoami` handler, answering with what the socket's request holds ({@link Info}). */
function reporting(nsp: Namespace): Namespace {
  return answerWhoami(nsp, { more: infoOf });
}

/** One client connection (one Manager) on which several namespaces are opened. */
function openManager(
  tc: NodeTestContext,
  t: TestServer,
  cookie: string | undefined,
  transports?: ('polling' | 'websocket')[],
): (nsp: string) => ClientSocket {
  const manager = new Manager(t.url, {
    reconnection: false,
    ...(cookie !== undefined && { extraHeaders: { cookie } }),
    ...(transports !== undefined && { transports }),
  });
  const sockets: ClientSocket[] = [];
  tc.after(() => {
    for (const socket of sockets) socket.disconnect();
  });
  return (nsp) => {
    const socket = manager.socket(nsp);
    sockets.push(socket);
    return socket;
  };
}

type StoredSession = SessionData & { passport?: { user?: string } };

function storeGet(store: Store, sid: string): Promise<StoredSession | null | undefined> {
  return new Promise((resolve, reject) => {
    store.get(sid, (err: unknown, sess) => {
      if (err) reject(new Error('store error', { cause: err }));
      else resolve(sess);
    });
  });
}

function storeSet(store: Store, sid: string, sess: SessionData): Promise<void> {
  return new Promise((resolve, reject) => {
    store.set(sid, sess, (err: unknown) => {
      if (err) reject(new Error('store error', { cause: err }));
      else resolve();
    });
  });
}

/** The cookie's session destroyed where the package cannot see it (another process, a script). */
function endedElsewhere(t: TestServer, cookie: string): Promise<void> {
  return new Promise((resolve, reject) => {
    destroyElsewhere(t.store, sidOf(cookie), (err?: unknown) => {
      if (err) reject(new Error('store error', { cause: err }));
      else resolve();
    });
  });
}

function storeDestroy(store: Store, sid: string): Promise<void> {
  return new Promise((resolve, reject) => {
    store.destroy(sid, (err: unknown) => {
      if (err) reject(new Error('store error', { cause: err }));
      else resolve();
    });
  });
}

/** A real express-session MemoryStore whose get() fails or hangs on demand. */
class FlakyStore extends MemoryStore {
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  readonly failure = new Error('ECONNREFUSED 10.1.2.3:6379 (session db password=hunter2)');
  override get(sid: string, cb: (err: unknown, session?: SessionData | null) => void): void {
    if (this.mode === 'fail') {
      setImmediate(() => {
        cb(this.failure);
      });
      return;
    }
    if (this.mode === 'hang') return;
    super.get(sid, cb);
  }
}

interface Reported {
  error: unknown;
  nsp: string;
}

// ---------------------------------------------------------------------------------------------
// Targets and return value
// ---------------------------------------------------------------------------------------------

describe('sessionNamespace: targets', () => {
  test('returns the namespace it set up, for chaining (Server → "/", Namespace → itself)', async (tc) => {
    const returned: { io: Server; fromServer: Namespace; fromChat: Namespace } = {} as never;
    const t = await start(tc, ({ io, session, passport }) => {
      returned.io = io;
      returned.fromServer = sessionNamespace(io, session, { passport });
      returned.fromChat = sessionNamespace(io.of('/chat'), session, { passport });
    });
    assert.equal(returned.fromServer, t.io.of('/'));
    assert.equal(returned.fromServer, t.io.sockets);
    assert.equal(returned.fromChat, t.io.of('/chat'));
  });

  test('a Server target makes its default namespace "/" session-aware', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io, session, { passport }));
      reporting(io.of('/plain'));
    });
    const cookie = await t.login('alice');
    const root = await whoami<Info>(t.connect('/', { cookie }));
    assert.equal(root.nsp, '/');
    assert.equal(root.user, 'alice');
    assert.equal(root.authenticated, true);
    // Other namespaces are not touched by it.
    const plain = await whoami<Info>(t.connect('/plain', { cookie }));
    assert.equal(plain.hasSession, false);
    assert.equal(plain.user, null);
  });

  test('a custom namespace ("/chat") is session-aware; "/" is left alone', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io.of('/chat'), session, { passport }));
      reporting(io.of('/'));
    });
    const cookie = await t.login('bob');
    const chat = await whoami<Info>(t.connect('/chat', { cookie }));
    assert.equal(chat.user, 'bob');
    assert.equal(chat.authenticated, true);
    const root = await whoami<Info>(t.connect('/', { cookie }));
    assert.equal(root.hasSession, false);
    assert.equal(root.user, null);
  });

  test('a regex parent namespace: every child (/tenant-acme, /tenant-globex) sees the user', async (tc) => {
    let parent: Namespace | undefined;
    let returned: Namespace | undefined;
    const t = await start(tc, ({ io, session, passport }) => {
      parent = io.of(/^\/tenant-\w+$/);
      returned = reporting(sessionNamespace(parent, session, { passport }));
    });
    assert.ok(parent);
    assert.equal(returned, parent);
    const cookie = await t.login('alice');
    const acme = await whoami<Info>(t.connect('/tenant-acme', { cookie }));
    const globex = await whoami<Info>(t.connect('/tenant-globex', { cookie }));
    assert.deepEqual(
      [acme.nsp, acme.user, acme.authenticated, acme.sessionID],
      ['/tenant-acme', 'alice', true, sidOf(cookie)],
    );
    assert.deepEqual(
      [globex.nsp, globex.user, globex.authenticated, globex.sessionID],
      ['/tenant-globex', 'alice', true, sidOf(cookie)],
    );
    const anon = await whoami<Info>(t.connect('/tenant-acme'));
    assert.equal(anon.user, null);
    assert.equal(anon.authenticated, false);
  });

  test('a function parent namespace: every child it accepts sees the user', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      const parent = io.of((name, _auth, next) => {
        next(null, name.startsWith('/tenant-'));
      });
      reporting(sessionNamespace(parent, session, { passport }));
    });
    const cookie = await t.login('bob');
    const acme = await whoami<Info>(t.connect('/tenant-acme', { cookie }));
    const globex = await whoami<Info>(t.connect('/tenant-globex', { cookie }));
    assert.deepEqual([acme.nsp, acme.user], ['/tenant-acme', 'bob']);
    assert.deepEqual([globex.nsp, globex.user], ['/tenant-globex', 'bob']);
    assert.equal(acme.authenticated, true);
    assert.equal(globex.authenticated, true);
    const refused = await connectError(t.connect('/elsewhere', { cookie }));
    assert.equal(refused.message, 'Invalid namespace');
  });
});

// ---------------------------------------------------------------------------------------------
// What each socket sees
// ---------------------------------------------------------------------------------------------

describe('sessionNamespace: socket.request', () => {
  test('logged in: the session the HTTP login created, its ID, the user, isAuthenticated()', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io.of('/ns'), session, { passport }));
    });
    const cookie = await t.login('alice');
    const sid = sidOf(cookie);
    const stored = await storeGet(t.store, sid);
    assert.equal(stored?.passport?.user, '1', 'the HTTP login stored alice in this session');
    const info = await whoami<Info>(t.connect('/ns', { cookie }));
    assert.deepEqual(info, {
      nsp: '/ns',
      conn: info.conn,
      hasSession: true,
      sessionID: sid,
      user: 'alice',
      authenticated: true,
      passportUser: '1',
    });
  });

  test('anonymous: a fresh session, no user, isAuthenticated() false', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io.of('/ns'), session, { passport }));
    });
    const cookie = await t.login('alice');
    const info = await whoami<Info>(t.connect('/ns'));
    assert.equal(info.hasSession, true);
    assert.equal(typeof info.sessionID, 'string');
    assert.notEqual(info.sessionID, sidOf(cookie));
    assert.equal(info.user, null);
    assert.equal(info.authenticated, false);
    assert.equal(info.passportUser, null);
  });

  test('without passport: the session (with its passport data) but no user', async (tc) => {
    const t = await start(tc, ({ io, session }) => {
      reporting(sessionNamespace(io.of('/ns'), session));
    });
    const cookie = await t.login('bob');
    const info = await whoami<Info>(t.connect('/ns', { cookie }));
    assert.equal(info.hasSession, true);
    assert.equal(info.sessionID, sidOf(cookie));
    assert.equal(info.passportUser, '2');
    assert.equal(info.user, null);
  });

  test('socket.request.session is a working Session: reload() and save() reach the store', async (tc) => {
    interface CountingSession {
      count?: number;
      reload(cb: (err?: unknown) => void): void;
      save(cb: (err?: unknown) => void): void;
    }
    const t = await start(tc, ({ io, session, passport }) => {
      sessionNamespace(io.of('/ns'), session, { passport }).on('connection', (socket) => {
        socket.on('bump', (cb: (count: number | string) => void) => {
          const current = (): CountingSession => socket.request.session;
          current().reload((err) => {
            if (err) {
              cb('reload failed');
              return;
            }
            const sess = current();
            sess.count = (sess.count ?? 0) + 1;
            const count = sess.count;
            sess.save((saveErr) => {
              cb(saveErr ? 'save failed' : count);
            });
          });
        });
      });
    });
    const cookie = await t.login('alice');
    const first = t.connect('/ns', { cookie });
    await connected(first);
    assert.equal(await request(first, 'bump'), 1);
    assert.equal(await request(first, 'bump'), 2);
    const second = t.connect('/ns', { cookie });
    await connected(second);
    assert.equal(await request(second, 'bump'), 3);
    const stored = (await storeGet(t.store, sidOf(cookie))) as
      { count?: number } | null | undefined;
    assert.equal(stored?.count, 3);
  });

  test('two users on two connections each see their own session', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io.of('/ns'), session, { passport }));
    });
    const [aliceCookie, bobCookie] = await Promise.all([t.login('alice'), t.login('bob')]);
    const [a, b] = await Promise.all([
      whoami<Info>(t.connect('/ns', { cookie: aliceCookie })),
      whoami<Info>(t.connect('/ns', { cookie: bobCookie })),
    ]);
    assert.deepEqual([a.user, a.sessionID], ['alice', sidOf(aliceCookie)]);
    assert.deepEqual([b.user, b.sessionID], ['bob', sidOf(bobCookie)]);
  });
});

// ---------------------------------------------------------------------------------------------
// Read at every namespace connect
// ---------------------------------------------------------------------------------------------

describe('sessionNamespace: the session is read at each namespace connect', () => {
  for (const transports of [undefined, ['websocket'] as ('polling' | 'websocket')[]]) {
    const label = transports ? 'websocket-only' : 'polling then websocket';
    // The session ends where the package cannot see it (a logout it sees ends "/" too).
    test(`session ended elsewhere between two namespace connects on one connection (${label})`, async (tc) => {
      const t = await start(tc, ({ io, session, passport }) => {
        reporting(sessionNamespace(io, session, { passport }));
        reporting(sessionNamespace(io.of('/b'), session, { passport }));
        reporting(requireAuth(sessionNamespace(io.of('/c'), session, { passport })));
      });
      const cookie = await t.login('alice');
      const socketOf = openManager(tc, t, cookie, transports);
      const root = socketOf('/');
      const first = await whoami<Info>(root);
      assert.equal(first.user, 'alice');
      assert.equal(first.authenticated, true);

      await endedElsewhere(t, cookie);

      const b = socketOf('/b');
      const later = await whoami<Info>(b);
      assert.equal(later.conn, first.conn, 'the same connection');
      assert.equal(later.user, null);
      assert.equal(later.authenticated, false);
      assert.notEqual(later.sessionID, first.sessionID, 'the logged-out session is gone');

      const refused = await connectError(socketOf('/c'));
      assert.equal(refused.message, 'Unauthorized');
      assert.deepEqual(refused.data, { code: ERR_UNAUTHORIZED, status: 401 });
      assert.equal(root.connected, true, '"/" is still connected on the same connection');

      // "/" keeps what it read when it connected: "/b" did not overwrite it.
      const again = await request<Info>(root, 'whoami');
      assert.equal(again.conn, first.conn);
      assert.equal(again.user, 'alice');
    });
  }

  test('engine-level session + Passport (the official recipe) do not stand in for the read', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      io.engine.use(session as never);
      io.engine.use(passport.session() as never);
      reporting(sessionNamespace(io, session, { passport }));
      reporting(sessionNamespace(io.of('/b'), session, { passport }));
      reporting(requireAuth(sessionNamespace(io.of('/c'), session, { passport })));
    });
    const cookie = await t.login('alice');
    const socketOf = openManager(tc, t, cookie);
    const first = await whoami<Info>(socketOf('/'));
    assert.equal(first.user, 'alice');
    await endedElsewhere(t, cookie);
    const later = await whoami<Info>(socketOf('/b'));
    assert.equal(later.conn, first.conn);
    assert.equal(later.user, null);
    assert.equal(later.authenticated, false);
    const refused = await connectError(socketOf('/c'));
    assert.deepEqual(refused.data, { code: ERR_UNAUTHORIZED, status: 401 });
  });

  test('a user set by engine-level middleware does not stand in for the session user', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      io.engine.use((req: { user?: Express.User }, _res: unknown, next: () => void) => {
        req.user = { id: '9', username: 'mallory', role: 'admin', tenants: [] };
        next();
      });
      reporting(sessionNamespace(io.of('/ns'), session, { passport }));
    });
    const anon = await whoami<Info>(t.connect('/ns'));
    assert.equal(anon.user, null);
    assert.equal(anon.authenticated, false);
    const bob = await whoami<Info>(t.connect('/ns', { cookie: await t.login('bob') }));
    assert.equal(bob.user, 'bob');
  });

  test('without a logout, a later namespace on the same connection sees the same user', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io, session, { passport }));
      reporting(sessionNamespace(io.of('/b'), session, { passport }));
    });
    const cookie = await t.login('bob');
    const socketOf = openManager(tc, t, cookie);
    const first = await whoami<Info>(socketOf('/'));
    const later = await whoami<Info>(socketOf('/b'));
    assert.equal(later.conn, first.conn);
    assert.deepEqual([first.user, later.user], ['bob', 'bob']);
    assert.equal(later.sessionID, sidOf(cookie));
  });
});

// ---------------------------------------------------------------------------------------------
// Sessions that are gone
// ---------------------------------------------------------------------------------------------

describe('sessionNamespace: a session that is gone is "no user", not an error', () => {
  test('destroyed in the store', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io.of('/ns'), session, { passport }));
    });
    const cookie = await t.login('alice');
    await storeDestroy(t.store, sidOf(cookie));
    const info = await whoami<Info>(t.connect('/ns', { cookie }));
    assert.equal(info.hasSession, true);
    assert.notEqual(info.sessionID, sidOf(cookie));
    assert.equal(info.user, null);
    assert.equal(info.authenticated, false);
  });

  test('regenerated by a Passport login (the old cookie no longer has a user)', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io.of('/ns'), session, { passport }));
    });
    const oldCookie = await t.login('alice');
    // Log in again (as bob) from the same browser: Passport regenerates the session.
    const res = await fetch(`${t.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: oldCookie },
      body: new URLSearchParams({ username: 'bob', password: 'bob-pw' }),
    });
    assert.equal(res.status, 200);
    const newCookie = cookieOf(res);
    await res.arrayBuffer();
    assert.notEqual(sidOf(newCookie), sidOf(oldCookie));

    const old = await whoami<Info>(t.connect('/ns', { cookie: oldCookie }));
    assert.equal(old.user, null);
    assert.equal(old.authenticated, false);
    const fresh = await whoami<Info>(t.connect('/ns', { cookie: newCookie }));
    assert.equal(fresh.user, 'bob');
  });

  test('regenerated by a Passport logout', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io.of('/ns'), session, { passport }));
    });
    const cookie = await t.login('alice');
    await t.logout(cookie);
    const info = await whoami<Info>(t.connect('/ns', { cookie }));
    assert.equal(info.hasSession, true);
    assert.equal(info.user, null);
    assert.equal(info.authenticated, false);
  });

  test('expired (cookie maxAge 60 s, expiry passed): connects with no user; requireAuth refuses 401, not 500', async (tc) => {
    const t = await start(
      tc,
      ({ io, session, passport }) => {
        reporting(sessionNamespace(io.of('/ns'), session, { passport }));
        requireAuth(sessionNamespace(io.of('/guarded'), session, { passport }));
      },
      { sessionOptions: { cookie: { maxAge: 60_000 } } },
    );
    const cookie = await t.login('alice');
    const stored = await storeGet(t.store, sidOf(cookie));
    assert.equal(stored?.passport?.user, '1', 'logged in before it expires');
    // The cookie's expiry passes: written in the past into the store (which then drops the
    // session: MemoryStore when it is next read, memorystore and connect-redis by their TTL),
    // rather than waited for after a login that had to beat a 200 ms maxAge.
    await storeSet(t.store, sidOf(cookie), {
      ...stored,
      cookie: cookieExpiringIn(stored.cookie, -1000),
    });
    const info = await whoami<Info>(t.connect('/ns', { cookie }));
    assert.equal(info.hasSession, true);
    assert.notEqual(info.sessionID, sidOf(cookie));
    assert.equal(info.user, null);
    assert.equal(info.authenticated, false);
    const refused = await connectError(t.connect('/guarded', { cookie }));
    assert.deepEqual(refused.data, { code: ERR_UNAUTHORIZED, status: 401 });
  });

  test('deserializeUser calls back false (user deleted): no user, no error', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io.of('/ns'), session, { passport }));
      requireAuth(sessionNamespace(io.of('/guarded'), session, { passport }));
    });
    const cookie = await t.login('alice');
    const sid = sidOf(cookie);
    // The session now points at a user that no longer exists (deserializeUser calls back false).
    const stored = await storeGet(t.store, sid);
    assert.ok(stored?.passport);
    stored.passport.user = '999';
    await storeSet(t.store, sid, stored);

    const deserializedBefore = t.deserializeCount();
    const info = await whoami<Info>(t.connect('/ns', { cookie }));
    assert.equal(t.deserializeCount(), deserializedBefore + 1, 'deserializeUser ran');
    assert.equal(info.hasSession, true);
    assert.equal(info.sessionID, sid);
    assert.equal(info.user, null);
    assert.equal(info.authenticated, false);
    assert.equal(info.passportUser, null, 'Passport strips the deleted user from the session');
    const refused = await connectError(t.connect('/guarded', { cookie }));
    assert.deepEqual(refused.data, { code: ERR_UNAUTHORIZED, status: 401 });
  });
});

// ---------------------------------------------------------------------------------------------
// Cost
// ---------------------------------------------------------------------------------------------

describe('sessionNamespace: cost per namespace connect', () => {
  test('one store read, one deserializeUser, no store writes for a logged-in client', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io.of('/ns'), session, { passport }));
    });
    const cookie = await t.login('alice');
    t.store.reset();
    const deserialized = t.deserializeCount();
    const socket = t.connect('/ns', { cookie });
    // The whoami round trip comes after the handshake and the connection, and whatever store
    // access they started.
    const info = await whoami<Info>(socket);
    assert.equal(info.user, 'alice');
    socket.disconnect();
    // Polled after the server's 'disconnect' handlers, the package's among them, have run.
    await waitFor(
      () => t.io.of('/ns').sockets.size === 0,
      5000,
      'the server to see the disconnect',
    );
    assert.deepEqual(
      {
        gets: t.store.gets,
        deserializes: t.deserializeCount() - deserialized,
        sets: t.store.sets,
        touches: t.store.touches,
        destroys: t.store.destroys,
      },
      { gets: 1, deserializes: 1, sets: 0, touches: 0, destroys: 0 },
    );
  });

  // Connects of one connection that overlap share one read of the session and one of the user;
  // each socket still gets its own session object.
  test('three namespaces on one connection at once: one read, one deserializeUser, no writes', async (tc) => {
    const sessions = new Map<string, object>();
    // The store answers the first read once all three connects have arrived, so that they overlap
    // whatever the machine's load.
    let arrivals = 0;
    let allArrived = (): void => undefined;
    const arrived = new Promise<void>((resolve) => {
      allArrived = resolve;
    });
    const store = new (class HeldStore extends CountingStore {
      held = false;
      override get(sid: string, cb: (err: unknown, session?: SessionData | null) => void): void {
        if (!this.held) {
          super.get(sid, cb);
          return;
        }
        void arrived.then(() => {
          super.get(sid, cb);
        });
      }
    })();
    const t = await start(
      tc,
      ({ io, session, passport }) => {
        for (const name of ['/a', '/b', '/c', '/d']) {
          io.of(name).use((_socket, next) => {
            if (++arrivals === 3) allArrived();
            next();
          });
          reporting(sessionNamespace(io.of(name), session, { passport })).on('connection', (s) => {
            sessions.set(name, s.request.session);
          });
        }
      },
      { sessionOptions: { store } },
    );
    const cookie = await t.login('bob');
    store.reset();
    store.held = true;
    const deserialized = t.deserializeCount();
    const socketOf = openManager(tc, t, cookie);
    const infos = await Promise.all(['/a', '/b', '/c'].map((name) => whoami<Info>(socketOf(name))));
    assert.deepEqual(
      infos.map((i) => [i.user, i.sessionID]),
      [
        ['bob', sidOf(cookie)],
        ['bob', sidOf(cookie)],
        ['bob', sidOf(cookie)],
      ],
    );
    assert.equal(new Set(infos.map((i) => i.conn)).size, 1, 'one connection');
    assert.equal(new Set(sessions.values()).size, 3, 'three session objects');
    // Each whoami answer came after its handshake and what it started.
    assert.deepEqual(
      {
        gets: store.gets,
        deserializes: t.deserializeCount() - deserialized,
        sets: store.sets,
        touches: store.touches,
      },
      { gets: 1, deserializes: 1, sets: 0, touches: 0 },
    );
    // A connect that comes once the others are done reads afresh.
    store.reset();
    assert.equal((await whoami<Info>(socketOf('/d'))).user, 'bob');
    assert.deepEqual([store.gets, t.deserializeCount() - deserialized], [1, 2]);
  });

  test('an anonymous client (no cookie) costs no store access at all', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io.of('/ns'), session, { passport }));
    });
    t.store.reset();
    const deserialized = t.deserializeCount();
    const info = await whoami<Info>(t.connect('/ns'));
    assert.equal(info.user, null);
    assert.deepEqual(
      [t.store.gets, t.store.sets, t.store.touches, t.deserializeCount() - deserialized],
      [0, 0, 0, 0],
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Transports × Express versions
// ---------------------------------------------------------------------------------------------

describe('sessionNamespace: transports and Express versions', () => {
  const transportsMatrix: { label: string; transports: ('polling' | 'websocket')[] }[] = [
    { label: 'polling only', transports: ['polling'] },
    { label: 'websocket only', transports: ['websocket'] },
    { label: 'polling then websocket', transports: ['polling', 'websocket'] },
  ];
  const flavours: ExpressFlavour[] = ['express4', 'express5'];
  for (const express of flavours) {
    for (const { label, transports } of transportsMatrix) {
      test(`${express}, ${label}: logged-in user, anonymous, and requireAuth`, async (tc) => {
        const t = await start(
          tc,
          ({ io, session, passport }) => {
            reporting(sessionNamespace(io.of('/ns'), session, { passport }));
            reporting(requireAuth(sessionNamespace(io.of('/guarded'), session, { passport })));
          },
          { express },
        );
        const cookie = await t.login('alice');
        const info = await whoami<Info>(t.connect('/ns', { cookie, transports }));
        assert.equal(info.user, 'alice');
        assert.equal(info.authenticated, true);
        assert.equal(info.sessionID, sidOf(cookie));
        const guarded = await whoami<Info>(t.connect('/guarded', { cookie, transports }));
        assert.equal(guarded.user, 'alice');
        const anon = await whoami<Info>(t.connect('/ns', { transports }));
        assert.equal(anon.user, null);
        assert.equal(anon.authenticated, false);
        const refused = await connectError(t.connect('/guarded', { transports }));
        assert.deepEqual(refused.data, { code: ERR_UNAUTHORIZED, status: 401 });
      });
    }
  }

  for (const express of flavours) {
    test(`${express}: options.app's settings apply to socket.request ('trust proxy' → req.ip)`, async (tc) => {
      const t = await start(
        tc,
        ({ io, app, session, passport }) => {
          for (const nsp of [
            sessionNamespace(io.of('/with-app'), session, { passport, app }),
            sessionNamespace(io.of('/default-app'), session, { passport }),
          ]) {
            reporting(nsp).on('connection', (socket) => {
              socket.on('ip', (cb: (ip: unknown) => void) => {
                cb((socket.request as unknown as { ip?: unknown }).ip);
              });
            });
          }
        },
        {
          express,
          configureApp: (app) => {
            app.set('trust proxy', true);
          },
        },
      );
      const cookie = await t.login('bob');
      const extraHeaders = { cookie, 'x-forwarded-for': '203.0.113.7' };
      const withApp = t.connect('/with-app', { extraHeaders });
      const info = await whoami<Info>(withApp);
      assert.equal(info.user, 'bob');
      assert.equal(info.sessionID, sidOf(cookie));
      assert.equal(await request(withApp, 'ip'), '203.0.113.7');
      // Without options.app, Express's defaults apply: the proxy header is not trusted.
      const withoutApp = t.connect('/default-app', { extraHeaders });
      assert.equal((await whoami<Info>(withoutApp)).user, 'bob');
      assert.match(String(await request(withoutApp, 'ip')), /127\.0\.0\.1$/);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------------

describe('sessionNamespace: failures', () => {
  test('store.get errors: 503 ERR_SESSION_UNAVAILABLE, nothing internal shown, onError gets it', async (tc) => {
    const store = new FlakyStore();
    const reported: Reported[] = [];
    const t = await start(
      tc,
      ({ io, session, passport }) => {
        reporting(
          sessionNamespace(io.of('/ns'), session, {
            passport,
            onError: (error, socket) => {
              reported.push({ error, nsp: socket.nsp.name });
            },
          }),
        );
      },
      { sessionOptions: { store } },
    );
    const cookie = await t.login('alice');
    store.mode = 'fail';
    const socket = t.connect('/ns', { cookie });
    const refused = await connectError(socket);
    assert.equal(refused.message, 'Service Unavailable');
    assert.deepEqual(refused.data, { code: ERR_SESSION_UNAVAILABLE, status: 503 });
    assert.doesNotMatch(
      JSON.stringify({ m: refused.message, d: refused.data }),
      /ECONNREFUSED|hunter2/,
    );
    assert.equal(socket.active, false, 'a namespace-level refusal: the client does not retry');
    assert.deepEqual(reported, [{ error: store.failure, nsp: '/ns' }]);
    assert.equal(reported[0]?.error, store.failure, 'the original error object');

    // When the store recovers, the same cookie works again.
    store.mode = 'ok';
    const info = await whoami<Info>(t.connect('/ns', { cookie }));
    assert.equal(info.user, 'alice');
    assert.equal(reported.length, 1);
  });

  test('deserializeUser calls back an error: 500, onError gets it', async (tc) => {
    const failure = new Error('users table is locked');
    const reported: unknown[] = [];
    const t = await start(tc, ({ io, session }) => {
      const broken = new Passport();
      broken.deserializeUser((_id: string, done) => {
        done(failure);
      });
      sessionNamespace(io.of('/ns'), session, {
        passport: broken,
        onError: (error) => {
          reported.push(error);
        },
      });
    });
    const cookie = await t.login('alice');
    const refused = await connectError(t.connect('/ns', { cookie }));
    assert.equal(refused.message, 'Internal Server Error');
    assert.deepEqual(refused.data, { code: ERR_MIDDLEWARE_ERROR, status: 500 });
    assert.deepEqual(reported, [failure]);
  });

  test('timeoutMs: a store that never answers → 503 ERR_SESSION_UNAVAILABLE (timeoutMs 200)', async (tc) => {
    const store = new FlakyStore();
    const t = await start(
      tc,
      ({ io, session, passport }) => {
        sessionNamespace(io.of('/ns'), session, { passport, timeoutMs: 200 });
      },
      { sessionOptions: { store } },
    );
    const cookie = await t.login('alice');
    store.mode = 'hang';
    const started = Date.now();
    const socket = t.connect('/ns', { cookie });
    const refused = await connectError(socket);
    const elapsed = Date.now() - started;
    assert.equal(refused.message, 'Service Unavailable');
    assert.deepEqual(refused.data, { code: ERR_SESSION_UNAVAILABLE, status: 503 });
    assert.equal(socket.active, false);
    // The option is honoured: not before it, and long before the 10 s default.
    assert.ok(elapsed >= 190, `refused after ${elapsed} ms, before timeoutMs`);
    assert.ok(elapsed < 5000, `refused after ${elapsed} ms: timeoutMs was not used`);
  });
});

// ---------------------------------------------------------------------------------------------
// Setup errors
// ---------------------------------------------------------------------------------------------

describe('sessionNamespace: setup errors', () => {
  const io = new Server();
  const sessionMiddleware = session({ secret: 's', resave: false, saveUninitialized: false });
  const passport = new Passport();

  test('session is not a function', () => {
    for (const bad of [undefined, null, {}, 'session', 42]) {
      throwsNaming(() => sessionNamespace(io.of('/x'), bad as never), 'sessionNamespace');
    }
  });

  test('options.passport is not a Passport authenticator', () => {
    const bads: unknown[] = [
      {},
      'passport',
      42,
      { initialize: () => undefined },
      { session: () => undefined },
      { initialize: 1, session: 2 },
    ];
    for (const bad of bads) {
      throwsNaming(
        () =>
          sessionNamespace(io.of('/x'), sessionMiddleware, {
            passport: bad as never,
          }),
        'sessionNamespace',
      );
    }
  });

  test('bad timeoutMs', () => {
    for (const bad of [0, -1, NaN, Infinity, 2 ** 31, '200', null]) {
      throwsNaming(
        () =>
          sessionNamespace(io.of('/x'), sessionMiddleware, {
            timeoutMs: bad as unknown as number,
          }),
        'sessionNamespace',
      );
    }
  });

  test('bad app or onError', () => {
    throwsNaming(
      () => sessionNamespace(io.of('/x'), sessionMiddleware, { app: {} as never }),
      'sessionNamespace',
    );
    throwsNaming(
      () => sessionNamespace(io.of('/x'), sessionMiddleware, { onError: 'log' as never }),
      'sessionNamespace',
    );
  });

  test('bad target', () => {
    for (const bad of [null, undefined, {}, '/chat', 42, { name: '/chat' }]) {
      throwsNaming(
        () => sessionNamespace(bad as unknown as Server, sessionMiddleware),
        'sessionNamespace',
      );
    }
  });

  test('options not an object', () => {
    for (const bad of [null, 'passport', 42, true]) {
      throwsNaming(
        () => sessionNamespace(io.of('/x'), sessionMiddleware, bad as never),
        'sessionNamespace',
      );
    }
  });

  test('called after requireAuth on the same namespace', () => {
    const nsp = requireAuth(io.of('/guarded-first'));
    throwsNaming(() => sessionNamespace(nsp, sessionMiddleware, { passport }), 'sessionNamespace');
    const root = requireAuth(new Server());
    throwsNaming(() => sessionNamespace(root, sessionMiddleware), 'sessionNamespace');
  });

  test('a failed setup adds nothing: the namespace still works afterwards', async (tc) => {
    const t = await start(tc, ({ io: server, session: sessionMw, passport: pp }) => {
      const nsp = server.of('/ns');
      assert.throws(() => sessionNamespace(nsp, sessionMw, { passport: pp, timeoutMs: -5 }));
      assert.throws(() => sessionNamespace(nsp, sessionMw, { passport: {} as never }));
      reporting(sessionNamespace(nsp, sessionMw, { passport: pp }));
    });
    const cookie = await t.login('alice');
    const info = await whoami<Info>(t.connect('/ns', { cookie }));
    assert.equal(info.user, 'alice');
  });
});
