// The test kit itself (socket.io-session-auth/testing): how it starts and closes an app, logs
// agents in (without a form, and through one), opens sockets, and checks its options. Real parts
// only: the app's own express-session, Passport and store, real HTTP, the real socket.io-client.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import express from 'express';
import session from 'express-session';
import { requireAuth, sessionNamespace } from 'socket.io-session-auth';
import {
  createTestKit,
  expectEnded,
  expectRefused,
  type TestKit,
} from 'socket.io-session-auth/testing';
import { createApp } from '../../examples/passport/app.js';
import { findUserById } from '../../examples/passport/users.js';
import { throwsNaming } from '../support/assertions.js';
import { connected } from '../support/bounded.js';
import { start, type CreateTestServerOptions, type TestContext } from '../support/server.js';
import { Passport, Server } from '../support/stack.js';

const userOf = (id: string): Express.User => findUserById(id) ?? assert.fail(`no user ${id}`);

/** The demo app under a kit, closed after the test. */
async function demoKit(tc: NodeTestContext): Promise<TestKit> {
  const kit = await createTestKit(() => createApp({ sessionSecret: 'kit-spec' }));
  tc.after(() => kit.close());
  return kit;
}

/** A spec server (spec/support/server.ts, already listening) under a kit. */
async function serverKit(
  tc: NodeTestContext,
  setup: (ctx: TestContext) => void,
  options?: CreateTestServerOptions,
) {
  const t = await start(tc, setup, options);
  const kit = await createTestKit({ io: t.io, session: t.session, passport: t.passport });
  tc.after(() => kit.close());
  return { t, kit };
}

const connections: object[] = [];
function connectionIndex(conn: object): number {
  if (!connections.includes(conn)) connections.push(conn);
  return connections.indexOf(conn);
}

/** `/who`: a guarded namespace whose `who` ack tells what the server-side socket sees. */
function who({ io, session: sessionMiddleware, passport }: TestContext): void {
  const nsp = requireAuth(sessionNamespace(io.of('/who'), sessionMiddleware, { passport }));
  nsp.on('connection', (socket) => {
    socket.on('who', (ack: (info: unknown) => void) => {
      ack({
        user: socket.request.user?.username ?? null,
        sessionID: socket.request.sessionID,
        auth: socket.handshake.auth,
        conn: connectionIndex(socket.conn),
        transport: socket.conn.transport.name,
        cart: (socket.request.session as { cart?: unknown }).cart ?? null,
      });
    });
  });
}

interface Who {
  user: string | null;
  sessionID: string;
  auth: unknown;
  conn: number;
  transport: string;
  cart: unknown;
}

describe('loginAs: a real session, made by the app', () => {
  test("is express-session's own: its store, its ID, its cookie name, signed with the first secret", async (tc) => {
    const { t, kit } = await serverKit(tc, who, {
      sessionOptions: { name: 'app.sid', secret: ['current-secret', 'previous-secret'] },
    });
    const alice = await kit.loginAs({ id: '1', username: 'alice', role: 'admin', tenants: [] });
    const match = /^app\.sid=([^;]+)$/.exec(alice.cookie);
    assert.ok(match?.[1], `one app.sid cookie: ${alice.cookie}`);
    const value = decodeURIComponent(match[1]);
    const sid = value.slice(2, value.lastIndexOf('.'));
    assert.match(sid, /^[\w-]{32}$/, "express-session's default ID: 24 random bytes, base64url");
    const signature = createHmac('sha256', 'current-secret').update(sid).digest('base64');
    assert.equal(value, `s:${sid}.${signature.replace(/=+$/, '')}`, 'signed as express-session');

    const stored = await new Promise<unknown>((resolve, reject) => {
      t.store.get(sid, (err, s) => {
        if (err) reject(err as Error);
        else resolve(s);
      });
    });
    assert.deepEqual((stored as { passport?: unknown }).passport, { user: '1' }, 'serializeUser');

    const socket = await alice.connect('/who');
    const seen = (await socket.emitWithAck('who')) as Who;
    assert.deepEqual([seen.user, seen.sessionID], ['alice', sid], 'deserializeUser on the socket');
    const session = await alice.session();
    assert.equal(session?.id, sid);
    assert.equal(session.user, '1');
  });

  test('puts the data given beside the user, as a route would', async (tc) => {
    const { kit } = await serverKit(tc, who);
    const bob = await kit.loginAs(userOf('2'), { session: { cart: ['socks'] } });
    const socket = await bob.connect('/who');
    assert.deepEqual(((await socket.emitWithAck('who')) as Who).cart, ['socks']);
    assert.equal(bob.name, 'bob');
  });

  test("the demo's users, without its login form (no password, no scrypt)", async (tc) => {
    const kit = await demoKit(tc);
    const alice = await kit.loginAs(userOf('1'));
    const me = await alice.fetch('/api/me');
    assert.deepEqual(await me.json(), userOf('1'));
    await alice.connect('/admin');
    await expectRefused((await kit.loginAs(userOf('3'))).connect('/admin'), 'ERR_FORBIDDEN');
  });

  test('without passport, loginAs is refused and says why; loginWith still works', async (tc) => {
    const t = await start(tc, who);
    const kit = await createTestKit({ io: t.io, session: t.session });
    tc.after(() => kit.close());
    await assert.rejects(kit.loginAs(userOf('1')), /^TypeError: loginAs: needs options\.passport/);
    const alice = await kit.loginWith('/login', { username: 'alice', password: 'alice-pw' });
    assert.equal(((await (await alice.connect('/who')).emitWithAck('who')) as Who).user, 'alice');
  });
});

/** What deserializeUser is given to call back with. */
type Deserialized = (err: unknown, user?: Express.User | false | null) => void;

/**
 * An app on `/`, its io not attached yet, guarded by requireAuth, whose deserializeUser is
 * `deserialize`: what createTestKit takes to make the HTTP server itself.
 */
function unattachedApp(deserialize: (id: string, done: Deserialized) => void) {
  const app = express();
  const io = new Server();
  const sessionMiddleware = session({ secret: 's', resave: false, saveUninitialized: false });
  const passport = new Passport();
  passport.serializeUser((user, done) => {
    done(null, user.id);
  });
  passport.deserializeUser(deserialize);
  requireAuth(sessionNamespace(io.of('/'), sessionMiddleware, { passport }));
  return { io, session: sessionMiddleware, passport, app };
}

/**
 * An app on `/` whose deserializeUser finds the users in `known` (by id); for another id it gives
 * what the id says: `null`, `undefined`, an error for `boom`, else false.
 */
async function lookupKit(tc: NodeTestContext, known: Map<string, Express.User>): Promise<TestKit> {
  const kit = await createTestKit(
    unattachedApp((id, done) => {
      const user = known.get(id);
      if (id === 'boom') done(new Error('the users table is down'));
      else if (user) done(null, user);
      else done(null, id === 'null' ? null : id === 'undefined' ? undefined : false);
    }),
  );
  tc.after(() => kit.close());
  return kit;
}

const member = (id: string): Express.User => ({
  id,
  username: `u${id}`,
  role: 'member',
  tenants: [],
});

/** Rejects with an AssertionError whose message is `message` (a string: exactly; or a RegExp). */
async function failsWith(promise: Promise<unknown>, message: string | RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof Error);
    assert.equal(error.name, 'AssertionError', String(error));
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    return true;
  });
}

describe('loginAs: only a user the app’s deserializeUser finds', () => {
  test('fails with what deserializeUser gave for the key serializeUser stored', async (tc) => {
    const kit = await lookupKit(tc, new Map([['1', member('1')]]));
    const refused =
      'so every socket of this agent would be refused ERR_UNAUTHORIZED (reason user-not-found)';
    await failsWith(
      kit.loginAs(member('99')),
      "kit.loginAs(u99): deserializeUser gave false (or null) for the user key '99' that " +
        `serializeUser stored: no such user, ${refused}. Log in a user your deserializeUser finds`,
    );
    await failsWith(
      kit.loginAs(member('null'), { name: 'nobody' }),
      "kit.loginAs(nobody): deserializeUser gave false (or null) for the user key 'null' that " +
        `serializeUser stored: no such user, ${refused}. Log in a user your deserializeUser finds`,
    );
    await failsWith(
      kit.loginAs(member('undefined')),
      "kit.loginAs(uundefined): deserializeUser gave undefined for the user key 'undefined' that " +
        'serializeUser stored (Passport: "Failed to deserialize user out of session"), ' +
        `${refused}. Does deserializeUser call done(null, user), and is it registered on this ` +
        'passport?',
    );
    await failsWith(
      kit.loginAs(member('boom')),
      "kit.loginAs(uboom): deserializeUser failed for the user key 'boom' that serializeUser " +
        'stored: Error: the users table is down',
    );
    // A user it finds logs in, and connects.
    assert.equal((await (await kit.loginAs(member('1'))).connect('/')).connected, true);
  });

  test('a socket refused because deserializeUser no longer finds the user says user-not-found', async (tc) => {
    const known = new Map([['1', member('1')]]);
    const kit = await lookupKit(tc, known);
    const agent = await kit.loginAs(member('1'));
    known.delete('1');
    await failsWith(
      agent.connect('/'),
      'expected / (u1) to connect, but it was refused: ERR_UNAUTHORIZED (401 Unauthorized; ' +
        'reason user-not-found: deserializeUser gave false (the user no longer exists))',
    );
    await failsWith(
      expectRefused(agent.connect('/'), 'ERR_FORBIDDEN'),
      'expected connect_error ERR_FORBIDDEN on / (u1), but it was refused with ERR_UNAUTHORIZED ' +
        '(401 Unauthorized; reason user-not-found: deserializeUser gave false (the user no ' +
        'longer exists))',
    );
  });
});

describe('loginWith: through the app’s own login route', () => {
  test('keeps the cookies the login set', async (tc) => {
    const kit = await demoKit(tc);
    const carol = await kit.loginWith('/login', { username: 'carol', password: 'carol-pass' });
    assert.equal(carol.name, 'carol');
    assert.equal((await carol.session())?.user, '3');
    await carol.connect('/tenant-acme');
  });

  test('a refused login fails with what the app answered', async (tc) => {
    const kit = await demoKit(tc);
    await assert.rejects(kit.loginWith('/login', { username: 'alice', password: 'wrong' }), {
      name: 'AssertionError',
      message:
        "kit.loginWith('/login') as alice: the app answered 302 Found → /login?error=1, and " +
        'no session with a user came of it',
    });
  });

  test('agent.fetch keeps the cookies a later login sets: a new session, the old one rotated', async (tc) => {
    const kit = await demoKit(tc);
    const bob = await kit.loginAs(userOf('2'));
    const before = bob.cookie;
    const login = await bob.fetch('/login', {
      method: 'POST',
      body: new URLSearchParams({ username: 'bob', password: 'bob-pass' }),
    });
    assert.equal(login.status, 302);
    assert.notEqual(bob.cookie, before);
    assert.equal((await bob.session())?.user, '2');
  });
});

describe('agent.connect: real sockets with the agent’s cookie', () => {
  test('tabs are separate connections; transport, auth and origin are sent', async (tc) => {
    const { t, kit } = await serverKit(tc, who);
    const alice = await kit.loginAs(userOf('1'));
    const tabs = await alice.connect('/who', { tabs: 3, transport: 'websocket', auth: { a: 1 } });
    const seen = (await Promise.all(tabs.map((s) => s.emitWithAck('who')))) as Who[];
    assert.equal(new Set(seen.map((s) => s.conn)).size, 3, 'three connections');
    for (const s of seen) {
      assert.deepEqual([s.user, s.transport, s.auth], ['alice', 'websocket', { a: 1 }]);
    }
    const polling = await alice.connect('/who', { transport: 'polling' });
    assert.equal(((await polling.emitWithAck('who')) as Who).transport, 'polling');

    await expectRefused(
      alice.connect('/who', { origin: 'https://evil.example' }),
      'ERR_ORIGIN_FORBIDDEN',
    );
    await alice.connect('/who', { origin: t.url });
  });

  test('a tab carries several namespaces on one connection', async (tc) => {
    const { kit } = await serverKit(tc, (ctx) => {
      who(ctx);
      sessionNamespace(ctx.io.of('/other'), ctx.session, { passport: ctx.passport });
    });
    const bob = await kit.loginAs(userOf('2'));
    const tab = bob.tab({ transport: 'websocket' });
    const socket = await tab.connect('/who');
    const other = await tab.connect('/other');
    assert.equal(socket.io, other.io, 'one Manager');
    tab.close();
    assert.equal(socket.connected || other.connected, false);
  });

  test('the anonymous agent sends no cookie', async (tc) => {
    const kit = await demoKit(tc);
    const stranger = kit.anonymous();
    assert.equal(stranger.cookie, '');
    assert.equal(await stranger.session(), undefined);
    const refusal = await expectRefused(stranger.connect('/chat'), 'ERR_UNAUTHORIZED');
    assert.deepEqual(refusal, {
      message: 'Unauthorized',
      data: { code: 'ERR_UNAUTHORIZED', status: 401 },
    });
  });
});

describe("kit.clock: the package's time, moved instead of waited for", () => {
  test('an hour-long session: alive a moment before its expiry, ended just after it, dropped by the store too; in well under a second of real time', async (tc) => {
    const HOUR = 3_600_000;
    const { kit } = await serverKit(tc, who, { sessionOptions: { cookie: { maxAge: HOUR } } });
    const started = Date.now();
    assert.ok(Math.abs(kit.clock.now() - started) < 1000, 'real time until advanced');
    const alice = await kit.loginAs(userOf('1'));
    const socket = await alice.connect('/who');
    const connectedAt = kit.clock.now();

    await kit.clock.advance(HOUR - 60_000);
    const before = kit.clock.now();
    // Frozen at its first advance, a moment of real time after the connect.
    assert.ok(before >= connectedAt + HOUR - 60_000 && before < connectedAt + HOUR - 59_000);
    assert.equal(((await socket.emitWithAck('who')) as Who).user, 'alice', 'still connected');
    assert.ok(socket.connected);
    assert.equal(kit.clock.now(), before, 'stands still once advanced');

    await kit.clock.advance(61_000);
    assert.equal(kit.clock.now(), before + 61_000);
    await expectEnded(socket, 'ERR_SESSION_EXPIRED');
    await assert.rejects(kit.expire(alice), /has no session in the store/, 'the store dropped it');
    assert.ok(Date.now() - started < HOUR / 60, 'no waiting on real time');

    assert.throws(() => kit.clock.advance(-1), /^TypeError: kit\.clock\.advance: /);
    await kit.close();
    assert.throws(() => kit.clock.advance(1), /^Error: kit\.clock\.advance: the kit is closed/);
  });
});

describe('kit.clock: a server that kept time before the kit', () => {
  test('a socket connected before the kit keeps real time: advance refuses, naming the node', async (tc) => {
    const t = await start(tc, who, { sessionOptions: { cookie: { maxAge: 3_600_000 } } });
    const early = t.connect('/who', { cookie: await t.login('alice') });
    await connected(early);
    const kit = await createTestKit({ io: t.io, session: t.session, passport: t.passport });
    tc.after(() => kit.close());
    assert.throws(
      () => kit.clock.advance(1000),
      /^TypeError: kit\.clock\.advance: node 0's Socket\.IO server had live sockets/,
    );
    assert.equal(((await early.emitWithAck('who')) as Who).user, 'alice', 'left as it was');
  });
});

describe('createTestKit: starting and closing', () => {
  test('listens on 127.0.0.1:0 and closes what it opened; await using closes it too', async () => {
    let url = '';
    let socketOf: (() => boolean) | undefined;
    {
      await using kit = await createTestKit(() => createApp({ sessionSecret: 'kit-spec' }));
      url = kit.url;
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(kit.nodes.length, 1);
      assert.equal(kit.io, kit.nodes[0]?.io);
      const chat = await (await kit.loginAs(userOf('1'))).connect('/chat');
      socketOf = () => chat.connected;
    }
    assert.equal(socketOf(), false, 'its sockets are closed');
    await assert.rejects(fetch(`${url}/login`), 'its server is closed');
  });

  test('a server already listening is used as it is, and left open', async (tc) => {
    const { t, kit } = await serverKit(tc, who);
    assert.equal(kit.url, t.url);
    const socket = await (await kit.loginAs(userOf('1'))).connect('/who');
    await kit.close();
    await kit.close();
    assert.equal(socket.connected, false, "the kit's sockets are closed");
    assert.equal(t.http.listening, true, "the app's own server is not the kit's to close");
    assert.throws(() => kit.anonymous(), /^Error: kit\.anonymous: the kit is closed$/);
  });

  test('an io not attached yet: the kit makes the HTTP server from app, and closes it', async () => {
    const app = unattachedApp((id, done) => {
      done(null, { id, username: `user ${id}`, role: 'member', tenants: [] });
    });
    const { io } = app;
    const kit = await createTestKit(app);
    const agent = await kit.loginAs({ id: '9', username: 'x', role: 'member', tenants: [] });
    assert.equal((await agent.connect('/')).connected, true);
    assert.equal(io.httpServer.listening, true);
    await kit.close();
    assert.equal(io.httpServer.listening, false);
  });

  test('setup mistakes throw a TypeError naming the helper, at once', async (tc) => {
    const { t, kit } = await serverKit(tc, who);
    const app = { io: t.io, session: t.session, passport: t.passport };
    const bad = (options: unknown) => () => createTestKit(options as never);
    throwsNaming(bad(undefined), 'createTestKit');
    throwsNaming(bad({ ...app, io: {} }), 'createTestKit');
    throwsNaming(bad({ ...app, session: 'session' }), 'createTestKit');
    throwsNaming(bad({ ...app, passport: {} }), 'createTestKit');
    throwsNaming(bad({ ...app, close: 1 }), 'createTestKit');
    throwsNaming(bad({ ...app, logoutPath: 'logout' }), 'createTestKit');
    throwsNaming(bad({ ...app, io: new Server() }), 'createTestKit');
    throwsNaming(() => createTestKit(app as never, { logoutPath: '/x' }), 'createTestKit');
    throwsNaming(() => createTestKit(() => app, { logoutPath: 'x' }), 'createTestKit');
    await assert.rejects(
      createTestKit(() => ({}) as never),
      /^TypeError: createTestKit: /,
    );

    const alice = kit.anonymous();
    throwsNaming(() => alice.connect('chat'), 'agent.connect');
    throwsNaming(() => alice.connect('/who', { tabs: 0 }), 'agent.connect');
    throwsNaming(
      () => alice.connect('/who', { transport: 'carrier-pigeon' as never }),
      'agent.tab',
    );
    throwsNaming(() => alice.connect('/who', { within: -1 }), 'agent.connect');
    await assert.rejects(kit.node(), /^TypeError: kit\.node: needs a factory/);
    await assert.rejects(alice.fetch('api'), /^TypeError: agent\.fetch: /);
    await assert.rejects(kit.loginWith('login', {}), /^TypeError: kit\.loginWith: /);
    await assert.rejects(kit.loginAs(null as never), /^TypeError: kit\.loginAs: /);
    const other = await createTestKit(() => createApp({ sessionSecret: 'x' }));
    tc.after(() => other.close());
    throwsNaming(() => alice.connect('/who', { node: other.nodes[0] }), 'agent.tab');
    await assert.rejects(kit.expire(other.anonymous()), /^TypeError: kit\.expire: /);
  });

  test('kit.node() refuses an app whose adapter does not span nodes', async (tc) => {
    const kit = await demoKit(tc);
    await assert.rejects(
      kit.node(),
      /^TypeError: kit\.node: the app's Socket\.IO adapter is the in-memory one/,
    );
    assert.equal(kit.nodes.length, 1);
  });
});
