// The demo app of examples/passport, driven over real HTTP (fetch) and the real socket.io-client:
// nothing is mocked. One app serves the whole file; each test closes the sockets it opened.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { Manager, type Socket as ClientSocket } from 'socket.io-client';
import {
  ERR_FORBIDDEN,
  ERR_SESSION_REVOKED,
  ERR_SESSION_ROTATED,
  ERR_UNAUTHORIZED,
  SESSION_ENDED_EVENT,
  type SessionEndedPayload,
} from 'socket.io-session-auth';
import {
  createApp,
  type ChatMessage,
  type ExampleApp,
  type Presence,
} from '../examples/passport/app.js';
import {
  authenticate,
  demoAccounts,
  hashPassword,
  verifyPassword,
} from '../examples/passport/users.js';
import {
  connected as connectedOrError,
  connectError as connectErrorOf,
  request,
  waitFor,
  type ConnectError,
} from './support/client.js';
import { within } from './support/bounded.js';

const EXAMPLE_DIR = path.join(__dirname, '..', 'examples', 'passport');

// Which namespace a client socket is for (socket.nsp is private in socket.io-client's types).
const nspOf = new WeakMap<ClientSocket, string>();
const nameOf = (socket: ClientSocket): string => nspOf.get(socket) ?? '?';

const connected = (socket: ClientSocket): Promise<ClientSocket> =>
  within(connectedOrError(socket), `connect ${nameOf(socket)}`);
const connectError = (socket: ClientSocket): Promise<ConnectError> =>
  within(connectErrorOf(socket), `connect_error ${nameOf(socket)}`);

/** Resolves with the first `event` whose first argument passes `check`. */
function nextEvent<T>(
  socket: ClientSocket,
  event: string,
  check: (value: T) => boolean = () => true,
): Promise<T> {
  return within(
    new Promise<T>((resolve) => {
      const listener = (value: T): void => {
        if (!check(value)) return;
        socket.off(event, listener);
        resolve(value);
      };
      socket.on(event, listener);
    }),
    `${event} on ${nameOf(socket)}`,
  );
}

/** Everything a socket hears about its end, in order. */
function recordEnd(socket: ClientSocket): string[] {
  const seen: string[] = [];
  socket.on(SESSION_ENDED_EVENT, (payload: SessionEndedPayload) => {
    seen.push(`${SESSION_ENDED_EVENT} ${payload.data.code} ${payload.data.status}`);
  });
  socket.on('disconnect', (reason) => {
    seen.push(`disconnect ${reason}`);
  });
  return seen;
}

async function expectEnded(socket: ClientSocket, seen: string[], what: string): Promise<void> {
  await within(
    waitFor(() => seen.length >= 2, 5000, what),
    what,
  );
  assert.deepEqual(
    seen,
    [`${SESSION_ENDED_EVENT} ${ERR_SESSION_REVOKED} 401`, 'disconnect io server disconnect'],
    what,
  );
  assert.equal(socket.active, false, `${what}: the client does not reconnect`);
}

const names = (online: Presence[]): string[] =>
  online.map((u) => (u.connections > 1 ? `${u.username}×${u.connections}` : u.username));

function passwordOf(username: string): string {
  const account = demoAccounts.find((a) => a.username === username);
  assert.ok(account, `no demo account ${username}`);
  return account.password;
}

/** The `name=value` pairs of a response's Set-Cookie headers, as a Cookie header. */
function cookieOf(res: Response): string {
  return res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0] ?? '')
    .join('; ');
}

describe('examples/passport', () => {
  let demo: ExampleApp;
  let url = '';
  const sockets = new Set<ClientSocket>();

  before(async () => {
    demo = createApp({ sessionSecret: 'spec-secret' });
    await new Promise<void>((resolve) => demo.httpServer.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(demo.httpServer.address() as AddressInfo).port}`;
  });
  afterEach(() => {
    // Once a tab's last socket is closed, its Manager closes the connection.
    for (const socket of sockets) socket.disconnect();
    sockets.clear();
  });
  after(() => demo.close());

  /** Posts the login form; returns the response (not followed) and the cookie it set. */
  async function postLogin(
    username: string,
    password: string,
    cookie?: string,
  ): Promise<{ res: Response; cookie: string }> {
    const res = await fetch(`${url}/login`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(cookie !== undefined && { cookie }),
      },
      body: new URLSearchParams({ username, password }),
      redirect: 'manual',
    });
    await res.arrayBuffer();
    return { res, cookie: cookieOf(res) };
  }

  async function login(username: string): Promise<string> {
    const { res, cookie } = await postLogin(username, passwordOf(username));
    assert.equal(res.status, 302, `login as ${username}`);
    assert.equal(res.headers.get('location'), '/');
    assert.match(cookie, /^connect\.sid=/);
    return cookie;
  }

  async function get(pathname: string, cookie?: string): Promise<Response> {
    return fetch(`${url}${pathname}`, {
      redirect: 'manual',
      ...(cookie !== undefined && { headers: { cookie } }),
    });
  }

  /** A browser tab: one connection (one Manager) shared by its namespaces, as in the SPA. */
  function tab(cookie?: string): (nsp: string) => ClientSocket {
    const manager = new Manager(url, {
      ...(cookie !== undefined && { extraHeaders: { cookie } }),
      // The SPA's defaults: reconnection stays on, as in a browser.
    });
    return (nsp) => {
      const socket = manager.socket(nsp);
      nspOf.set(socket, nsp);
      sockets.add(socket);
      return socket;
    };
  }

  test('users: only scrypt hashes are stored, checked with timingSafeEqual', async () => {
    const source = await readFile(path.join(EXAMPLE_DIR, 'users.ts'), 'utf8');
    for (const { username, password } of demoAccounts) {
      // The one occurrence is the demo list the login page shows; the user store has hashes only.
      assert.equal(source.split(password).length - 1, 1, `${username}'s password appears once`);
      const user = await authenticate(username, password);
      assert.ok(user, `${username} logs in with the demo password`);
      assert.deepEqual(Object.keys(user).sort(), ['id', 'role', 'tenants', 'username']);
      assert.equal(await authenticate(username, `${password}x`), undefined);
    }
    assert.match(source, /timingSafeEqual\(/);
    assert.equal(await authenticate('mallory', 'alice-pass'), undefined);
    const hash = await hashPassword('s3cret');
    assert.match(hash, /^scrypt\$16384\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
    assert.notEqual(await hashPassword('s3cret'), hash, 'a random salt each time');
    assert.equal(await verifyPassword('s3cret', hash), true);
    assert.equal(await verifyPassword('s3cret!', hash), false);
    assert.equal(await verifyPassword('s3cret', 'plain:s3cret'), false);
    assert.equal(await verifyPassword('', 'scrypt$16384$8$1$c2FsdA$'), false, 'an empty hash');
  });

  test('pages: strangers are sent to the login page, which lists the demo accounts', async () => {
    const home = await get('/');
    assert.equal(home.status, 303);
    assert.equal(home.headers.get('location'), '/login');
    assert.equal((await get('/api/me')).status, 401);

    const page = await (await get('/login')).text();
    for (const { username, password } of demoAccounts) {
      assert.match(page, new RegExp(`<code>${username}</code></td><td><code>${password}</code>`));
    }
    assert.match(page, /<form method="post" action="\/login">/);
    assert.doesNotMatch(page, /Wrong username or password/);

    const script = await get('/socket.io/socket.io.js');
    assert.equal(script.status, 200, 'the server serves the Socket.IO client');
    await script.arrayBuffer();
    assert.equal((await get('/app.js')).status, 200);
  });

  test('login: a form POST signs in; a wrong password or an unknown user is refused', async () => {
    const cookie = await login('alice');
    const home = await get('/', cookie);
    assert.equal(home.status, 200);
    const html = await home.text();
    assert.match(html, /<script src="\/socket\.io\/socket\.io\.js"><\/script>/);
    const me = await get('/api/me', cookie);
    assert.deepEqual(await me.json(), {
      id: '1',
      username: 'alice',
      role: 'admin',
      tenants: ['acme'],
    });

    for (const [username, password] of [
      ['alice', 'bob-pass'],
      ['alice', ''],
      ['mallory', 'alice-pass'],
    ] as const) {
      const refused = await postLogin(username, password);
      assert.equal(refused.res.status, 302, `${username} / ${password}`);
      assert.equal(refused.res.headers.get('location'), '/login?error=1');
      assert.equal(refused.cookie, '', 'no session for a failed login');
    }
    const page = await (await get('/login?error=1')).text();
    assert.match(page, /role="alert">Wrong username or password\.</);
  });

  test('anonymous sockets are refused with 401 in every namespace, and do not retry', async () => {
    for (const cookie of [undefined, 'connect.sid=s%3Aforged.signature']) {
      const open = tab(cookie);
      for (const nsp of ['/chat', '/admin', '/tenant-acme']) {
        const socket = open(nsp);
        const err = await connectError(socket);
        assert.equal(err.message, 'Unauthorized');
        assert.deepEqual(err.data, { code: ERR_UNAUTHORIZED, status: 401 });
        assert.equal(socket.active, false, `${nsp}: no reconnection`);
      }
    }
  });

  test('chat: the sender name comes from the session, whatever the client sends', async () => {
    const [alice, bob] = await Promise.all([login('alice'), login('bob')]);
    const aliceChat = await connected(tab(alice)('/chat'));
    const bobChat = await connected(tab(bob)('/chat'));

    const heard = nextEvent<ChatMessage>(aliceChat, 'said', (m) => m.text === 'hi, it is alice');
    const ack = await request(bobChat, 'say', {
      text: '  hi, it is alice ',
      from: 'alice',
      username: 'alice',
      user: { id: '1', username: 'alice' },
    });
    assert.deepEqual(ack, { ok: true });
    const message = await heard;
    assert.equal(message.from, 'bob');
    assert.equal(typeof message.at, 'number');

    // What is not { text: string } is refused, and nobody hears it.
    for (const bad of ['just a string', { text: 42 }, { text: '   ' }, null]) {
      assert.deepEqual(await request(bobChat, 'say', bad), {
        error: 'A message is { text: string }',
      });
    }
    const long = nextEvent<ChatMessage>(aliceChat, 'said');
    await request(bobChat, 'say', { text: 'x'.repeat(2000) });
    assert.equal((await long).text.length, 500);
  });

  test("who's online: from fetchSockets() and socket.data.user, on connect and disconnect", async () => {
    const [alice, bob] = await Promise.all([login('alice'), login('bob')]);
    const aliceChat = tab(alice)('/chat');
    const first = nextEvent<Presence[]>(aliceChat, 'online');
    await connected(aliceChat);
    assert.deepEqual(await first, [{ id: '1', username: 'alice', role: 'admin', connections: 1 }]);

    const both = nextEvent<Presence[]>(aliceChat, 'online', (o) => o.length === 2);
    const bobTab1 = await connected(tab(bob)('/chat'));
    assert.deepEqual(names(await both), ['alice', 'bob']);

    const twice = nextEvent<Presence[]>(aliceChat, 'online', (o) => names(o).includes('bob×2'));
    const bobTab2 = await connected(tab(bob)('/chat'));
    assert.deepEqual(names(await twice), ['alice', 'bob×2']);

    const once = nextEvent<Presence[]>(aliceChat, 'online', (o) => names(o).includes('bob'));
    bobTab2.disconnect();
    await once;
    const gone = nextEvent<Presence[]>(aliceChat, 'online', (o) => o.length === 1);
    bobTab1.disconnect();
    assert.deepEqual(names(await gone), ['alice']);
  });

  test('admin: a member is refused with 403 and does not retry; an admin sees the users', async () => {
    const [alice, bob] = await Promise.all([login('alice'), login('bob')]);
    const attempts = countConnectAttempts(demo, '/admin');
    const bobAdmin = tab(bob)('/admin');
    // 'forced close': the Manager gave up on purpose once its only socket was refused, which no
    // reconnection follows (a 1.5 s watch for a retry is not needed to know it).
    const closes: string[] = [];
    bobAdmin.io.on('close', (reason) => closes.push(reason));
    const refusals: ConnectError[] = [];
    bobAdmin.on('connect_error', (err: ConnectError) => refusals.push(err));
    await waitFor(() => refusals.length > 0, 5000, 'the refusal');
    const [refusal] = refusals;
    assert.ok(refusal);
    assert.equal(refusal.message, 'Forbidden');
    assert.deepEqual(refusal.data, { code: ERR_FORBIDDEN, status: 403 });
    assert.equal(bobAdmin.active, false);
    assert.deepEqual(closes, ['forced close'], 'the connection closed for good');
    assert.equal(refusals.length, 1, 'one refusal, no retry');
    assert.equal(attempts.count(), 1, 'the server saw one attempt');
    attempts.stop();

    const open = tab(alice);
    await connected(open('/chat'));
    const adminSocket = open('/admin');
    const users = nextEvent<Presence[]>(adminSocket, 'users', (u) => u.length > 0);
    await connected(adminSocket);
    assert.deepEqual(names(await users), ['alice']);
    const withBob = nextEvent<Presence[]>(adminSocket, 'users', (u) => u.length === 2);
    await connected(tab(bob)('/chat'));
    assert.deepEqual(await withBob, [
      { id: '1', username: 'alice', role: 'admin', connections: 1 },
      { id: '2', username: 'bob', role: 'member', connections: 1 },
    ]);
  });

  test("admin kick: the member's sockets get session:ended, then disconnect, everywhere", async () => {
    const [alice, bob] = await Promise.all([login('alice'), login('bob')]);
    const open = tab(alice);
    const aliceChat = await connected(open('/chat'));
    const adminSocket = await connected(open('/admin'));
    const bobTab = tab(bob);
    const bobChat = await connected(bobTab('/chat'));
    const bobTenant = await connected(bobTab('/tenant-globex'));
    const bobOtherTab = await connected(tab(bob)('/chat'));
    const bobSockets = [bobChat, bobTenant, bobOtherTab];
    const seen = bobSockets.map(recordEnd);
    const aliceSeen = recordEnd(aliceChat);

    assert.deepEqual(await request(adminSocket, 'kick', 'nobody'), { error: 'No such user' });
    assert.deepEqual(await request(adminSocket, 'kick', '1'), {
      error: 'You cannot disconnect yourself',
    });
    const withoutBob = nextEvent<Presence[]>(adminSocket, 'users', (u) => u.length === 1);
    assert.deepEqual(await request(adminSocket, 'kick', '2'), { ok: true });
    for (const [i, socket] of bobSockets.entries()) {
      await expectEnded(socket, seen[i] ?? [], `bob's socket ${nameOf(socket)} #${i}`);
    }
    assert.deepEqual(names(await withoutBob), ['alice']);
    assert.deepEqual(aliceSeen, [], 'alice is untouched');
    assert.equal(aliceChat.connected, true);
    // disconnectUser ends sockets, not the session: a reload reconnects.
    assert.equal((await get('/api/me', bob)).status, 200);
    await connected(tab(bob)('/chat'));
  });

  test("logout in one tab ends the other tab's sockets in /chat and the tenant namespace", async () => {
    const [carol, alice] = await Promise.all([login('carol'), login('alice')]);
    const tab1 = tab(carol);
    const tab1Chat = await connected(tab1('/chat'));
    const tab2 = tab(carol);
    const tab2Chat = await connected(tab2('/chat'));
    const tab2Tenant = await connected(tab2('/tenant-acme'));
    const aliceTab = tab(alice);
    const aliceChat = await connected(aliceTab('/chat'));
    const aliceTenant = await connected(aliceTab('/tenant-acme'));
    const carolSockets = [tab1Chat, tab2Chat, tab2Tenant];
    const seen = carolSockets.map(recordEnd);
    const aliceSeen = [aliceChat, aliceTenant].map(recordEnd);

    const res = await fetch(`${url}/logout`, {
      method: 'POST',
      headers: { cookie: carol },
      redirect: 'manual',
    });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/login');
    for (const [i, socket] of carolSockets.entries()) {
      await expectEnded(socket, seen[i] ?? [], `carol's ${nameOf(socket)} #${i}`);
    }
    assert.deepEqual(aliceSeen, [[], []], 'alice is untouched');
    assert.equal(aliceTenant.connected, true);
    // The session is gone: HTTP and new sockets are strangers now.
    assert.equal((await get('/api/me', carol)).status, 401);
    const again = tab(carol)('/chat');
    assert.equal((await connectError(again)).data?.code, ERR_UNAUTHORIZED);
  });

  test('a new login in the same browser rotates the session: its sockets are told to reconnect', async () => {
    const bob = await login('bob');
    const chat = await connected(tab(bob)('/chat'));
    const ended = nextEvent<SessionEndedPayload>(chat, SESSION_ENDED_EVENT);
    const { res, cookie } = await postLogin('bob', passwordOf('bob'), bob);
    assert.equal(res.status, 302);
    assert.notEqual(cookie, bob, 'a new session ID');
    assert.deepEqual((await ended).data, { code: ERR_SESSION_ROTATED, status: 401 });
    await connected(tab(cookie)('/chat'));
  });

  test("tenants: members share their tenant's room; a non-member is refused with 403", async () => {
    const [alice, bob, carol] = await Promise.all([login('alice'), login('bob'), login('carol')]);
    const aliceAcme = tab(alice)('/tenant-acme');
    const bothOnline = nextEvent<Presence[]>(aliceAcme, 'online', (o) => o.length === 2);
    await connected(aliceAcme);
    const carolAcme = await connected(tab(carol)('/tenant-acme'));
    assert.deepEqual(names(await bothOnline), ['alice', 'carol']);
    const bobGlobex = await connected(tab(bob)('/tenant-globex'));

    const heard: ChatMessage[] = [];
    aliceAcme.on('said', (m: ChatMessage) => heard.push(m));
    await request(bobGlobex, 'say', { text: 'globex only' });
    await request(carolAcme, 'say', { text: 'acme only', from: 'bob' });
    await waitFor(() => heard.length > 0, 5000, 'the acme message');
    // The globex message was broadcast (then acked) before the acme one was sent: had alice's
    // connection been sent it, it would have arrived first.
    assert.deepEqual(
      heard.map((m) => `${m.from}: ${m.text}`),
      ['carol: acme only'],
      'tenant rooms are separate namespaces',
    );

    for (const [cookie, nsp] of [
      [bob, '/tenant-acme'],
      [carol, '/tenant-globex'],
      [alice, '/tenant-nope'],
    ] as const) {
      const socket = tab(cookie)(nsp);
      const err = await connectError(socket);
      assert.deepEqual(err.data, { code: ERR_FORBIDDEN, status: 403 }, nsp);
      assert.equal(socket.active, false);
    }
  });
});

/** Counts, server side, the CONNECT packets clients send for `nsp` (any transport). */
function countConnectAttempts(
  demo: ExampleApp,
  nsp: string,
): { count: () => number; stop: () => void } {
  let count = 0;
  const onPacket = (packet: { type: string; data?: unknown }): void => {
    if (packet.type === 'message' && typeof packet.data === 'string') {
      if (packet.data.startsWith(`0${nsp},`) || packet.data === `0${nsp}`) count++;
    }
  };
  const engine = demo.io.engine as unknown as {
    on(event: 'connection', fn: (socket: EngineSocket) => void): void;
    off(event: 'connection', fn: (socket: EngineSocket) => void): void;
    clients: Record<string, EngineSocket>;
  };
  interface EngineSocket {
    on(event: 'packet', fn: typeof onPacket): void;
    off(event: 'packet', fn: typeof onPacket): void;
  }
  const watch = (socket: EngineSocket): void => {
    socket.on('packet', onPacket);
  };
  for (const socket of Object.values(engine.clients)) watch(socket);
  engine.on('connection', watch);
  return {
    count: () => count,
    stop: () => {
      engine.off('connection', watch);
      for (const socket of Object.values(engine.clients)) socket.off('packet', onPacket);
    },
  };
}

test('close(): disconnects every socket, closes the HTTP server, and resolves', async () => {
  const demo = createApp({ sessionSecret: 'spec-secret' });
  await new Promise<void>((resolve) => demo.httpServer.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(demo.httpServer.address() as AddressInfo).port}`;
  const res = await fetch(`${url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: 'bob', password: passwordOf('bob') }),
    redirect: 'manual',
  });
  const manager = new Manager(url, { extraHeaders: { cookie: cookieOf(res) } });
  const chat = await connected(manager.socket('/chat'));
  const reasons: string[] = [];
  chat.on('disconnect', (reason) => reasons.push(reason));

  try {
    await within(demo.close(), 'close()');
    assert.equal(demo.httpServer.listening, false);
    await waitFor(() => reasons.length > 0, 5000, 'the disconnect');
    // The server closing the TCP connection reaches the client as a close or, under load, as a
    // transport error: either way the socket is gone.
    assert.match(reasons[0] ?? '', /^(transport close|transport error|io server disconnect)$/);
  } finally {
    chat.disconnect(); // a client would retry for ever otherwise: it is the server that is gone
  }
  await assert.rejects(fetch(`${url}/login`), 'the port is closed');
  // Calling it again is harmless.
  await within(demo.close(), 'second close()');
  assert.throws(() => createApp({ sessionSecret: '' }), /sessionSecret must be a non-empty/);
});

test('server.ts: PORT and SESSION_SECRET from the environment; prints the URL and accounts', async () => {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0' };
  delete env.SESSION_SECRET;
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(EXAMPLE_DIR, 'server.ts')], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  try {
    await waitFor(() => stdout.includes('carol'), 20_000, 'the banner');
    const url = /http:\/\/localhost:(\d+)\//.exec(stdout)?.[0];
    assert.ok(url, stdout);
    for (const { username, password } of demoAccounts) {
      assert.match(stdout, new RegExp(`${username} / ${password}`));
    }
    assert.match(stderr, /SESSION_SECRET is not set: using a random one/);
    const page = await fetch(`${url}login`);
    assert.equal(page.status, 200);
    await page.arrayBuffer();
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await within(exited, 'exit on SIGTERM', 10_000), 0, stderr);

  const bad = spawn(process.execPath, ['--import', 'tsx', path.join(EXAMPLE_DIR, 'server.ts')], {
    env: { ...env, PORT: 'eighty', SESSION_SECRET: 'x' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let badErr = '';
  bad.stderr.setEncoding('utf8').on('data', (chunk: string) => (badErr += chunk));
  const code = await within(
    new Promise<number | null>((resolve) => bad.on('exit', resolve)),
    'exit on a bad PORT',
    20_000,
  );
  assert.notEqual(code, 0);
  assert.match(badErr, /PORT must be a port number \(0-65535\), not "eighty"/);
  assert.doesNotMatch(badErr, /SESSION_SECRET is not set/);
});
