// rateLimit's connection counts on one node: perUser and perSession across tabs and the namespaces
// a limit covers, refused with ERR_RATE_LIMITED (429, retryAfterMs) or the oldest socket ended,
// whichever order the helpers were called in; the rate-limited channel says what happened.
// Real express-session + Passport logins, real socket.io-client sockets.
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import type { Socket as ClientSocket } from 'socket.io-client';
import { Strategy as BearerStrategy } from 'passport-http-bearer';
import {
  ERR_RATE_LIMITED,
  passportNamespace,
  rateLimit,
  requireAuth,
  sessionNamespace,
  type RateLimitedMessage,
  type RateLimitOptions,
} from '../../lib/index.js';
import { connected, connectError } from '../support/bounded.js';
import { within } from '../support/bounded.js';
import { start, type TestContext } from '../support/server.js';

const CHANNEL = 'socket.io-session-auth:rate-limited';

/** Every message of the rate-limited channel during the test. */
function heard(tc: NodeTestContext): RateLimitedMessage[] {
  const messages: RateLimitedMessage[] = [];
  const listener = (message: unknown): void => {
    messages.push(message as RateLimitedMessage);
  };
  diagnosticsChannel.subscribe(CHANNEL, listener);
  tc.after(() => diagnosticsChannel.unsubscribe(CHANNEL, listener));
  return messages;
}

/** /chat and /news, both session namespaces behind requireAuth. */
function namespaces({ io, session, passport }: TestContext): void {
  for (const name of ['/chat', '/news']) {
    requireAuth(sessionNamespace(io.of(name), session, { passport }));
  }
}

/** The server's side of a socket leaving: a later connect's count no longer has it. */
async function closed(socket: ClientSocket, io: TestContext['io'], nsp: string): Promise<void> {
  const id = socket.id;
  socket.disconnect();
  const server = io.of(nsp);
  if (id === undefined || !server.sockets.has(id)) return;
  await within(
    new Promise((resolve) => server.sockets.get(id)?.once('disconnect', resolve)),
    'the server sees the socket leave',
  );
}

describe('rateLimit connections: perUser and perSession on one node', () => {
  test("the user's N+1th socket is refused with 429 and retryAfterMs; another user is not", async (tc) => {
    const messages = heard(tc);
    const t = await start(tc, (ctx) => {
      namespaces(ctx);
      rateLimit(ctx.io, { connections: { perUser: 2 } });
    });
    const alice = await t.login('alice');
    const [a1, a2] = [t.connect('/chat', { cookie: alice }), t.connect('/news', { cookie: alice })];
    await connected(a1);
    await connected(a2);
    const a3 = t.connect('/chat', { cookie: alice });
    const err = await connectError(a3);
    assert.deepEqual(err.data, { code: ERR_RATE_LIMITED, status: 429, retryAfterMs: 5000 });
    assert.equal(err.message, 'Too Many Requests');
    // A namespace refusal: the client does not try again on its own.
    assert.equal(a3.active, false);
    await connected(
      t.connect('/chat', { cookie: await t.login('bob') }),
      'bob is not counted with alice',
    );
    assert.deepEqual(
      messages.map(({ namespace, limit, by, outcome, code, retryAfterMs }) => ({
        namespace,
        limit,
        by,
        outcome,
        code,
        retryAfterMs,
      })),
      [
        {
          namespace: '/chat',
          limit: 'connections',
          by: 'user',
          outcome: 'refused',
          code: ERR_RATE_LIMITED,
          retryAfterMs: 5000,
        },
      ],
    );
    assert.equal(typeof messages[0]?.socketId, 'string');
    // Never a session ID, user key or address in it.
    assert.doesNotMatch(JSON.stringify(messages), /alice|"1"|127\.0\.0\.1|s%3A/);
    // One of alice's sockets gone: room for one more.
    await closed(a1, t.io, '/chat');
    await connected(t.connect('/chat', { cookie: alice }), 'alice again, one socket closed');
  });

  test('a limit on one namespace counts only its sockets; the retryAfterMs option', async (tc) => {
    const t = await start(tc, (ctx) => {
      namespaces(ctx);
      rateLimit(ctx.io.of('/chat'), { connections: { perUser: 1, retryAfterMs: 250 } });
    });
    const alice = await t.login('alice');
    await connected(t.connect('/news', { cookie: alice }));
    await connected(t.connect('/news', { cookie: alice }), '/news is not limited');
    await connected(t.connect('/chat', { cookie: alice }));
    const err = await connectError(t.connect('/chat', { cookie: alice }));
    assert.deepEqual(err.data, { code: ERR_RATE_LIMITED, status: 429, retryAfterMs: 250 });
  });

  test("perSession counts a session's sockets; another login of the same user is its own", async (tc) => {
    const t = await start(tc, (ctx) => {
      namespaces(ctx);
      rateLimit(ctx.io, { connections: { perSession: 1 } });
    });
    const first = await t.login('alice');
    await connected(t.connect('/chat', { cookie: first }));
    const err = await connectError(t.connect('/news', { cookie: first }));
    assert.equal(err.data?.code, ERR_RATE_LIMITED);
    await connected(t.connect('/news', { cookie: await t.login('alice') }), 'a second session');
  });

  test("onExceed 'end-oldest': the oldest socket gets session:ended, the new one comes in", async (tc) => {
    const messages = heard(tc);
    const t = await start(tc, (ctx) => {
      namespaces(ctx);
      rateLimit(ctx.io, { connections: { perUser: 2, onExceed: 'end-oldest' } });
    });
    const alice = await t.login('alice');
    const oldest = t.connect('/chat', { cookie: alice });
    await connected(oldest);
    const middle = t.connect('/news', { cookie: alice });
    await connected(middle);
    const ended = within(
      new Promise((resolve) => oldest.once('session:ended', resolve)),
      'the oldest socket is ended',
    );
    const newest = t.connect('/chat', { cookie: alice });
    await connected(newest);
    assert.deepEqual(await ended, {
      message: 'Too Many Requests',
      data: { code: ERR_RATE_LIMITED, status: 429 },
    });
    assert.equal(middle.connected, true);
    assert.deepEqual(
      messages.map(({ namespace, by, outcome }) => ({ namespace, by, outcome })),
      [{ namespace: '/chat', by: 'user', outcome: 'ended' }],
    );
  });

  test('rateLimit called before sessionNamespace and requireAuth counts the same', async (tc) => {
    const t = await start(tc, (ctx) => {
      rateLimit(ctx.io, { connections: { perUser: 1 } });
      namespaces(ctx);
    });
    const alice = await t.login('alice');
    await connected(t.connect('/chat', { cookie: alice }));
    const err = await connectError(t.connect('/news', { cookie: alice }));
    assert.equal(err.data?.code, ERR_RATE_LIMITED);
  });

  test("a token socket (passportNamespace) counts with the same user's cookie sockets", async (tc) => {
    const t = await start(tc, (ctx) => {
      namespaces(ctx);
      ctx.passport.use(
        new BearerStrategy((token, done) => {
          done(null, token === 'alice-key' ? { id: '1', username: 'alice' } : false);
        }),
      );
      requireAuth(passportNamespace(ctx.io.of('/api'), ctx.passport, ['bearer']));
      rateLimit(ctx.io, { connections: { perUser: 2 } });
    });
    const alice = await t.login('alice');
    await connected(t.connect('/chat', { cookie: alice }));
    await connected(t.connect('/api', { auth: { token: 'alice-key' } }));
    const err = await connectError(t.connect('/api', { auth: { token: 'alice-key' } }));
    assert.equal(err.data?.code, ERR_RATE_LIMITED);
    const again = await connectError(t.connect('/news', { cookie: alice }));
    assert.equal(again.data?.code, ERR_RATE_LIMITED);
  });

  test('the options are checked: a TypeError naming rateLimit', async (tc) => {
    const t = await start(tc, namespaces);
    const bad: [unknown, RegExp][] = [
      [{ connections: 3 }, /^rateLimit: options\.connections must be an object/],
      [{ connections: { perUser: 0 } }, /^rateLimit: options\.connections\.perUser must be/],
      [{ connections: { perSession: 1.5 } }, /^rateLimit: options\.connections\.perSession/],
      [{ connections: { onExceed: 'queue' } }, /^rateLimit: options\.connections\.onExceed/],
      [{ connections: { retryAfterMs: -1 } }, /^rateLimit: options\.connections\.retryAfterMs/],
      [
        { connections: { perIp: { points: 5, durationMs: 1500 } } },
        /^rateLimit: options\.connections\.perIp\.durationMs must be a whole number of seconds/,
      ],
      [
        { connections: { perIp: { points: 0, durationMs: 1000 } } },
        /^rateLimit: options\.connections\.perIp\.points/,
      ],
    ];
    for (const [options, message] of bad) {
      assert.throws(
        () => rateLimit(t.io, options as RateLimitOptions),
        (err: unknown) => {
          assert.ok(err instanceof TypeError);
          assert.match(err.message, message);
          return true;
        },
      );
    }
  });
});

describe('rateLimit connections: why a socket was refused', () => {
  test("the reason, in err.data.reason with explain and in the handshake's diagnostics message", async (tc) => {
    const handshakes: { outcome: string; reason: unknown }[] = [];
    const listener = (message: unknown): void => {
      handshakes.push(message as { outcome: string; reason: unknown });
    };
    diagnosticsChannel.subscribe('socket.io-session-auth:handshake', listener);
    tc.after(() => diagnosticsChannel.unsubscribe('socket.io-session-auth:handshake', listener));
    const t = await start(tc, ({ io, session, passport }) => {
      requireAuth(sessionNamespace(io.of('/chat'), session, { passport, explain: true }));
      requireAuth(sessionNamespace(io.of('/news'), session, { passport }));
      rateLimit(io, { connections: { perUser: 1 } });
    });
    const alice = await t.login('alice');
    await connected(t.connect('/chat', { cookie: alice }));
    // With the namespace's explain: the reason reaches the (developer's) client.
    const explained = await connectError(t.connect('/chat', { cookie: alice }));
    assert.deepEqual(explained.data, {
      code: ERR_RATE_LIMITED,
      status: 429,
      retryAfterMs: 5000,
      reason: 'user-socket-limit',
    });
    // Without it: not in err.data, but in the handshake's diagnostics message (the kit's).
    const plain = await connectError(t.connect('/news', { cookie: alice }));
    assert.deepEqual(plain.data, { code: ERR_RATE_LIMITED, status: 429, retryAfterMs: 5000 });
    const refused = handshakes.filter((m) => m.outcome === 'refused').map((m) => m.reason);
    assert.deepEqual(refused, ['user-socket-limit', 'user-socket-limit']);
  });
});
