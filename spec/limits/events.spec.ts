// rateLimit's event limits on one node, with real clients through the test kit: one budget per
// user across tabs and namespaces, the refusal a client sees (an ack error with ERR_RATE_LIMITED
// and retryAfterMs; an event without an ack dropped), the app's handlers and authorizeEvent never
// reached by a limited event, per-event budgets and costs, endAfter ending the socket, the
// package's own events, sockets connected before the call, a whole server's namespaces, and the
// diagnostics of each refusal.
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import type { Namespace, Socket as ServerSocket } from 'socket.io';
import {
  DIAGNOSTICS_CHANNELS,
  rateLimit,
  requireAuth,
  sessionNamespace,
  type RateLimitOptions,
  type RateLimitedMessage,
} from 'socket.io-session-auth';
import {
  createTestKit,
  expectAckError,
  expectEnded,
  type Agent,
  type TestKit,
  type TestSocket,
} from 'socket.io-session-auth/testing';
import { connected } from '../support/bounded.js';
import { waitFor } from '../support/client.js';
import { start, type TestContext } from '../support/server.js';

const alice: Express.User = { id: '1', username: 'alice', role: 'admin', tenants: [] };
const bob: Express.User = { id: '2', username: 'bob', role: 'member', tenants: [] };
const MINUTE = 60_000;
/** The events the test app answers. */
const EVENTS = ['say', 'ping', 'save', 'search', 'free', 'session:token'];

interface Setup {
  kit: TestKit;
  /** How many times the app's handlers and authorizeEvent ran, by event name. */
  handled: Map<string, number>;
  authorized: Map<string, number>;
  ctx: TestContext;
  login: (user: Express.User) => Promise<Agent>;
}

const bump = (counts: Map<string, number>, name: string): void => {
  counts.set(name, (counts.get(name) ?? 0) + 1);
};

/**
 * `/chat` and `/other`: session namespaces under requireAuth (authorizeEvent counts its calls),
 * each answering any event's ack with `{ ok: event }`. `limit` puts rateLimit on them: the
 * namespaces or the server.
 */
async function setup(
  tc: NodeTestContext,
  limit: (ctx: TestContext, spaces: Namespace[]) => void,
): Promise<Setup> {
  const handled = new Map<string, number>();
  const authorized = new Map<string, number>();
  let context: TestContext | undefined;
  const t = await start(tc, (ctx) => {
    context = ctx;
    const spaces = ['/chat', '/other'].map((name) =>
      requireAuth(sessionNamespace(ctx.io.of(name), ctx.session, { passport: ctx.passport }), {
        authorizeEvent: (_user, event) => {
          bump(authorized, event);
          return true;
        },
      }),
    );
    for (const nsp of spaces) {
      nsp.on('connection', (socket: ServerSocket) => {
        // Listeners by name: Socket.IO calls onAny listeners before any `socket.use` step.
        for (const event of EVENTS) {
          socket.on(event, (...args: unknown[]) => {
            bump(handled, event);
            const ack = args[args.length - 1];
            if (typeof ack === 'function') (ack as (v: unknown) => void)({ ok: event });
          });
        }
      });
    }
    limit(ctx, spaces);
  });
  const kit = await createTestKit({ io: t.io, session: t.session, passport: t.passport });
  tc.after(() => kit.close());
  assert.ok(context);
  return { kit, handled, authorized, ctx: context, login: (user) => kit.loginAs(user) };
}

/** The messages of a diagnostics channel during the test. */
function listen<T>(tc: NodeTestContext, channel: string): T[] {
  const heard: T[] = [];
  const listener = (message: unknown): void => {
    heard.push(message as T);
  };
  diagnosticsChannel.subscribe(channel, listener);
  tc.after(() => diagnosticsChannel.unsubscribe(channel, listener));
  return heard;
}

const budget = (points: number, durationMs = MINUTE) => ({ points, durationMs });

/** The event goes through: the app's handler answers its ack. */
async function passes(socket: TestSocket, event: string, ...args: unknown[]): Promise<void> {
  assert.deepEqual(await socket.emitWithAck(event, ...args), { ok: event });
}

describe('rateLimit events: one budget per user, refused with ERR_RATE_LIMITED', () => {
  test('the user over budget gets an ack error with retryAfterMs; the handlers never run; another user passes', async (tc) => {
    const heard = listen<RateLimitedMessage>(tc, DIAGNOSTICS_CHANNELS.rateLimited);
    const { login, handled, authorized } = await setup(tc, (_ctx, [chat]) => {
      rateLimit(chat as Namespace, { events: { default: budget(3) } });
    });
    const a = await (await login(alice)).connect('/chat');
    const b = await (await login(bob)).connect('/chat');
    for (let i = 0; i < 3; i++) assert.deepEqual(await a.emitWithAck('say', i), { ok: 'say' });
    const error = await expectAckError(a.emitWithAck('say', 3), 'ERR_RATE_LIMITED');
    assert.equal(error.status, 429);
    assert.equal(error.message, 'Too Many Requests');
    assert.ok(
      error.retryAfterMs !== undefined && error.retryAfterMs > 0,
      String(error.retryAfterMs),
    );
    assert.ok(error.retryAfterMs <= MINUTE, String(error.retryAfterMs));
    // Refused before authorizeEvent and the app's handlers.
    assert.equal(handled.get('say'), 3);
    assert.equal(authorized.get('say'), 3);
    // Bob has his own budget.
    assert.deepEqual(await b.emitWithAck('say', 0), { ok: 'say' });
    // The refusal on the channel: what was limited and how, nobody's identity.
    const refused = heard.filter((m) => m.outcome === 'refused');
    assert.equal(refused.length, 1);
    assert.deepEqual(refused[0], {
      namespace: '/chat',
      socketId: refused[0]?.socketId,
      limit: 'default',
      by: 'user',
      outcome: 'refused',
      code: 'ERR_RATE_LIMITED',
      retryAfterMs: error.retryAfterMs,
    });
  });

  test('one budget across the user’s tabs and the namespaces of a server-wide rateLimit', async (tc) => {
    const { login, handled } = await setup(tc, ({ io }) => {
      rateLimit(io, { events: { default: budget(3) } });
    });
    const first = await login(alice);
    const second = await login(alice);
    const chat = await first.connect('/chat');
    const other = await second.connect('/other');
    await passes(chat, 'say', 1);
    await passes(other, 'say', 2);
    await passes(chat, 'say', 3);
    await expectAckError(other.emitWithAck('say', 4), 'ERR_RATE_LIMITED');
    await expectAckError(chat.emitWithAck('say', 5), 'ERR_RATE_LIMITED');
    assert.equal(handled.get('say'), 3);
  });

  test('an event without an ack is dropped and reported; a later ack shows the handler never ran', async (tc) => {
    const limited = listen<RateLimitedMessage>(tc, DIAGNOSTICS_CHANNELS.rateLimited);
    const refusedEvents = listen<{ event: string; code: string; status: number }>(
      tc,
      DIAGNOSTICS_CHANNELS.eventRefused,
    );
    const { login, handled } = await setup(tc, (_ctx, [chat]) => {
      rateLimit(chat as Namespace, {
        events: { budgets: { say: budget(1) } },
      });
    });
    const chat = await (await login(alice)).connect('/chat');
    chat.emit('say', 'through');
    chat.emit('say', 'dropped');
    // Events are handled in order: once this ack is back, both `say` were decided.
    assert.deepEqual(await chat.emitWithAck('ping'), { ok: 'ping' });
    assert.equal(handled.get('say'), 1);
    assert.deepEqual(
      limited.map((m) => [m.limit, m.outcome, m.by]),
      [['say', 'dropped', 'user']],
    );
    assert.ok((limited[0]?.retryAfterMs ?? 0) > 0);
    assert.deepEqual(
      refusedEvents.map((m) => [m.event, m.code, m.status]),
      [['say', 'ERR_RATE_LIMITED', 429]],
    );
  });

  test('per-event budgets count alone; costs take more points; events without a budget pass', async (tc) => {
    const { login, handled } = await setup(tc, (_ctx, [chat]) => {
      rateLimit(chat as Namespace, {
        events: { budgets: { save: budget(2), search: budget(4) }, cost: { search: 3 } },
      });
    });
    const chat = await (await login(alice)).connect('/chat');
    await passes(chat, 'save');
    await passes(chat, 'save');
    await expectAckError(chat.emitWithAck('save'), 'ERR_RATE_LIMITED');
    // `search` has its own budget: the spent `save` budget does not touch it; at 3 points each,
    // a second one is over its 4.
    await passes(chat, 'search');
    await expectAckError(chat.emitWithAck('search'), 'ERR_RATE_LIMITED');
    for (let i = 0; i < 5; i++) await passes(chat, 'free');
    assert.deepEqual([handled.get('save'), handled.get('search'), handled.get('free')], [2, 1, 5]);
  });

  test('endAfter: refused events in a row end the socket with session:ended ERR_RATE_LIMITED', async (tc) => {
    const ended = listen<{ code: string; how: string }>(tc, DIAGNOSTICS_CHANNELS.sessionEnded);
    const limited = listen<RateLimitedMessage>(tc, DIAGNOSTICS_CHANNELS.rateLimited);
    const { login } = await setup(tc, (_ctx, [chat]) => {
      rateLimit(chat as Namespace, {
        events: { budgets: { say: budget(1), save: budget(5) }, endAfter: 3 },
      });
    });
    const agent = await login(alice);
    const chat = await agent.connect('/chat');
    await passes(chat, 'say');
    await expectAckError(chat.emitWithAck('say'), 'ERR_RATE_LIMITED');
    // A counted event that goes through starts the count again (one no budget counts does not:
    // interleaving free events must not keep a flooder connected).
    await passes(chat, 'save');
    await passes(chat, 'ping');
    await expectAckError(chat.emitWithAck('say'), 'ERR_RATE_LIMITED');
    await expectAckError(chat.emitWithAck('say'), 'ERR_RATE_LIMITED');
    assert.equal(chat.connected, true);
    chat.emit('say');
    await expectEnded(chat, 'ERR_RATE_LIMITED');
    assert.deepEqual(
      ended.map((m) => [m.code, m.how]),
      [['ERR_RATE_LIMITED', 'rate-limit']],
    );
    assert.deepEqual(
      limited.map((m) => m.outcome),
      ['refused', 'refused', 'refused', 'dropped', 'ended'],
    );
    // Only that socket: the user's next one connects and is still over budget.
    const again = await agent.connect('/chat');
    await expectAckError(again.emitWithAck('say'), 'ERR_RATE_LIMITED');
  });

  test('the package’s own session:token does not count against default; named in budgets, it does', async (tc) => {
    const { login, handled } = await setup(tc, (_ctx, [chat, other]) => {
      rateLimit(chat as Namespace, { events: { default: budget(1) } });
      rateLimit(other as Namespace, {
        events: { default: budget(1), budgets: { 'session:token': budget(1) } },
      });
    });
    const agent = await login(alice);
    const chat = await agent.connect('/chat');
    await passes(chat, 'say');
    await expectAckError(chat.emitWithAck('say'), 'ERR_RATE_LIMITED');
    for (let i = 0; i < 3; i++) await passes(chat, 'session:token', 'x');
    const other = await agent.connect('/other');
    await passes(other, 'session:token', 'x');
    await expectAckError(other.emitWithAck('session:token', 'x'), 'ERR_RATE_LIMITED');
    assert.equal(handled.get('session:token'), 4);
  });

  test('sockets connected before rateLimit come under it; a namespace made later is covered by a server-wide call', async (tc) => {
    let late: (() => Namespace) | undefined;
    const { login, ctx } = await setup(tc, (c) => {
      late = () => {
        const nsp = sessionNamespace(c.io.of('/later'), c.session, { passport: c.passport });
        nsp.on('connection', (socket: ServerSocket) => {
          socket.on('say', (ack: (v: unknown) => void) => {
            ack({ ok: 'say' });
          });
        });
        return nsp;
      };
    });
    const agent = await login(alice);
    const before = await agent.connect('/chat');
    await passes(before, 'say');
    rateLimit(ctx.io, { events: { default: budget(2) } });
    await passes(before, 'say');
    await passes(before, 'say');
    await expectAckError(before.emitWithAck('say'), 'ERR_RATE_LIMITED');
    late?.();
    const later = await agent.connect('/later');
    await expectAckError(later.emitWithAck('say'), 'ERR_RATE_LIMITED');
  });

  test('a socket recovered by connectionStateRecovery, in a namespace made after a server-wide call, is limited', async (tc) => {
    const t = await start(
      tc,
      ({ io, session, passport }) => {
        rateLimit(io, { events: { default: budget(2) } });
        const nsp = requireAuth(sessionNamespace(io.of('/ns'), session, { passport }));
        nsp.on('connection', (socket: ServerSocket) => {
          socket.on('say', (ack: (v: unknown) => void) => {
            ack({ ok: 'say' });
          });
        });
      },
      { serverOptions: { connectionStateRecovery: {} } },
    );
    const client = t.connect('/ns', {
      cookie: await t.login('alice'),
      transports: ['websocket'],
      reconnection: false,
    });
    await connected(client);
    // A broadcast gives the client an offset, which recovery needs; then the transport drops.
    const news = new Promise((resolve) => client.once('news', resolve));
    t.io.of('/ns').emit('news');
    await news;
    client.io.engine.close();
    await waitFor(() => t.io.of('/ns').sockets.size === 0, 5000, 'the server to see the drop');
    client.connect();
    await connected(client);
    assert.equal(client.recovered, true);
    assert.deepEqual(await client.emitWithAck('say'), { ok: 'say' });
    assert.deepEqual(await client.emitWithAck('say'), { ok: 'say' });
    await expectAckError(client.emitWithAck('say'), 'ERR_RATE_LIMITED');
  });

  test('a namespace that is not a session namespace is not limited by a server-wide call', async (tc) => {
    const { login } = await setup(tc, ({ io }) => {
      io.of('/plain').on('connection', (socket: ServerSocket) => {
        socket.on('say', (ack: (v: unknown) => void) => {
          ack({ ok: 'say' });
        });
      });
      rateLimit(io, { events: { default: budget(1) } });
    });
    const plain = await (await login(alice)).connect('/plain');
    for (let i = 0; i < 3; i++) assert.deepEqual(await plain.emitWithAck('say'), { ok: 'say' });
  });

  test("by: 'session' gives each of the user's sessions its own budget", async (tc) => {
    const { login } = await setup(tc, (_ctx, [chat]) => {
      rateLimit(chat as Namespace, { events: { default: budget(1), by: 'session' } });
    });
    const first = await (await login(alice)).connect('/chat');
    const second = await (await login(alice)).connect('/chat');
    assert.deepEqual(await first.emitWithAck('say'), { ok: 'say' });
    assert.deepEqual(await second.emitWithAck('say'), { ok: 'say' });
    await expectAckError(first.emitWithAck('say'), 'ERR_RATE_LIMITED');
  });

  test('a stranger on an open namespace counts by session or, without one, by address', async (tc) => {
    const heard = listen<RateLimitedMessage>(tc, DIAGNOSTICS_CHANNELS.rateLimited);
    const { kit } = await setup(tc, ({ io, session, passport }) => {
      const open = sessionNamespace(io.of('/open'), session, { passport });
      open.on('connection', (socket: ServerSocket) => {
        socket.on('say', (ack: (v: unknown) => void) => {
          ack({ ok: 'say' });
        });
      });
      rateLimit(open, { events: { default: budget(2) } });
      const byIp = sessionNamespace(io.of('/by-ip'), session, { passport });
      byIp.on('connection', (socket: ServerSocket) => {
        socket.on('say', (ack: (v: unknown) => void) => {
          ack({ ok: 'say' });
        });
      });
      rateLimit(byIp, { events: { default: budget(2), by: 'ip' } });
    });
    // Two tabs of one stranger: one budget (their session, when the store keeps one for a
    // stranger; else their address).
    const stranger = kit.anonymous();
    const first = await stranger.connect('/open');
    const second = await stranger.connect('/open');
    await passes(first, 'say');
    await passes(second, 'say');
    await expectAckError(first.emitWithAck('say'), 'ERR_RATE_LIMITED');
    const [refused] = heard.filter((m) => m.outcome === 'refused');
    assert.ok(refused?.by === 'session' || refused?.by === 'ip', String(refused?.by));
    // by: 'ip': two strangers from one address share a budget.
    await passes(await kit.anonymous().connect('/by-ip'), 'say');
    await passes(await kit.anonymous().connect('/by-ip'), 'say');
    await expectAckError(
      (await kit.anonymous().connect('/by-ip')).emitWithAck('say'),
      'ERR_RATE_LIMITED',
    );
    assert.equal(heard.at(-1)?.by, 'ip');
  });

  test('the budget comes back after its window', async (tc) => {
    const { login } = await setup(tc, (_ctx, [chat]) => {
      rateLimit(chat as Namespace, { events: { default: budget(1, 1000) } });
    });
    const chat = await (await login(alice)).connect('/chat');
    await passes(chat, 'say');
    const { retryAfterMs = 0 } = await expectAckError(chat.emitWithAck('say'), 'ERR_RATE_LIMITED');
    assert.ok(retryAfterMs > 0 && retryAfterMs <= 1000, String(retryAfterMs));
    // The limiter keeps real time (rate-limiter-flexible has no clock to move): waiting the
    // retryAfterMs the refusal gave is the only way to see the window end.
    await new Promise((resolve) => setTimeout(resolve, retryAfterMs + 20));
    assert.deepEqual(await chat.emitWithAck('say'), { ok: 'say' });
  });
});

describe('rateLimit events: the options are checked at the call', () => {
  const bad: [string, unknown, RegExp][] = [
    ['not an object', 5, /options\.events must be an object/],
    ['no budget', {}, /needs a default budget or budgets/],
    ['points', { default: { points: 0, durationMs: 1000 } }, /default\.points/],
    ['seconds', { default: { points: 1, durationMs: 1500 } }, /durationMs must be a whole/],
    ['by', { default: budget(1), by: 'tab' }, /by must be/],
    ['endAfter', { default: budget(1), endAfter: 0 }, /endAfter/],
    ['cost over budget', { default: budget(2), cost: { x: 3 } }, /more than its budget/],
    ['cost of nothing', { budgets: { a: budget(2) }, cost: { x: 1 } }, /no budget/],
  ];
  for (const [what, events, message] of bad) {
    test(what, async (tc) => {
      const t = await start(tc, () => undefined);
      assert.throws(
        () => rateLimit(t.io, { events } as RateLimitOptions),
        (error: unknown) =>
          error instanceof TypeError &&
          error.message.startsWith('rateLimit: ') &&
          message.test(error.message),
      );
    });
  }
});
