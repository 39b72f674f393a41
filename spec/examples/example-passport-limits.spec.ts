// The demo's limits (examples/passport/limits.ts), driven with the package's test kit: real HTTP,
// the app's own session store and Passport, the real socket.io-client. One app for the tests
// with the demo's own limits, budgets reset between tests (kit.resetLimits); the tests that set
// other numbers have an app of their own.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import {
  createTestKit,
  expectAckError,
  expectRefused,
  type Agent,
  type TestKit,
} from 'socket.io-session-auth/testing';
import { createApp, type ChatMessage } from '../../examples/passport/app.js';
import { findUserById } from '../../examples/passport/users.js';
import { waitFor } from '../support/client.js';

const RATE_LIMITED = 'ERR_RATE_LIMITED';
const userOf = (id: string): Express.User => findUserById(id) ?? assert.fail(`no user ${id}`);

/** The value of one series of the app's /metrics, 0 when it is not there. */
async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
const rateLimited = (labels: string): string =>
  `socketio_session_auth_rate_limited_total{${labels}}`;

describe('examples/passport limits, with the demo defaults', () => {
  let kit: TestKit;
  const as = (id: string): Promise<Agent> => kit.loginAs(userOf(id));

  before(async () => {
    kit = await createTestKit(() => createApp({ sessionSecret: 'spec-secret' }));
  });
  // One app for these tests: without a reset, the budgets one test spends would refuse the next.
  beforeEach(() => kit.resetLimits());
  after(() => kit.close());

  test("say: the 6th message in 10 s is refused with retryAfterMs, across tabs and rooms; another user's pass", async () => {
    const alice = await as('1');
    const bob = await as('2');
    const [tab1, tab2] = await alice.connect('/chat', { tabs: 2 });
    const acme = await alice.connect('/tenant-acme');
    const bobChat = await bob.connect('/chat');
    assert.ok(tab1 && tab2);
    // Five in all, from two tabs and a tenant room: one budget.
    for (const [socket, text] of [
      [tab1, 'one'],
      [tab2, 'two'],
      [acme, 'three'],
      [tab1, 'four'],
      [tab2, 'five'],
    ] as const) {
      assert.deepEqual(await socket.emitWithAck('say', { text }), { ok: true }, text);
    }
    for (const socket of [tab1, tab2, acme]) {
      const error = await expectAckError(socket.emitWithAck('say', { text: 'six' }), RATE_LIMITED);
      assert.equal(error.status, 429);
      assert.ok(
        error.retryAfterMs !== undefined && error.retryAfterMs > 0 && error.retryAfterMs <= 10_000,
        `retryAfterMs ${String(error.retryAfterMs)}`,
      );
    }
    // bob's own budget is whole.
    assert.deepEqual(await bobChat.emitWithAck('say', { text: 'bob here' }), { ok: true });
    // bob's chat got alice's four /chat messages, then his own: none of the refused ones.
    const heard: string[] = [];
    for (let i = 0; i < 5; i++) {
      heard.push((await bobChat.expectEvent<ChatMessage>('said')).text);
    }
    assert.deepEqual(heard, ['one', 'two', 'four', 'five', 'bob here']);
  });

  test('/metrics: socketio_session_auth_rate_limited_total counts refused messages, every tenant under one label', async () => {
    const say = 'limit="say",by="user",outcome="refused"';
    const inChat = rateLimited(`namespace="/chat",${say}`);
    const inTenants = rateLimited(`namespace="/tenant-*",${say}`);
    // The app's counters keep what the tests before this one counted.
    const before = [await metric(kit.url, inChat), await metric(kit.url, inTenants)];
    const carol = await as('3');
    const chat = await carol.connect('/chat');
    const acme = await carol.connect('/tenant-acme');
    for (let i = 0; i < 5; i++) await chat.emitWithAck('say', { text: `m${i}` });
    await expectAckError(chat.emitWithAck('say', { text: 'over' }), RATE_LIMITED);
    await expectAckError(chat.emitWithAck('say', { text: 'over' }), RATE_LIMITED);
    await expectAckError(acme.emitWithAck('say', { text: 'over' }), RATE_LIMITED);
    const now = [await metric(kit.url, inChat), await metric(kit.url, inTenants)];
    assert.deepEqual(
      now.map((n, i) => n - (before[i] ?? 0)),
      [2, 1],
    );
  });
});

test('tabs: a 6th /chat tab of one user is refused with 429, and does not retry; her tenant room and bob are not', async () => {
  // An app of its own: the count is of open sockets, which no reset takes back.
  const demo = createApp({ sessionSecret: 'spec-secret' });
  const kit = await createTestKit(demo);
  try {
    const alice = await kit.loginAs(userOf('1'));
    const tabs = await alice.connect('/chat', { tabs: 5 });
    const refusal = await expectRefused(alice.connect('/chat'), RATE_LIMITED);
    const data = refusal.data as { status?: unknown; retryAfterMs?: unknown };
    assert.equal(data.status, 429);
    assert.equal(typeof data.retryAfterMs, 'number');
    // A tab's other panels are not more tabs; another user has his own count.
    await alice.connect('/tenant-acme');
    await (await kit.loginAs(userOf('2'))).connect('/chat');
    // A tab closed: its place is free once the server has seen it go.
    assert.equal(tabs.length, 5);
    tabs[0]?.disconnect();
    await waitFor(() => demo.io.of('/chat').sockets.size === 5, 5000, 'the closed tab gone');
    await alice.connect('/chat');
    assert.equal(
      await metric(
        kit.url,
        rateLimited('namespace="/chat",limit="connections",by="user",outcome="refused"'),
      ),
      1,
    );
  } finally {
    await kit.close();
  }
});

test("connects per address: a stranger's flood is refused with 429 once over the budget", async () => {
  const kit = await createTestKit(() =>
    createApp({ sessionSecret: 'spec-secret', connectsPerIp: { points: 5, durationMs: 60_000 } }),
  );
  try {
    const stranger = kit.anonymous();
    // Five attempts: each refused for what it is, a stranger (401).
    for (let i = 0; i < 5; i++) await expectRefused(stranger.connect('/chat'), 'ERR_UNAUTHORIZED');
    // Then 429 from this address, in any namespace, before its session is looked at.
    for (const nsp of ['/chat', '/tenant-acme', '/admin']) {
      const refusal = await expectRefused(stranger.connect(nsp), RATE_LIMITED);
      const { retryAfterMs } = (refusal.data ?? {}) as { retryAfterMs?: number };
      assert.ok(
        retryAfterMs !== undefined && retryAfterMs > 0 && retryAfterMs <= 60_000,
        `retryAfterMs ${String(retryAfterMs)}`,
      );
    }
    const ip = 'limit="ip",by="ip",outcome="refused"';
    assert.equal(await metric(kit.url, rateLimited(`namespace="/chat",${ip}`)), 1);
    assert.equal(await metric(kit.url, rateLimited(`namespace="/tenant-*",${ip}`)), 1);
  } finally {
    await kit.close();
  }
});

test('createApp: messagesPerUser and tabsPerUser set the numbers', async () => {
  const kit = await createTestKit(() =>
    createApp({
      sessionSecret: 'spec-secret',
      messagesPerUser: { points: 2, durationMs: 60_000 },
      tabsPerUser: 1,
    }),
  );
  try {
    const alice = await kit.loginAs(userOf('1'));
    const chat = await alice.connect('/chat');
    for (const text of ['a', 'b'])
      assert.deepEqual(await chat.emitWithAck('say', { text }), { ok: true });
    const { retryAfterMs } = await expectAckError(
      chat.emitWithAck('say', { text: 'c' }),
      RATE_LIMITED,
    );
    assert.ok(
      retryAfterMs !== undefined && retryAfterMs > 10_000,
      `a minute's window: ${String(retryAfterMs)}`,
    );
    await expectRefused(alice.connect('/chat'), RATE_LIMITED);
  } finally {
    await kit.close();
  }
});
