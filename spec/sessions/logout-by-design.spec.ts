// A logout ends the sockets by design (issue 20): with express-session, every way a session is
// ended in an app ends that session's sockets, whether or not disconnectOnLogout is mounted, or
// where. One spec for each way the step used to be forgotten: not mounted, mounted after the
// routes, req.session.destroy(), req.session.regenerate(), admin code calling store.destroy(sid),
// a logout on the other node of two (connect-redis, Redis adapter); and, where the package cannot
// see a logout by itself (cookie-session), the warning at the first socket that names the fix.
// Real express-session (the run's store) and passport-local, logins over HTTP, cookies reused by
// the kit's agents.
import assert from 'node:assert/strict';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import { createAdapter } from '@socket.io/redis-adapter';
import { RedisStore } from 'connect-redis';
import cookieSession from 'cookie-session';
import express, { type RequestHandler } from 'express';
import session from 'express-session';
import type { ServerOptions } from 'socket.io';
import { disconnectOnLogout, requireAuth, sessionNamespace } from '../../lib/index.js';
import { createTestKit, expectEnded, type TestKit } from '../../lib/testing/index.js';
import { redisClients, redisUnavailable, startRedis } from '../support/redis.js';
import { loginRoutes, usersPassport } from '../support/server.js';
import { socketsOf } from '../support/session-ending.js';
import { Server, createSessionStore, socketIoVersion } from '../support/stack.js';
import { warningsOf } from '../support/warnings.js';

type Mount = 'not mounted' | 'after the routes';
const alice = { username: 'alice', password: 'alice-pw' };

/**
 * The app as a user writes it: express-session on the run's store, passport-local, `/chat`
 * guarded, and routes that end a session the other ways, each answering with how many sockets of
 * the old session were still connected just before it answered.
 */
async function app(
  tc: NodeTestContext,
  mount: Mount,
  given?: session.Store,
): Promise<{ kit: TestKit; store: object; io: Server }> {
  const { store, close } = given
    ? { store: given, close: () => Promise.resolve() }
    : await createSessionStore();
  const sessionMiddleware = session({
    secret: 'logout-by-design',
    resave: false,
    saveUninitialized: false,
    store,
  });
  const passport = usersPassport();
  const io = new Server();
  const web = express();
  web.use(sessionMiddleware, passport.session() as RequestHandler);
  loginRoutes(web, passport);
  for (const action of ['destroy', 'regenerate'] as const) {
    web.post(`/${action}`, (req, res, next) => {
      const old = req.sessionID;
      req.session[action]((err?: unknown) => {
        if (err) next(err);
        else res.json({ live: socketsOf(io, old) });
      });
    });
  }
  if (mount === 'after the routes') web.use(disconnectOnLogout(io));
  requireAuth(sessionNamespace(io.of('/chat'), sessionMiddleware, { passport })).on(
    'connection',
    (socket) => {
      socket.on('ping', (ack: (answer: string) => void) => {
        ack('pong');
      });
    },
  );
  const kit = await createTestKit({
    io,
    session: sessionMiddleware,
    passport,
    app: web,
    close: async () => {
      await io.close();
      await close();
    },
  });
  tc.after(() => kit.close());
  return { kit, store, io };
}

/** An agent logged in over HTTP through the app's own login route, with a live /chat socket. */
async function loggedIn(kit: TestKit) {
  const agent = await kit.loginWith('/login', alice);
  const chat = await agent.connect('/chat');
  return { agent, chat };
}

describe('logout ends the sockets, whatever the app mounts', () => {
  for (const mount of ['not mounted', 'after the routes'] as const) {
    test(`disconnectOnLogout ${mount}: req.logout() ends the session's sockets`, async (tc) => {
      const { kit } = await app(tc, mount);
      const { agent, chat } = await loggedIn(kit);
      const other = await (await kit.loginWith('/login', alice)).connect('/chat');
      await agent.logout();
      await expectEnded(chat, 'ERR_SESSION_REVOKED');
      // The same user's other session goes on: a logout ends a session, not a user. Its end was
      // sent before the logout's response, so before this ack.
      assert.equal(await other.emitWithAck('ping'), 'pong');
      await other.refuteEvent('session:ended', { within: 0 });
    });
  }

  test('req.session.destroy(): ERR_SESSION_REVOKED, before the app answers', async (tc) => {
    const { kit } = await app(tc, 'not mounted');
    const { agent, chat } = await loggedIn(kit);
    const res = await agent.fetch('/destroy', { method: 'POST' });
    assert.deepEqual(await res.json(), { live: 0 }, 'sockets of the old session when it answered');
    await expectEnded(chat, 'ERR_SESSION_REVOKED');
  });

  test('req.session.regenerate() with a user: ERR_SESSION_ROTATED, once the new cookie is sent', async (tc) => {
    const { kit } = await app(tc, 'not mounted');
    const { agent, chat } = await loggedIn(kit);
    const res = await agent.fetch('/regenerate', { method: 'POST' });
    assert.deepEqual(await res.json(), { live: 1 }, 'the socket stays until the response is sent');
    await expectEnded(chat, 'ERR_SESSION_ROTATED');
  });

  test('admin code calling store.destroy(sid), no callback: ERR_SESSION_REVOKED', async (tc) => {
    const { kit, store } = await app(tc, 'not mounted');
    const { agent, chat } = await loggedIn(kit);
    const sid = (await agent.session())?.id;
    assert.ok(typeof sid === 'string', 'the session ID the store knows');
    // As an admin tool does: the store the app was given, called with the session's ID.
    await (store as { destroy(sid: string): unknown }).destroy(sid);
    await expectEnded(chat, 'ERR_SESSION_REVOKED');
  });
});

describe("an app's 'disconnect' listener that throws", () => {
  // Socket.IO 4.8 emits a server-ended socket's 'disconnect' inside socket.disconnect(), so the
  // throw reaches the package's ending; before 4.8 it comes from the connection's close, later,
  // and is the app's own uncaught exception, which no package can catch for it.
  const skip =
    socketIoVersion !== '4.8' &&
    "Socket.IO before 4.8 emits the 'disconnect' outside the package's call";
  test(
    'a store destroy still ends the socket, and nothing goes unhandled',
    { skip },
    async (tc) => {
      const { kit, store, io } = await app(tc, 'not mounted');
      io.of('/chat').on('connection', (socket) => {
        socket.on('disconnect', () => {
          throw new Error("the app's disconnect listener failed");
        });
      });
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown): void => {
        unhandled.push(reason);
      };
      process.on('unhandledRejection', onUnhandled);
      tc.after(() => process.off('unhandledRejection', onUnhandled));
      const { agent, chat } = await loggedIn(kit);
      const sid = (await agent.session())?.id;
      assert.ok(typeof sid === 'string', 'the session ID the store knows');
      await (store as { destroy(sid: string): unknown }).destroy(sid);
      await expectEnded(chat, 'ERR_SESSION_REVOKED');
      // A rejection nobody handles is reported once the microtasks of its turn have run: a later
      // turn, and a round trip of another socket, come after it.
      await new Promise((resolve) => setImmediate(resolve));
      const other = await (await kit.loginWith('/login', alice)).connect('/chat');
      assert.equal(await other.emitWithAck('ping'), 'pong');
      assert.deepEqual(unhandled, [], 'no unhandled rejection');
    },
  );
});

/**
 * One node, as its own process would have it: its own Redis clients and its own RedisStore
 * instance (so a destroy on one node is never seen by the other's store), the Redis adapter, and
 * no disconnectOnLogout.
 */
async function redisNode(url: string) {
  const { client, pub, sub, quit } = await redisClients(url);
  const sessionMiddleware = session({
    secret: 'logout-by-design',
    resave: false,
    saveUninitialized: false,
    store: new RedisStore({ client, prefix: 'logout-by-design:' }),
  });
  const passport = usersPassport();
  const io = new Server({ adapter: createAdapter(pub, sub) as ServerOptions['adapter'] });
  const web = express();
  web.use(sessionMiddleware, passport.session() as RequestHandler);
  loginRoutes(web, passport);
  requireAuth(sessionNamespace(io.of('/chat'), sessionMiddleware, { passport }));
  return {
    io,
    session: sessionMiddleware,
    passport,
    app: web,
    close: async () => {
      await io.close();
      await quit();
    },
  };
}

describe("the store's destroy, wrapped", () => {
  test('an own destroy of the instance: its this, arguments, callback and return value kept', async (tc) => {
    const store = new session.MemoryStore();
    const classDestroy = store.destroy.bind(store);
    const seen: unknown[] = [];
    // As some stores assign their methods in the constructor: an own property, not the class's.
    Object.defineProperty(store, 'destroy', {
      writable: true,
      configurable: true,
      value: function destroy(this: unknown, sid: string, done?: (...args: unknown[]) => void) {
        seen.push(this === store, sid);
        classDestroy(sid, () => {
          done?.(null, 'from the store');
        });
        return 'returned';
      },
    });
    const { kit } = await app(tc, 'not mounted', store);
    const { agent, chat } = await loggedIn(kit);
    const sid = (await agent.session())?.id ?? assert.fail('no session');
    seen.length = 0; // the login's regenerate destroyed the session before it
    const called = await new Promise<{ returned: unknown; args: unknown[] }>((resolve) => {
      // As the app calls it, on the store; typed as it is written, which may return something.
      const destroy = Reflect.get(store, 'destroy') as (
        this: unknown,
        sid: string,
        done: (...args: unknown[]) => void,
      ) => unknown;
      const returned = destroy.call(store, sid, (...args: unknown[]) => {
        resolve({ returned, args });
      });
    });
    assert.deepEqual(called, { returned: 'returned', args: [null, 'from the store'] });
    assert.deepEqual(seen, [true, sid]);
    await expectEnded(chat, 'ERR_SESSION_REVOKED');
  });
});

describe('two nodes over Redis (connect-redis), disconnectOnLogout not mounted', () => {
  const skip = redisUnavailable() ?? false;
  test('a logout on the other node ends the socket on this one', { skip }, async (tc) => {
    const redis = await startRedis();
    const kit = await createTestKit(() => redisNode(redis.url)).catch(async (error: unknown) => {
      await redis.stop();
      throw error;
    });
    // The nodes close before Redis goes.
    tc.after(async () => {
      await kit.close();
      await redis.stop();
    });
    const other = await kit.node();
    const { agent, chat } = await loggedIn(kit);
    // No socket on the other node yet: its store was watched when its namespace was set up.
    assert.equal(socketsOf(other.io, (await agent.session())?.id ?? ''), 0);
    await agent.logout('/logout', { node: other });
    await expectEnded(chat, 'ERR_SESSION_REVOKED');
  });
});

/** cookie-session (with Passport 0.6+'s usual regenerate/save shim) and `/chat` guarded. */
async function cookieApp(tc: NodeTestContext, mount: 'before the routes' | 'after the routes') {
  const sessionMiddleware = cookieSession({ name: 'session', keys: ['logout-by-design'] });
  const passport = usersPassport();
  const io = new Server();
  const web = express();
  web.use(sessionMiddleware, (req, _res, next) => {
    const s = req.session as unknown as Record<string, unknown> | null | undefined;
    if (s) {
      s.regenerate ??= (cb: () => void) => {
        cb();
      };
      s.save ??= (cb: () => void) => {
        cb();
      };
    }
    next();
  });
  web.use(passport.session() as RequestHandler);
  if (mount === 'before the routes') web.use(disconnectOnLogout(io));
  loginRoutes(web, passport);
  if (mount === 'after the routes') web.use(disconnectOnLogout(io));
  requireAuth(sessionNamespace(io.of('/chat'), sessionMiddleware, { passport })).on(
    'connection',
    (socket) => {
      socket.on('ping', (ack: (answer: string) => void) => {
        ack('pong');
      });
    },
  );
  const kit = await createTestKit({ io, session: sessionMiddleware, passport, app: web });
  tc.after(() => kit.close());
  return kit;
}

// The warning is once per process: these two run in this order, the first before any other
// cookie-session socket of this file.
describe('cookie-session: no store, so the first socket names the fix', () => {
  const code = 'SOCKET_IO_SESSION_AUTH_LOGOUT_UNSEEN';

  test('disconnectOnLogout before the routes: no warning, and the logout ends the socket', async (tc) => {
    const warnings = warningsOf(tc, code);
    const kit = await cookieApp(tc, 'before the routes');
    const { agent, chat } = await loggedIn(kit);
    // process.emitWarning emits on a later tick; this round trip comes after it.
    assert.equal(await chat.emitWithAck('ping'), 'pong');
    assert.deepEqual(warnings, []);
    await agent.logout();
    await expectEnded(chat, 'ERR_SESSION_REVOKED');
  });

  test('disconnectOnLogout after the routes: the first socket warns, naming the fix', async (tc) => {
    const warnings = warningsOf(tc, code);
    const kit = await cookieApp(tc, 'after the routes');
    const { chat } = await loggedIn(kit);
    assert.equal(await chat.emitWithAck('ping'), 'pong');
    assert.equal(warnings.length, 1, `${code} warnings`);
    assert.match(warnings[0] ?? '', /before\s+your routes/);
    assert.match(warnings[0] ?? '', /disconnectOnLogout\(io\)/);
    assert.match(warnings[0] ?? '', /disconnectUser\(io, userKey\)/);
  });
});
