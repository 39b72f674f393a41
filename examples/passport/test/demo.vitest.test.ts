// The demo's key stories under Vitest, with socket.io-session-auth/testing. With REDIS_URL set
// (a redis-server), the nodes share Redis and the two-node story runs too.
import { createTestKit, expectEnded, expectRefused } from 'socket.io-session-auth/testing';
import type { TestKit } from 'socket.io-session-auth/testing';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createApp, type ChatMessage } from '../app.js';
import { connectRedis } from '../redis.js';
import { findUserById } from '../users.js';

const redis = process.env.REDIS_URL;
const user = (id: string): Express.User => findUserById(id) ?? expect.fail(`no user ${id}`);
let kit: TestKit;
beforeAll(async () => {
  kit = await createTestKit(() => (redis ? redisNode(redis) : createApp({ sessionSecret: 's' })));
});
afterAll(() => kit.close());

test('login: through the form, then the chat', async () => {
  const alice = await kit.loginWith('/login', { username: 'alice', password: 'alice-pass' });
  await alice.connect('/chat');
});

test('chat: the sender is the session’s user, whatever the client says', async () => {
  const [alice, bob] = await Promise.all([kit.loginAs(user('1')), kit.loginAs(user('2'))]);
  const aliceChat = await alice.connect('/chat');
  const bobChat = await bob.connect('/chat');
  expect(await bobChat.emitWithAck('say', { text: 'hi', from: 'alice' })).toEqual({ ok: true });
  expect(await aliceChat.expectEvent<ChatMessage>('said')).toMatchObject({ from: 'bob' });
});

test('admin and tenants: a member is refused the admin, an outsider the tenant', async () => {
  const bob = await kit.loginAs(user('2'));
  await expectRefused(bob.connect('/admin'), 'ERR_FORBIDDEN');
  await expectRefused(bob.connect('/tenant-acme'), 'ERR_FORBIDDEN');
  await bob.connect('/tenant-globex');
});

test('logout ends every tab', async () => {
  const carol = await kit.loginAs(user('3'));
  const tabs = [
    ...(await carol.connect('/chat', { tabs: 2 })),
    await carol.connect('/tenant-acme'),
  ];
  await carol.logout();
  for (const tab of tabs) await expectEnded(tab, 'ERR_SESSION_REVOKED');
  await expectRefused(carol.connect('/chat'), 'ERR_UNAUTHORIZED');
});

test('expiry ends the sockets', async () => {
  const alice = await kit.loginAs(user('1'));
  const chat = await alice.connect('/chat');
  await kit.expire(alice);
  await expectEnded(chat, 'ERR_SESSION_EXPIRED');
});

test.skipIf(!redis)('two nodes: a logout on one ends the socket on the other', async () => {
  const [alice, b] = await Promise.all([kit.loginAs(user('1')), kit.node()]);
  const chat = await alice.connect('/chat', { node: b });
  await alice.logout(); // through the first node
  await expectEnded(chat, 'ERR_SESSION_REVOKED');
});

/** A node of the demo on Redis (`../redis.ts`): every node shares the store and the adapter. */
async function redisNode(url: string) {
  const redis = await connectRedis(url);
  const demo = createApp({ sessionSecret: 's', ...redis.options });
  const close = async () => {
    await demo.close();
    await redis.quit();
  };
  return { ...demo, close };
}
