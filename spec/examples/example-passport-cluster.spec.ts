// The demo on several nodes sharing a real redis-server for sessions and the Socket.IO adapter,
// as examples/passport/redis.ts wires them (what server.ts does with REDIS_URL): in-process nodes
// started by the test kit, and server.ts itself in a process of its own.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, beforeEach, describe, test } from 'node:test';
import { ERR_SESSION_EXPIRED, ERR_SESSION_REVOKED } from 'socket.io-session-auth';
import {
  createTestKit,
  expectAckError,
  expectEnded,
  expectJoin,
  expectRefused,
  type TestKit,
  type TestNode,
} from 'socket.io-session-auth/testing';
import { createApp, type ChatMessage, type ExampleApp } from '../../examples/passport/app.js';
import { connectRedis } from '../../examples/passport/redis.js';
import { findUserById } from '../../examples/passport/users.js';
import { waitFor } from '../support/client.js';
import { within } from '../support/bounded.js';
import { freePort, redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';

const skip = redisUnavailable();
const SECRET = 'cluster-spec';
const userOf = (id: string): Express.User => findUserById(id) ?? assert.fail(`no user ${id}`);

/** What the page's presence feed carries (docs/presence.md). */
interface FeedEntry {
  id: string;
  user: { username: string };
}
interface FeedDiff {
  joins: FeedEntry[];
  leaves: FeedEntry[];
}
const namesOf = (entries: FeedEntry[]): string[] => entries.map((e) => e.user.username).sort();

describe('the demo on two nodes over Redis', { skip }, () => {
  let redis: RedisServer | undefined;
  let kit: TestKit;
  let a: TestNode;
  let b: TestNode;
  /** Each node's app, in the order the kit started them: A, then B. */
  const demos: ExampleApp[] = [];

  before(async () => {
    const server = await startRedis();
    redis = server;
    kit = await createTestKit(async () => {
      const shared = await connectRedis(server.url);
      const demo = createApp({ sessionSecret: SECRET, ...shared.options });
      demos.push(demo);
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
  // The limits' budgets live in the one Redis, across tests: each test starts from full ones.
  beforeEach(() => kit.resetLimits());

  test('log in on one, chat with a user on the other; both nodes list who is online on either', async () => {
    // bob logs in through A's form and chats on B; alice chats on A.
    const bob = await kit.loginWith('/login', { username: 'bob', password: 'bob-pass' });
    const alice = await kit.loginAs(userOf('1'));
    const aliceOnA = await alice.connect('/chat', { node: a });
    const state = await aliceOnA.expectEvent<FeedEntry[]>('presence:state');
    assert.deepEqual(namesOf(state), ['alice']);
    const bobOnB = await bob.connect('/chat', { node: b });
    assert.deepEqual(await bobOnB.emitWithAck('say', { text: 'hi from B' }), { ok: true });
    const said = await aliceOnA.expectEvent<ChatMessage>('said');
    assert.deepEqual([said.from, said.text], ['bob', 'hi from B']);
    // The page on A hears bob (on B) come online: his join, in a presence:diff.
    await aliceOnA.expectEvent<FeedDiff>('presence:diff', {
      where: (diff) => namesOf(diff.joins).includes('bob'),
    });
    // The kit's presence assertions on A's presence see bob, whose join came before the call.
    const bobKey = userOf('2').id;
    assert.equal((await expectJoin(demos[0]?.online ?? assert.fail(), bobKey)).userKey, bobKey);
    // A second tab of bob's on B: one user, two connections, on either node's shared list.
    await bob.connect('/chat', { node: b });
    for (const demo of demos) {
      const entries = await demo.online.listShared();
      const summary = entries.map(({ user, connections }) => [user.username, connections]);
      assert.deepEqual(summary.sort(), [
        ['alice', 1],
        ['bob', 2],
      ]);
    }
    // The admin panel on A lists bob, whose tabs are both on B.
    const adminOnA = await alice.connect('/admin', { node: a });
    const users = await adminOnA.expectEvent<{ username: string; connections: number }[]>('users');
    assert.deepEqual(
      users.map(({ username, connections }) => [username, connections]),
      [
        ['alice', 1],
        ['bob', 2],
      ],
    );
  });

  test("one message budget across the nodes: alice's 6th message is refused on either", async () => {
    const alice = await kit.loginAs(userOf('1'));
    const onA = await alice.connect('/chat', { node: a });
    const onB = await alice.connect('/chat', { node: b });
    for (const [socket, text] of [
      [onA, 'one'],
      [onB, 'two'],
      [onA, 'three'],
      [onB, 'four'],
      [onA, 'five'],
    ] as const) {
      assert.deepEqual(await socket.emitWithAck('say', { text }), { ok: true }, text);
    }
    // Each node has seen no more than three: only a budget in Redis refuses these.
    for (const socket of [onB, onA]) {
      const { retryAfterMs } = await expectAckError(
        socket.emitWithAck('say', { text: 'six' }),
        'ERR_RATE_LIMITED',
      );
      assert.ok(retryAfterMs !== undefined && retryAfterMs > 0, String(retryAfterMs));
    }
  });

  test('a logout through A ends the sockets on B; expiry ends them on both', async () => {
    const [carol, alice] = await Promise.all([kit.loginAs(userOf('3')), kit.loginAs(userOf('1'))]);
    const carolOnB = await carol.connect('/tenant-acme', { node: b });
    const aliceSockets = [
      await alice.connect('/chat', { node: a }),
      await alice.connect('/chat', { node: b }),
    ];
    await carol.logout(); // POST /logout on A
    await expectEnded(carolOnB, ERR_SESSION_REVOKED);
    await expectRefused(carol.connect('/chat', { node: b }), 'ERR_UNAUTHORIZED');

    await kit.expire(alice);
    for (const socket of aliceSockets) await expectEnded(socket, ERR_SESSION_EXPIRED);
  });

  test('a session deleted in Redis behind the app (an admin script) ends its sockets on both nodes at once', async () => {
    // No logout, no revalidation round (30 s): only Redis's keyspace event, heard by each node.
    const bob = await kit.loginAs(userOf('2'));
    const sockets = [
      await bob.connect('/chat', { node: a }),
      await bob.connect('/tenant-globex', { node: b }),
    ];
    await kit.removeFromStore(bob);
    for (const socket of sockets) await expectEnded(socket, ERR_SESSION_REVOKED);
  });
});

test(
  'server.ts with REDIS_URL: sessions and Socket.IO on Redis; closes its clients on SIGTERM',
  { skip },
  async () => {
    const server = await startRedis();
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/passport/server.ts'], {
      env: { ...process.env, PORT: String(port), REDIS_URL: server.url, SESSION_SECRET: SECRET },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = once(child, 'exit');
    try {
      await waitFor(() => output.includes('Demo accounts'), 20_000, `the demo on port ${port}`);
      assert.match(output, /Sessions and Socket\.IO: Redis/);
      const page = await fetch(`http://127.0.0.1:${port}/login`);
      assert.equal(page.status, 200);
      await page.arrayBuffer();
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = (await within(exited, 'exit on SIGTERM', 10_000)) as [number | null];
    assert.equal(code, 0, output);
    await server.stop();
  },
);
