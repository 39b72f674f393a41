// The demo app of examples/passport, driven with the package's own test kit
// (socket.io-session-auth/testing): real HTTP, the app's real session store and Passport, the
// real socket.io-client. Each test has an app of its own, and the kit closes it with every socket
// the test opened.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import {
  ERR_FORBIDDEN,
  ERR_SESSION_REVOKED,
  ERR_SESSION_ROTATED,
  ERR_UNAUTHORIZED,
  SESSION_ENDED_EVENT,
} from 'socket.io-session-auth';
import {
  createTestKit,
  expectEnded,
  expectRefused,
  type Agent,
  type TestKit,
} from 'socket.io-session-auth/testing';
import { createApp, type ChatMessage, type Presence } from '../examples/passport/app.js';
import {
  authenticate,
  demoAccounts,
  findUserById,
  hashPassword,
  verifyPassword,
} from '../examples/passport/users.js';
import { waitFor } from './support/client.js';
import { within } from './support/bounded.js';
import { countConnectAttempts } from './support/connect-attempts.js';

const EXAMPLE_DIR = path.join(__dirname, '..', 'examples', 'passport');

const names = (online: Presence[]): string[] =>
  online.map((u) => (u.connections > 1 ? `${u.username}×${u.connections}` : u.username));

function passwordOf(username: string): string {
  const account = demoAccounts.find((a) => a.username === username);
  assert.ok(account, `no demo account ${username}`);
  return account.password;
}

const userOf = (id: string): Express.User => findUserById(id) ?? assert.fail(`no user ${id}`);

describe('examples/passport', () => {
  let kit: TestKit;
  // Logged in without the form (loginAs): no scrypt, the app's own session and serializeUser.
  const as = (id: string): Promise<Agent> => kit.loginAs(userOf(id));

  // A fresh app for each test: who is online, and who was kicked, start from nobody.
  beforeEach(async () => {
    kit = await createTestKit(() => createApp({ sessionSecret: 'spec-secret' }));
  });
  afterEach(() => kit.close());

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
    const stranger = kit.anonymous();
    const home = await stranger.fetch('/');
    assert.equal(home.status, 303);
    assert.equal(home.headers.get('location'), '/login');
    assert.equal((await stranger.fetch('/api/me')).status, 401);

    const page = await (await stranger.fetch('/login')).text();
    for (const { username, password } of demoAccounts) {
      assert.match(page, new RegExp(`<code>${username}</code></td><td><code>${password}</code>`));
    }
    assert.match(page, /<form method="post" action="\/login">/);
    assert.doesNotMatch(page, /Wrong username or password/);

    const script = await stranger.fetch('/socket.io/socket.io.js');
    assert.equal(script.status, 200, 'the server serves the Socket.IO client');
    await script.arrayBuffer();
    assert.equal((await stranger.fetch('/app.js')).status, 200);
    assert.equal(stranger.cookie, '', 'no session for a stranger');
  });

  test('login: a form POST signs in; a wrong password or an unknown user is refused', async () => {
    const alice = await kit.loginWith('/login', {
      username: 'alice',
      password: passwordOf('alice'),
    });
    assert.match(alice.cookie, /^connect\.sid=/);
    const home = await alice.fetch('/');
    assert.equal(home.status, 200);
    assert.match(await home.text(), /<script src="\/socket\.io\/socket\.io\.js"><\/script>/);
    assert.deepEqual(await (await alice.fetch('/api/me')).json(), {
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
      const stranger = kit.anonymous();
      const refused = await stranger.fetch('/login', {
        method: 'POST',
        body: new URLSearchParams({ username, password }),
      });
      assert.equal(refused.status, 302, `${username} / ${password}`);
      assert.equal(refused.headers.get('location'), '/login?error=1');
      assert.equal(stranger.cookie, '', 'no session for a failed login');
    }
    const page = await (await kit.anonymous().fetch('/login?error=1')).text();
    assert.match(page, /role="alert">Wrong username or password\.</);
  });

  test('anonymous sockets are refused with 401 in every namespace, and do not retry', async () => {
    const forged = { extraHeaders: { cookie: 'connect.sid=s%3Aforged.signature' } };
    for (const client of [{}, forged]) {
      for (const nsp of ['/chat', '/admin', '/tenant-acme']) {
        // reconnection on, as in a browser: the refusal stops it all the same.
        const refusal = await expectRefused(
          kit.anonymous().connect(nsp, { reconnection: true, client }),
          ERR_UNAUTHORIZED,
        );
        assert.deepEqual(refusal, {
          message: 'Unauthorized',
          data: { code: ERR_UNAUTHORIZED, status: 401 },
        });
      }
    }
  });

  test('chat: the sender name comes from the session, whatever the client sends', async () => {
    const [alice, bob] = await Promise.all([as('1'), as('2')]);
    const aliceChat = await alice.connect('/chat');
    const bobChat = await bob.connect('/chat');
    const ack: unknown = await bobChat.emitWithAck('say', {
      text: '  hi, it is alice ',
      from: 'alice',
      username: 'alice',
      user: { id: '1', username: 'alice' },
    });
    assert.deepEqual(ack, { ok: true });
    const message = await aliceChat.expectEvent<ChatMessage>('said');
    assert.deepEqual(
      { ...message, at: typeof message.at },
      {
        from: 'bob',
        text: 'hi, it is alice',
        at: 'number',
      },
    );

    // What is not { text: string } is refused, and nobody hears it.
    for (const bad of ['just a string', { text: 42 }, { text: '   ' }, null]) {
      assert.deepEqual(await bobChat.emitWithAck('say', bad), {
        error: 'A message is { text: string }',
      });
    }
    await bobChat.emitWithAck('say', { text: 'x'.repeat(2000) });
    assert.equal((await aliceChat.expectEvent<ChatMessage>('said')).text.length, 500);
  });

  test("who's online: from fetchSockets() and socket.data.user, on connect and disconnect", async () => {
    const [alice, bob] = await Promise.all([as('1'), as('2')]);
    const aliceChat = await alice.connect('/chat');
    const online = (check: (o: Presence[]) => boolean): Promise<Presence[]> =>
      aliceChat.expectEvent<Presence[]>('online', { where: check });
    assert.deepEqual(await online(() => true), [
      { id: '1', username: 'alice', role: 'admin', connections: 1 },
    ]);
    const bobTab1 = await bob.connect('/chat');
    assert.deepEqual(names(await online((o) => o.length === 2)), ['alice', 'bob']);
    const bobTab2 = await bob.connect('/chat');
    assert.deepEqual(names(await online((o) => names(o).includes('bob×2'))), ['alice', 'bob×2']);
    bobTab2.disconnect();
    await online((o) => names(o).includes('bob'));
    bobTab1.disconnect();
    assert.deepEqual(names(await online((o) => o.length === 1)), ['alice']);
  });

  test('admin: a member is refused with 403 and does not retry; an admin sees the users', async () => {
    const [alice, bob] = await Promise.all([as('1'), as('2')]);
    const attempts = countConnectAttempts(kit.io, '/admin');
    const refusal = await expectRefused(
      bob.connect('/admin', { reconnection: true }),
      ERR_FORBIDDEN,
    );
    assert.deepEqual(refusal, { message: 'Forbidden', data: { code: ERR_FORBIDDEN, status: 403 } });
    assert.equal(attempts.count(), 1, 'the server saw one attempt');
    attempts.stop();

    const tab = alice.tab();
    await tab.connect('/chat');
    const adminSocket = await tab.connect('/admin');
    const users = (check: (u: Presence[]) => boolean): Promise<Presence[]> =>
      adminSocket.expectEvent<Presence[]>('users', { where: check });
    assert.deepEqual(names(await users((u) => u.length > 0)), ['alice']);
    await bob.connect('/chat');
    assert.deepEqual(await users((u) => u.length === 2), [
      { id: '1', username: 'alice', role: 'admin', connections: 1 },
      { id: '2', username: 'bob', role: 'member', connections: 1 },
    ]);
  });

  test("admin kick: the member's sockets get session:ended, then disconnect, everywhere", async () => {
    const [alice, bob] = await Promise.all([as('1'), as('2')]);
    const aliceTab = alice.tab();
    const aliceChat = await aliceTab.connect('/chat');
    const adminSocket = await aliceTab.connect('/admin');
    const bobTab = bob.tab();
    const bobSockets = [
      await bobTab.connect('/chat'),
      await bobTab.connect('/tenant-globex'),
      await bob.connect('/chat'),
    ];

    assert.deepEqual(await adminSocket.emitWithAck('kick', 'nobody'), { error: 'No such user' });
    assert.deepEqual(await adminSocket.emitWithAck('kick', '1'), {
      error: 'You cannot disconnect yourself',
    });
    assert.deepEqual(await adminSocket.emitWithAck('kick', '2'), { ok: true });
    for (const socket of bobSockets) await expectEnded(socket, ERR_SESSION_REVOKED);
    const withoutBob = await adminSocket.expectEvent<Presence[]>('users', {
      where: (u) => !names(u).includes('bob'),
    });
    assert.deepEqual(names(withoutBob), ['alice']);
    await aliceChat.refuteEvent(SESSION_ENDED_EVENT, { within: 0 });
    assert.equal(aliceChat.connected, true, 'alice is untouched');
    // disconnectUser ends sockets, not the session: a reload reconnects.
    assert.equal((await bob.fetch('/api/me')).status, 200);
    await bob.connect('/chat');
  });

  test("logout in one tab ends the other tab's sockets in /chat and the tenant namespace", async () => {
    const [carol, alice] = await Promise.all([as('3'), as('1')]);
    const carolTab2 = carol.tab();
    const carolSockets = [
      await carol.connect('/chat'),
      await carolTab2.connect('/chat'),
      await carolTab2.connect('/tenant-acme'),
    ];
    const aliceTab = alice.tab();
    const aliceSockets = [await aliceTab.connect('/chat'), await aliceTab.connect('/tenant-acme')];

    const res = await carol.fetch('/logout', { method: 'POST' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/login');
    for (const socket of carolSockets) await expectEnded(socket, ERR_SESSION_REVOKED);
    for (const socket of aliceSockets) {
      await socket.refuteEvent(SESSION_ENDED_EVENT, { within: 0 });
      assert.equal(socket.connected, true, 'alice is untouched');
    }
    // The session is gone: HTTP and new sockets are strangers now.
    assert.equal((await carol.fetch('/api/me')).status, 401);
    await expectRefused(carol.connect('/chat'), ERR_UNAUTHORIZED);
  });

  test('a new login in the same browser rotates the session: its sockets are told to reconnect', async () => {
    const bob = await as('2');
    const before = bob.cookie;
    const chat = await bob.connect('/chat');
    const login = await bob.fetch('/login', {
      method: 'POST',
      body: new URLSearchParams({ username: 'bob', password: passwordOf('bob') }),
    });
    assert.equal(login.status, 302);
    assert.notEqual(bob.cookie, before, 'a new session ID');
    await expectEnded(chat, ERR_SESSION_ROTATED);
    await bob.connect('/chat');
  });

  test("tenants: members share their tenant's room; a non-member is refused with 403", async () => {
    const [alice, bob, carol] = await Promise.all([as('1'), as('2'), as('3')]);
    const aliceAcme = await alice.connect('/tenant-acme');
    const carolAcme = await carol.connect('/tenant-acme');
    const both = await aliceAcme.expectEvent<Presence[]>('online', {
      where: (o) => o.length === 2,
    });
    assert.deepEqual(names(both), ['alice', 'carol']);
    const bobGlobex = await bob.connect('/tenant-globex');

    await bobGlobex.emitWithAck('say', { text: 'globex only' });
    await carolAcme.emitWithAck('say', { text: 'acme only', from: 'bob' });
    const heard = await aliceAcme.expectEvent<ChatMessage>('said');
    assert.equal(`${heard.from}: ${heard.text}`, 'carol: acme only');
    // The globex message was broadcast (then acked) before the acme one was sent: had alice's
    // connection been sent it, it would be in her mailbox, before the acme one.
    await aliceAcme.refuteEvent('said', { within: 0 });

    for (const [agent, nsp] of [
      [bob, '/tenant-acme'],
      [carol, '/tenant-globex'],
      [alice, '/tenant-nope'],
    ] as const) {
      await expectRefused(agent.connect(nsp, { reconnection: true }), ERR_FORBIDDEN);
    }
  });
});

test('close(): disconnects every socket, closes the HTTP server, and resolves', async () => {
  const demo = createApp({ sessionSecret: 'spec-secret' });
  const kit = await createTestKit(demo);
  try {
    const chat = await (await kit.loginAs(userOf('2'))).connect('/chat');
    const gone = new Promise<string>((resolve) => chat.once('disconnect', resolve));
    await within(demo.close(), 'close()');
    assert.equal(demo.httpServer.listening, false);
    // The server closing the TCP connection reaches the client as a close or, under load, as a
    // transport error: either way the socket is gone.
    assert.match(
      await within(gone, 'the disconnect'),
      /^(transport close|transport error|io server disconnect)$/,
    );
    await assert.rejects(fetch(`${kit.url}/login`), 'the port is closed');
    // Calling it again is harmless.
    await within(demo.close(), 'second close()');
  } finally {
    await kit.close();
  }
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
