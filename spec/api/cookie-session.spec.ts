// cookie-session, the other session middleware Passport users run: the session lives in a signed
// cookie, with no store and no session ID. The package reads it at every namespace connect, ends a
// socket at its maxAge, and ends a user's sockets at logout (by user, since there is no session
// ID); it never crashes the process or an HTTP request over a session of a shape it does not know.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import cookieSession from 'cookie-session';
import express, { type RequestHandler } from 'express';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import {
  ERR_MIDDLEWARE_ERROR,
  ERR_SESSION_EXPIRED,
  ERR_SESSION_REVOKED,
  ERR_UNAUTHORIZED,
  SESSION_ENDED_EVENT,
  type SessionEndedPayload,
  disconnectOnLogout,
  disconnectUser,
  requireAuth,
  saveSession,
  sessionNamespace,
} from '../../lib/index.js';
import { connected, connectError, within } from '../support/bounded.js';
import { request } from '../support/client.js';
import { testClock } from '../support/clock.js';
import { cookieOf, listen, loginRoutes, users, usersPassport } from '../support/server.js';
import { reporting, whoami } from '../support/whoami.js';
import { Server } from '../support/stack.js';

interface CookieApp {
  url: string;
  io: InstanceType<typeof Server>;
  login(username: string): Promise<string>;
  post(path: string, cookie: string): Promise<number>;
  connect(nsp: string, cookie?: string): ClientSocket;
}

/**
 * Express 5 + cookie-session + Passport (with the usual regenerate/save shim that Passport 0.6+
 * needs on cookie-session) + disconnectOnLogout, and `/chat` guarded by the package.
 */
async function cookieApp(
  tc: NodeTestContext,
  options: { maxAge?: number; session?: RequestHandler; passportOverHttp?: boolean } = {},
): Promise<CookieApp> {
  const app = express();
  const http = createServer(app);
  const io = new Server(http);
  const session =
    options.session ??
    cookieSession({
      name: 'session',
      keys: ['spec-key'],
      ...(options.maxAge !== undefined && { maxAge: options.maxAge }),
    });
  const passport = usersPassport();

  app.use(session);
  if (options.passportOverHttp === false) {
    // Only the session middleware and disconnectOnLogout before the routes.
    app.use(disconnectOnLogout(io));
  } else {
    usePassport();
  }
  function usePassport(): void {
    // Passport 0.6+ calls req.session.regenerate() and save(), which cookie-session lacks.
    app.use((req, _res, next) => {
      const s = req.session as unknown as Record<string, unknown> | null | undefined;
      if (s && typeof s.regenerate !== 'function') {
        s.regenerate = (cb: () => void) => {
          cb();
        };
      }
      if (s && typeof s.save !== 'function') {
        s.save = (cb: () => void) => {
          cb();
        };
      }
      next();
    });
    app.use(passport.session() as RequestHandler, disconnectOnLogout(io));
  }
  loginRoutes(app, passport);
  // The other usual cookie-session logout: drop the whole session.
  app.post('/forget', (req, res) => {
    (req as { session: unknown }).session = null;
    res.json({ ok: true });
  });
  app.get('/me', (req, res) => {
    res.json({ user: req.user?.username ?? null });
  });

  const chat = reporting(requireAuth(sessionNamespace(io.of('/chat'), session, { passport })));
  chat.on('connection', (socket) => {
    socket.on('save', (cb: (result: string) => void) => {
      try {
        void saveSession(socket);
        cb('saved');
      } catch (error) {
        cb(error instanceof Error ? error.message : String(error));
      }
    });
  });

  const url = await listen(http);
  const clients: ClientSocket[] = [];
  tc.after(async () => {
    for (const client of clients) client.disconnect();
    await io.close();
    http.closeAllConnections();
  });
  return {
    url,
    io,
    async login(username) {
      const user = users.find((u) => u.username === username);
      const res = await fetch(`${url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username, password: user?.password ?? '' }),
      });
      assert.equal(res.status, 200, `login as ${username}`);
      return cookieOf(res);
    },
    async post(path, cookie) {
      const res = await fetch(`${url}${path}`, { method: 'POST', headers: { cookie } });
      await res.arrayBuffer();
      return res.status;
    },
    connect(nsp, cookie) {
      const client = ioClient(`${url}${nsp}`, {
        forceNew: true,
        reconnection: false,
        ...(cookie !== undefined && { extraHeaders: { cookie } }),
      });
      clients.push(client);
      return client;
    },
  };
}

function ended(client: ClientSocket): Promise<SessionEndedPayload> {
  return within(
    new Promise<SessionEndedPayload>((resolve) => client.once(SESSION_ENDED_EVENT, resolve)),
    'session:ended',
  );
}

describe('cookie-session', () => {
  test('a logged-in user connects and is seen; HTTP requests keep working with disconnectOnLogout', async (tc) => {
    const app = await cookieApp(tc);
    const alice = await app.login('alice');
    const me = await fetch(`${app.url}/me`, { headers: { cookie: alice } });
    assert.equal(me.status, 200);
    assert.deepEqual(await me.json(), { user: 'alice' });
    const socket = app.connect('/chat', alice);
    await connected(socket);
    assert.equal((await whoami(socket)).user, 'alice');
    const refused = await connectError(app.connect('/chat'));
    assert.equal(refused.data?.code, ERR_UNAUTHORIZED);
  });

  test('req.logout() ends every socket of that user, in every tab', async (tc) => {
    const app = await cookieApp(tc);
    const alice = await app.login('alice');
    const tabs = [app.connect('/chat', alice), app.connect('/chat', alice)];
    await Promise.all(tabs.map((tab) => connected(tab)));
    const endings = tabs.map((tab) => ended(tab));
    assert.equal(await app.post('/logout', alice), 200);
    for (const payload of await Promise.all(endings)) {
      assert.deepEqual(payload, {
        message: 'Session revoked',
        data: { code: ERR_SESSION_REVOKED, status: 401 },
      });
    }
  });

  test('req.session = null ends the user’s sockets too', async (tc) => {
    const app = await cookieApp(tc);
    const alice = await app.login('alice');
    const tab = app.connect('/chat', alice);
    await connected(tab);
    const end = ended(tab);
    assert.equal(await app.post('/forget', alice), 200);
    assert.equal((await end).data.code, ERR_SESSION_REVOKED);
  });

  test('another user’s logout leaves a socket alone', async (tc) => {
    const app = await cookieApp(tc);
    const [alice, bob] = await Promise.all([app.login('alice'), app.login('bob')]);
    const aliceTab = app.connect('/chat', alice);
    const bobTab = app.connect('/chat', bob);
    await Promise.all([connected(aliceTab), connected(bobTab)]);
    const bobEnded = ended(bobTab);
    assert.equal(await app.post('/logout', bob), 200);
    await bobEnded;
    assert.equal((await whoami(aliceTab)).user, 'alice', 'alice is still connected');
  });

  test('a socket ends at the cookie’s maxAge, counted from its connect', async (tc) => {
    const app = await cookieApp(tc, { maxAge: 60_000 });
    // The package's time, moved rather than waited for.
    const clock = testClock(app);
    const alice = await app.login('alice');
    const tab = app.connect('/chat', alice);
    await connected(tab);
    const end = ended(tab);
    // 50 s after the connect (at least: the clock stands still from its first move, a moment
    // after it), still connected; 61 s after, ended.
    await clock.advance(50_000);
    assert.equal((await whoami(tab)).user, 'alice', 'still connected before the maxAge');
    await clock.advance(11_000);
    assert.equal((await end).data.code, ERR_SESSION_EXPIRED);
  });

  test('disconnectUser reaches its sockets; saveSession says the cookie cannot be written', async (tc) => {
    const app = await cookieApp(tc);
    const alice = await app.login('alice');
    const tab = app.connect('/chat', alice);
    await connected(tab);
    const reply = await request<string>(tab, 'save');
    assert.match(reply, /^saveSession: .*not kept in a store/);
    const end = ended(tab);
    await disconnectUser(app.io, '1');
    assert.equal((await end).data.code, ERR_SESSION_REVOKED);
  });
});

describe('sessions of shapes the package does not know', () => {
  const shapes: [string, (req: Record<string, unknown>) => void][] = [
    ['a string', (req) => (req.session = 'not a session')],
    ['a session with no cookie', (req) => (req.session = { passport: { user: '1' } })],
    [
      'a session whose cookie is not an object',
      (req) => (req.session = { cookie: 42, passport: { user: '1' } }),
    ],
    [
      'a session whose fields throw when read',
      (req) =>
        (req.session = Object.defineProperty({}, 'passport', {
          enumerable: true,
          get() {
            throw new Error('no reading this');
          },
        })),
    ],
  ];
  for (const [name, set] of shapes) {
    test(`${name}: refused with a code or let in, never a crash; HTTP still answers`, async (tc) => {
      const session: RequestHandler = (req, _res, next) => {
        set(req as unknown as Record<string, unknown>);
        next();
      };
      const app = await cookieApp(tc, { session, passportOverHttp: false });
      const me = await fetch(`${app.url}/me`);
      assert.equal(me.status, 200, 'an HTTP request with disconnectOnLogout still answers');
      await me.arrayBuffer();
      const socket = app.connect('/chat');
      const outcome = await within(
        new Promise<string>((resolve) => {
          socket.once('connect', () => {
            resolve('connected');
          });
          socket.once('connect_error', (err: Error & { data?: { code?: string } }) => {
            resolve(err.data?.code ?? err.message);
          });
        }),
        'an answer',
      );
      assert.ok(
        ['connected', ERR_UNAUTHORIZED, ERR_MIDDLEWARE_ERROR].includes(outcome),
        `answered ${outcome}`,
      );
      if (outcome === 'connected') {
        // Let in with a user that the session named: the socket works.
        assert.equal((await whoami(socket)).user, 'alice');
      }
    });
  }
});
