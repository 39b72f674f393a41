// The demo's account page and "sign out everywhere" (examples/passport/account.ts), on the
// package's session registry: a user's browsers, with a socket or without, listed on one page and
// signed out from it; an admin signing a user out on every browser. On one node (the memory
// registry), then on two copies over a real redis-server (the Redis registry), as
// example-passport-cluster.spec.ts starts them.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { ERR_SESSION_REVOKED } from 'socket.io-session-auth';
import {
  createTestKit,
  expectEnded,
  type Agent,
  type TestKit,
  type TestNode,
} from 'socket.io-session-auth/testing';
import type { SignOutReply } from '../../examples/passport/account.js';
import { createApp } from '../../examples/passport/app.js';
import { connectRedis } from '../../examples/passport/redis.js';
import { demoAccounts } from '../../examples/passport/users.js';
import { redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';

/** One row of the account page. */
interface Device {
  handle: string;
  thisDevice: boolean;
  sockets: number;
}

/** The rows of the account page's table, in the page's order. */
function devicesIn(html: string): Device[] {
  return html
    .split('<tr data-handle="')
    .slice(1)
    .map((row) => {
      const handle = row.slice(0, row.indexOf('"'));
      const sockets = /<td[^>]* class="sockets">(\d+)<\/td>/.exec(row)?.[1];
      assert.ok(sockets !== undefined, `a connections cell in ${row}`);
      const thisDevice = row.startsWith(`${handle}" class="this-device"`);
      assert.equal(row.includes('(this device)'), thisDevice, `"(this device)" only on its row`);
      return { handle, thisDevice, sockets: Number(sockets) };
    });
}

const at = (node: TestNode | undefined): { node?: TestNode } => (node ? { node } : {});

/** GET /account (or where a button sent the browser) as `agent`: the page, and its devices. */
async function accountOf(
  agent: Agent,
  node?: TestNode,
  path = '/account',
): Promise<{ html: string; devices: Device[] }> {
  const res = await agent.fetch(path, at(node));
  const html = await res.text();
  assert.equal(res.status, 200, `GET ${path} as ${agent.name}: ${res.status} ${html}`);
  return { html, devices: devicesIn(html) };
}

/** A form POST, as the page's buttons send it; resolves with where it sends the browser. */
async function press(
  agent: Agent,
  path: string,
  form: Record<string, string> = {},
  node?: TestNode,
): Promise<string | null> {
  const res = await agent.fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
    ...at(node),
  });
  await res.arrayBuffer();
  assert.equal(res.status, 303, `POST ${path} as ${agent.name}`);
  return res.headers.get('location');
}

/** Who the app says the agent's browser is signed in as (GET /api/session), or null. */
async function signedInAs(agent: Agent, node?: TestNode): Promise<string | null> {
  const res = await agent.fetch('/api/session', at(node));
  const { user } = (await res.json()) as { user: { username: string } | null };
  return user?.username ?? null;
}

/** The one device of `devices` that is not this one. */
function other(devices: Device[]): Device {
  const others = devices.filter((d) => !d.thisDevice);
  assert.equal(others.length, 1, JSON.stringify(devices));
  return others[0] ?? assert.fail();
}

function passwordOf(username: string): string {
  return demoAccounts.find((a) => a.username === username)?.password ?? assert.fail(username);
}

describe('examples/passport: the account page, on one node', () => {
  let kit: TestKit;
  beforeEach(async () => {
    kit = await createTestKit(() => createApp({ sessionSecret: 'account-spec' }));
  });
  afterEach(() => kit.close());
  const login = (username: string): Promise<Agent> =>
    kit.loginWith('/login', { username, password: passwordOf(username) });

  test('two browsers of alice are listed, this one marked; "sign out all others" signs the other out and ends its socket', async () => {
    const laptop = await login('alice');
    const phone = await login('alice');
    const phoneChat = await phone.connect('/chat');

    const page = await accountOf(laptop);
    // This device first (no socket: the page is plain HTTP), then the phone and its socket.
    assert.deepEqual(
      page.devices.map((d) => [d.thisDevice, d.sockets]),
      [
        [true, 0],
        [false, 1],
      ],
    );
    // Handles only: neither session ID is anywhere in the page.
    for (const agent of [laptop, phone]) {
      const sessionID = (await agent.session())?.id;
      assert.ok(sessionID, `${agent.name} has a session`);
      assert.equal(page.html.includes(sessionID), false, 'a session ID in the page');
    }

    const to = await press(laptop, '/account/sign-out-others');
    assert.equal(to, '/account?signed-out=1');
    await expectEnded(phoneChat, ERR_SESSION_REVOKED);
    assert.equal(await signedInAs(phone), null, 'the phone is signed out');
    const again = await phone.fetch('/account');
    assert.deepEqual([again.status, again.headers.get('location')], [303, '/login']);
    // The laptop is still signed in, alone on its page, told what the button did.
    const after = await accountOf(laptop, undefined, to);
    assert.deepEqual(
      after.devices.map((d) => d.thisDevice),
      [true],
    );
    assert.match(after.html, /Signed out 1 device\./);
  });

  test('"sign out" one device by its handle; this device\'s is a logout; another user\'s handle ends nothing', async () => {
    const laptop = await login('alice');
    const tablet = await login('alice');
    const bob = await login('bob');
    const laptopChat = await laptop.connect('/chat');
    const bobChat = await bob.connect('/chat');

    const { devices } = await accountOf(laptop);
    assert.equal(
      await press(laptop, '/account/sign-out', { handle: other(devices).handle }),
      '/account?signed-out=1',
    );
    assert.equal(await signedInAs(tablet), null, 'the tablet is signed out');
    assert.equal(await signedInAs(laptop), 'alice');

    // A handle of bob's session, posted by alice: endSessions looks only among alice's.
    const bobs = (await accountOf(bob)).devices;
    assert.equal(bobs.length, 1);
    const handle = bobs[0]?.handle ?? assert.fail();
    assert.equal(await press(laptop, '/account/sign-out', { handle }), '/account?signed-out=0');
    assert.equal(await signedInAs(bob), 'bob');
    // His socket is still there: it answers (a round trip after the POST's).
    assert.deepEqual(await bobChat.emitWithAck('say', { text: 'still here' }), { ok: true });
    await bobChat.refuteEvent('session:ended', { within: 0 });

    const bad = await laptop.fetch('/account/sign-out', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'handle=%3Cscript%3E',
    });
    assert.equal(bad.status, 400);
    await bad.arrayBuffer();

    // This device: a logout, and to the login page.
    const mine = (await accountOf(laptop)).devices.find((d) => d.thisDevice) ?? assert.fail();
    assert.equal(await press(laptop, '/account/sign-out', { handle: mine.handle }), '/login');
    await expectEnded(laptopChat, ERR_SESSION_REVOKED);
    assert.equal(await signedInAs(laptop), null);
  });

  test('strangers get the login page; the forms rely on the SameSite=Lax session cookie', async () => {
    const stranger = kit.anonymous();
    const page = await stranger.fetch('/account');
    assert.deepEqual([page.status, page.headers.get('location')], [303, '/login']);
    assert.equal(await press(stranger, '/account/sign-out-others'), '/login');
    // What keeps another site's form from posting these as the user: a cross-site POST carries no
    // SameSite=Lax cookie, so it comes as a stranger's, above.
    const res = await fetch(`${kit.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'carol', password: passwordOf('carol') }).toString(),
      redirect: 'manual',
    });
    await res.arrayBuffer();
    assert.match(res.headers.get('set-cookie') ?? '', /; SameSite=Lax/i);
  });

  test('the admin signs bob out everywhere: every browser, with a socket or not', async () => {
    const alice = await login('alice');
    const bobs = [await login('bob'), await login('bob')];
    const bobChat = await (bobs[0] ?? assert.fail()).connect('/chat');
    const admin = await alice.connect('/admin');

    const reply = (userId: string): Promise<SignOutReply> =>
      admin.emitWithAck('sign-out-everywhere', userId) as Promise<SignOutReply>;
    assert.deepEqual(await reply('42'), { error: 'No such user' });
    assert.deepEqual(await reply('1'), { error: 'Sign yourself out from your account page' });
    assert.deepEqual(await reply('2'), { ok: true, sessions: 2, sockets: 1 });
    await expectEnded(bobChat, ERR_SESSION_REVOKED);
    for (const bob of bobs) assert.equal(await signedInAs(bob), null, `${bob.name} signed out`);
    assert.equal(await signedInAs(alice), 'alice');
  });
});

describe(
  'examples/passport: the account page, on two copies over Redis',
  { skip: redisUnavailable() },
  () => {
    let redis: RedisServer | undefined;
    let kit: TestKit;
    let a: TestNode;
    let b: TestNode;

    before(async () => {
      const server = await startRedis();
      redis = server;
      kit = await createTestKit(async () => {
        const shared = await connectRedis(server.url);
        const demo = createApp({ sessionSecret: 'account-cluster-spec', ...shared.options });
        const close = async (): Promise<void> => {
          await demo.close();
          await shared.quit();
        };
        return { ...demo, close };
      });
      [a, b] = [kit.nodes[0] ?? assert.fail(), await kit.node()];
    });
    after(async () => {
      await kit.close();
      await redis?.stop();
    });
    beforeEach(() => kit.resetLimits());
    // Each test its own user: the sessions of one stay in the shared Redis for the next.
    const login = (username: string, node: TestNode): Promise<Agent> =>
      kit.loginWith('/login', { username, password: passwordOf(username) }, { node });

    test("browsers signed in on B, one with its socket on B, are on A's page, and signed out from A", async () => {
      const phone = await login('carol', b);
      const phoneChat = await phone.connect('/chat', { node: b });
      const tablet = await login('carol', b); // no socket: only the registry in Redis knows it on A
      const laptop = await login('carol', a);

      const { devices } = await accountOf(laptop, a);
      assert.deepEqual(devices.map((d) => [d.thisDevice, d.sockets]).sort(), [
        [false, 0],
        [false, 1],
        [true, 0],
      ]);
      const idle = devices.find((d) => !d.thisDevice && d.sockets === 0) ?? assert.fail();
      const to = await press(laptop, '/account/sign-out', { handle: idle.handle }, a);
      assert.equal(to, '/account?signed-out=1');
      assert.equal(await signedInAs(tablet, b), null, 'the tablet is signed out, on B');
      assert.equal(await signedInAs(phone, b), 'carol', 'the phone is not');

      assert.equal(await press(laptop, '/account/sign-out-others', {}, a), '/account?signed-out=1');
      await expectEnded(phoneChat, ERR_SESSION_REVOKED);
      assert.equal(await signedInAs(phone, b), null, 'the phone is signed out, on B');
      assert.deepEqual(
        (await accountOf(laptop, b)).devices.map((d) => d.thisDevice),
        [true],
        "B's page: A's browser alone",
      );
    });

    test('the admin on A signs bob out everywhere: his browser on B with its socket, and one on A', async () => {
      const alice = await login('alice', a);
      const bobOnB = await login('bob', b);
      const bobOnA = await login('bob', a);
      const bobChat = await bobOnB.connect('/chat', { node: b });
      const admin = await alice.connect('/admin', { node: a });

      const reply = (await admin.emitWithAck('sign-out-everywhere', '2')) as SignOutReply;
      assert.deepEqual(reply, { ok: true, sessions: 2, sockets: 1 });
      await expectEnded(bobChat, ERR_SESSION_REVOKED);
      assert.equal(await signedInAs(bobOnB, b), null);
      assert.equal(await signedInAs(bobOnA, a), null);
    });
  },
);
