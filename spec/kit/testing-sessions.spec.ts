// The test kit's session control, on each kind of store the package supports: kit.expire (the
// expiry reached now, in the store; live sockets end at once), kit.destroy (gone from the store;
// live sockets end as at a logout), agent.logout (through the app's route). And loginAs on the
// other supported stacks: Passport 0.6, cookie-session.
import assert from 'node:assert/strict';
import { after, describe, test, type TestContext as NodeTestContext } from 'node:test';
import { RedisStore } from 'connect-redis';
import cookieSession from 'cookie-session';
import express, { type RequestHandler } from 'express';
import session from 'express-session';
import type * as PassportModule from 'passport';
import { createClient } from 'redis';
import { Server } from 'socket.io';
import { disconnectOnLogout, requireAuth, sessionNamespace } from 'socket.io-session-auth';
import {
  createTestKit,
  expectEnded,
  expectRefused,
  type TestKit,
} from 'socket.io-session-auth/testing';
import { createApp } from '../../examples/passport/app.js';
import { findUserById } from '../../examples/passport/users.js';
import { redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';

// Passport 0.6, installed under an alias, typed as the newest (what is used has the same shape).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const passport06 = require('passport06') as typeof PassportModule;

const userOf = (id: string): Express.User => findUserById(id) ?? assert.fail(`no user ${id}`);
const noRedis = redisUnavailable();

interface StoreCase {
  name: string;
  store: () => Promise<{ store?: session.Store; close: () => Promise<void> }>;
  skip?: string | undefined;
}

let redis: RedisServer | undefined;
let prefixes = 0;

const stores: StoreCase[] = [
  {
    name: "express-session's MemoryStore",
    store: () => Promise.resolve({ store: new session.MemoryStore(), close: async () => {} }),
  },
  // The demo's default: memorystore, which keeps a TTL of its own.
  { name: 'memorystore', store: () => Promise.resolve({ close: async () => {} }) },
  {
    name: 'connect-redis on a real redis-server (a TTL in whole seconds)',
    skip: noRedis,
    store: async () => {
      redis ??= await startRedis();
      const client = createClient({ url: redis.url });
      await client.connect();
      const store = new RedisStore({ client, prefix: `kit:${++prefixes}:` });
      return { store, close: () => client.close() };
    },
  },
];

after(async () => {
  await redis?.stop();
});

async function demoOn(tc: NodeTestContext, which: StoreCase): Promise<TestKit> {
  const { store, close } = await which.store();
  const kit = await createTestKit(() => {
    const demo = createApp({ sessionSecret: 'sessions-spec', ...(store && { store }) });
    return {
      ...demo,
      async close() {
        await demo.close();
        await close();
      },
    };
  });
  tc.after(() => kit.close());
  return kit;
}

for (const which of stores) {
  describe(`kit.expire and kit.destroy on ${which.name}`, { skip: which.skip }, () => {
    test('expire: every live socket of the session ends with ERR_SESSION_EXPIRED, at once', async (tc) => {
      const kit = await demoOn(tc, which);
      const [alice, bob] = await Promise.all([kit.loginAs(userOf('1')), kit.loginAs(userOf('2'))]);
      const tab = alice.tab();
      const sockets = [
        ...(await alice.connect('/chat', { tabs: 2 })),
        await tab.connect('/chat'),
        await tab.connect('/tenant-acme'),
      ];
      const bobChat = await bob.connect('/chat');
      await kit.expire(alice);
      for (const socket of sockets) await expectEnded(socket, 'ERR_SESSION_EXPIRED');
      assert.equal((await alice.fetch('/api/me')).status, 401);
      await expectRefused(alice.connect('/chat'), 'ERR_UNAUTHORIZED');
      assert.equal(await alice.session(), undefined);
      await bobChat.refuteEvent('session:ended', { within: 0 });
      assert.equal(bobChat.connected, true, "bob's session is another one");
      await assert.rejects(kit.expire(alice), {
        name: 'AssertionError',
        message:
          'kit.expire(alice): alice has no session in the store (logged out, destroyed or ' +
          'expired already?)',
      });
    });

    test('destroy: the session is gone for HTTP and new sockets, and its live sockets end', async (tc) => {
      const kit = await demoOn(tc, which);
      const bob = await kit.loginAs(userOf('2'));
      const chat = await bob.connect('/chat');
      await kit.destroy(bob);
      // A destroy at the store the socket's session came from ends it, as a logout does.
      await expectEnded(chat, 'ERR_SESSION_REVOKED');
      assert.equal((await bob.fetch('/api/me')).status, 401);
      await expectRefused(bob.connect('/chat'), 'ERR_UNAUTHORIZED');
    });
  });
}

describe('agent.logout: through the app', () => {
  test("every tab's sockets end with ERR_SESSION_REVOKED; the session has no user", async (tc) => {
    const kit = await demoOn(tc, stores[0] ?? assert.fail());
    const carol = await kit.loginAs(userOf('3'));
    const sockets = await carol.connect('/tenant-acme', { tabs: 2 });
    await carol.logout();
    for (const socket of sockets) await expectEnded(socket, 'ERR_SESSION_REVOKED');
    assert.equal((await carol.session())?.user, undefined);
  });

  test('a route that does not log out fails, saying what it answered', async (tc) => {
    const kit = await demoOn(tc, stores[0] ?? assert.fail());
    const alice = await kit.loginAs(userOf('1'));
    await assert.rejects(alice.logout('/nope'), {
      name: 'AssertionError',
      message: 'logout of alice: POST /nope answered 404 Not Found',
    });
    await assert.rejects(alice.logout('/login'), {
      name: 'AssertionError',
      message:
        'logout of alice: POST /login answered 302 Found, but the session still has a user ' +
        '(does it call req.logout()?)',
    });
  });
});

/** A small app on Passport 0.6 or cookie-session: `/me` answers who the socket is. */
function smallApp(sessionMiddleware: RequestHandler, shim: boolean) {
  const app = express();
  const io = new Server();
  const passport = new passport06.Passport();
  passport.serializeUser((user, done) => {
    done(null, user.id);
  });
  passport.deserializeUser((id: string, done) => {
    done(null, findUserById(id) ?? false);
  });
  app.use(sessionMiddleware);
  if (shim) {
    // Passport 0.6+ calls req.session.regenerate() and save(), which cookie-session lacks.
    app.use((req, _res, next) => {
      const s = req.session as unknown as Record<string, unknown>;
      s.regenerate ??= (cb: () => void) => {
        cb();
      };
      s.save ??= (cb: () => void) => {
        cb();
      };
      next();
    });
  }
  app.use(passport.session() as RequestHandler, disconnectOnLogout(io));
  app.post('/logout', (req, res) => {
    req.logout(() => res.sendStatus(204));
  });
  const me = requireAuth(sessionNamespace(io.of('/me'), sessionMiddleware, { passport }));
  me.on('connection', (socket) => {
    socket.on('me', (ack: (name: string | undefined) => void) => {
      ack(socket.request.user?.username);
    });
  });
  return { app, io, session: sessionMiddleware, passport };
}

describe('loginAs on the other supported stacks', () => {
  test('Passport 0.6 with express-session', async (tc) => {
    const small = smallApp(
      session({ secret: 'p06', resave: false, saveUninitialized: false }),
      false,
    );
    const p06 = await createTestKit(small);
    tc.after(() => p06.close());
    const alice = await p06.loginAs(userOf('1'));
    assert.equal(await (await alice.connect('/me')).emitWithAck('me'), 'alice');
  });

  test('cookie-session: the session is the cookie; the kit cannot expire or destroy it', async (tc) => {
    const small = smallApp(cookieSession({ name: 'app', keys: ['k1'] }), true);
    const cs = await createTestKit(small);
    tc.after(() => cs.close());
    const bob = await cs.loginAs(userOf('2'));
    assert.match(bob.cookie, /^app=[^;]+; app\.sig=[^;]+$/);
    assert.deepEqual(await bob.session(), {
      id: undefined,
      user: '2',
      data: { passport: { user: '2' } },
    });
    const socket = await bob.connect('/me');
    assert.equal(await socket.emitWithAck('me'), 'bob');
    await assert.rejects(cs.expire(bob), /^TypeError: kit\.expire: .*\(cookie-session\)/);
    await assert.rejects(cs.destroy(bob), /^TypeError: kit\.destroy: /);
    await bob.logout();
    await expectEnded(socket, 'ERR_SESSION_REVOKED');
  });
});
