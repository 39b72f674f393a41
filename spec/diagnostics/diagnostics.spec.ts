// The diagnostics channels (node:diagnostics_channel) and "why is there no user?": every message a
// subscriber gets for each refusal code and each way a socket ends, each reason an anonymous or
// refused socket has, and that the reason reaches the client only with `explain`.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import { format } from 'node:util';
import type { Socket as ClientSocket } from 'socket.io-client';
import {
  ERR_FORBIDDEN,
  ERR_ORIGIN_FORBIDDEN,
  ERR_SESSION_REVOKED,
  ERR_SESSION_UNAVAILABLE,
  ERR_UNAUTHORIZED,
  disconnectOnLogout,
  disconnectSession,
  disconnectUser,
  refreshUser,
  requireAuth,
  sessionNamespace,
  wrapExpressMiddleware,
} from '../../lib/index.js';
import { debug } from '../../lib/diagnostics/debug.js';
import { CHANNELS, connectionDigest } from '../../lib/diagnostics/diagnostics.js';
import { createMetrics } from '../../examples/passport/metrics.js';
import { connected, connectError, within } from '../support/bounded.js';
import { request } from '../support/client.js';
import { type TestContext, type TestServer, sidOf, start, users } from '../support/server.js';

type Message = Record<string, unknown>;

/** Subscribes to every channel for the test; returns what arrived, by channel. */
function subscribe(tc: NodeTestContext): Record<keyof typeof CHANNELS, Message[]> {
  const seen = {
    handshake: [] as Message[],
    eventRefused: [] as Message[],
    sessionEnded: [] as Message[],
    storeError: [] as Message[],
    broadcast: [] as Message[],
    presence: [] as Message[],
    rateLimited: [] as Message[],
    storeEvents: [] as Message[],
  };
  for (const [key, name] of Object.entries(CHANNELS) as [keyof typeof CHANNELS, string][]) {
    const listener = (message: unknown): void => {
      seen[key].push(message as Message);
    };
    diagnosticsChannel.subscribe(name, listener);
    tc.after(() => diagnosticsChannel.unsubscribe(name, listener));
  }
  return seen;
}

/** Resolves once `list` holds a message that `match` accepts, and returns it. */
async function arrived(
  list: Message[],
  match: (m: Message) => boolean,
  what: string,
): Promise<Message> {
  const found = (): Message | undefined => list.find(match);
  const deadline = Date.now() + 5000;
  while (!found()) {
    if (Date.now() > deadline) throw new Error(`no ${what} message: ${JSON.stringify(list)}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return found() as Message;
}

function app(explain: boolean) {
  return (ctx: TestContext): void => {
    const { io, session, passport } = ctx;
    const answer = (nsp: ReturnType<typeof io.of>): void => {
      nsp.on('connection', (socket) => {
        socket.on('who', (cb: (user: string | null) => void) => {
          cb(socket.request.user?.username ?? null);
        });
      });
    };
    answer(sessionNamespace(io.of('/open'), session, { passport, explain }));
    answer(
      requireAuth(sessionNamespace(io.of('/chat'), session, { passport, explain }), {
        authorizeEvent: (_user, event) => event !== 'forbidden',
      }),
    );
    answer(
      requireAuth(sessionNamespace(io.of('/admin'), session, { passport, explain }), {
        authorize: (user) => user.role === 'admin',
      }),
    );
    answer(
      sessionNamespace(io.of('/strict'), session, {
        passport,
        explain,
        allowedOrigins: ['https://app.example'],
      }),
    );
  };
}

async function server(tc: NodeTestContext, explain = false): Promise<TestServer> {
  return start(tc, app(explain), { afterSession: (io) => [disconnectOnLogout(io)] });
}

describe('diagnostics channels', () => {
  test('handshake: accepted and refused, with the code, status, duration and transport', async (tc) => {
    const seen = subscribe(tc);
    const t = await server(tc);
    const bob = await t.login('bob');
    const ok = t.connect('/chat', { cookie: bob, transports: ['websocket'] });
    await connected(ok);
    const forbidden = await connectError(t.connect('/admin', { cookie: bob }));
    assert.equal(forbidden.data?.code, ERR_FORBIDDEN);
    const anonymous = await connectError(t.connect('/chat'));
    assert.equal(anonymous.data?.code, ERR_UNAUTHORIZED);
    const accepted = await arrived(seen.handshake, (m) => m.outcome === 'accepted', 'accepted');
    assert.deepEqual(
      { ...accepted, durationMs: typeof accepted.durationMs, socketId: typeof accepted.socketId },
      {
        namespace: '/chat',
        socketId: 'string',
        connection: connectionDigest(ok.io.engine.id),
        outcome: 'accepted',
        code: undefined,
        status: undefined,
        reason: undefined,
        durationMs: 'number',
        transport: 'websocket',
      },
    );
    const refused = await arrived(seen.handshake, (m) => m.namespace === '/admin', 'refused');
    assert.deepEqual(
      [refused.outcome, refused.code, refused.status],
      ['refused', ERR_FORBIDDEN, 403],
    );
    const stranger = await arrived(
      seen.handshake,
      (m) => m.namespace === '/chat' && m.outcome === 'refused',
      'stranger',
    );
    assert.deepEqual(
      [stranger.code, stranger.status, stranger.reason],
      [ERR_UNAUTHORIZED, 401, 'no-cookie-header'],
    );
  });

  test('event-refused: authorizeEvent and an ended session', async (tc) => {
    const seen = subscribe(tc);
    const t = await server(tc);
    const alice = await t.login('alice');
    const socket = t.connect('/chat', { cookie: alice });
    await connected(socket);
    const reply = await request<{ error: { code: string } }>(socket, 'forbidden');
    assert.equal(reply.error.code, ERR_FORBIDDEN);
    const message = await arrived(seen.eventRefused, () => true, 'event-refused');
    assert.deepEqual(
      { ...message, socketId: typeof message.socketId },
      {
        namespace: '/chat',
        socketId: 'string',
        event: 'forbidden',
        code: ERR_FORBIDDEN,
        status: 403,
      },
    );
  });

  test('session-ended: how each socket ended (logout, rotation, revocation, refresh)', async (tc) => {
    const seen = subscribe(tc);
    const t = await server(tc);
    const endedHow = async (
      nsp: string,
      cookie: string,
      end: () => Promise<unknown>,
      how: string,
      code: string,
    ): Promise<void> => {
      const socket: ClientSocket = t.connect(nsp, { cookie });
      await connected(socket);
      const before = seen.sessionEnded.length;
      await end();
      const message = await arrived(
        seen.sessionEnded.slice(before),
        (m) => m.how === how,
        `session-ended ${how}`,
      );
      assert.deepEqual([message.namespace, message.code], [nsp, code]);
    };
    const one = await t.login('alice');
    await endedHow('/chat', one, () => t.logout(one), 'logout', ERR_SESSION_REVOKED);
    const two = await t.login('alice');
    await endedHow(
      '/chat',
      two,
      () => disconnectSession(t.io, sidOf(two)),
      'revocation',
      ERR_SESSION_REVOKED,
    );
    const three = await t.login('bob');
    await endedHow(
      '/chat',
      three,
      () => disconnectUser(t.io, '2'),
      'revocation',
      ERR_SESSION_REVOKED,
    );
    const four = await t.login('alice');
    const user = users.find((u) => u.username === 'alice');
    assert.ok(user);
    tc.after(() => {
      (user as { role: string }).role = 'admin';
    });
    await endedHow(
      '/admin',
      four,
      async () => {
        (user as { role: string }).role = 'member';
        await refreshUser(t.io, '1');
      },
      'refresh',
      ERR_FORBIDDEN,
    );
  });

  test('store-error: a store that fails, with its error', async (tc) => {
    const seen = subscribe(tc);
    const t = await server(tc);
    const alice = await t.login('alice');
    const failure = new Error('the store is on fire');
    t.store.get = (_sid, cb) => {
      cb(failure);
    };
    const refused = await connectError(t.connect('/chat', { cookie: alice }));
    assert.equal(refused.data?.code, ERR_SESSION_UNAVAILABLE);
    const message = await arrived(seen.storeError, () => true, 'store-error');
    assert.deepEqual(
      { ...message, socketId: typeof message.socketId },
      { namespace: '/chat', socketId: 'string', kind: 'error', error: failure },
    );
  });

  test('nothing is published, nor any reason computed, with no subscriber', async (tc) => {
    const t = await server(tc);
    const gets = t.store.gets;
    await connectError(t.connect('/chat', { cookie: 'connect.sid=s%3Aunknown.signature' }));
    // The stale cookie's signature is not checked against the store for a reason nobody wants.
    assert.equal(t.store.gets, gets);
  });
});

/** Whether the store has session `sid` (asked directly, as the spec's own check). */
function stored(store: TestServer['store'], sid: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    store.get(sid, (err: unknown, session) => {
      if (err) reject(new Error('store error', { cause: err }));
      else resolve(session ?? undefined);
    });
  });
}

/** The package's debug log, turned on and captured for the test. */
function captureDebug(tc: NodeTestContext): string[] {
  const logger = debug as unknown as { enabled: boolean; log?: (...args: unknown[]) => void };
  const lines: string[] = [];
  const { enabled, log } = logger;
  logger.enabled = true;
  logger.log = (...args: unknown[]) => {
    lines.push(format(...args));
  };
  tc.after(() => {
    logger.enabled = enabled;
    logger.log = log;
  });
  return lines;
}

describe('a client that leaves mid-handshake is left, never refused', () => {
  // Each step the package can be waiting on when the client goes: the session store's read, the
  // app's Express middleware (wrapExpressMiddleware) that never calls next, requireAuth's
  // authorize. The timeouts are the defaults (10 s): a leave must be told at once, not at them.
  test('every pending step, on polling and websocket, by an engine close or socket.disconnect()', async (tc) => {
    const seen = subscribe(tc);
    const logged = captureDebug(tc);
    const metrics = createMetrics((name) => name);
    tc.after(() => {
      metrics.close();
    });
    // Called by the step a handshake is held in, once it is waiting there.
    let entered: (() => void) | undefined;
    const enter = (): void => {
      entered?.();
    };
    let holdReads = false;
    const heldReads: (() => void)[] = [];
    const t = await start(tc, ({ io, app, session, passport }) => {
      sessionNamespace(io.of('/open'), session, { passport });
      sessionNamespace(io.of('/read'), session, { passport });
      sessionNamespace(io.of('/middleware'), session, { passport }).use(
        wrapExpressMiddleware(
          function neverNext() {
            enter();
          },
          { app },
        ),
      );
      requireAuth(sessionNamespace(io.of('/authorize'), session, { passport }), {
        authorize: () => {
          enter();
          return new Promise<boolean>(() => undefined);
        },
      });
    });
    const alice = await t.login('alice');
    // A real store whose reads wait for the spec while holdReads is on.
    const get = t.store.get.bind(t.store);
    t.store.get = (sid, cb) => {
      if (!holdReads) {
        get(sid, cb);
        return;
      }
      heldReads.push(() => {
        get(sid, cb);
      });
      enter();
    };
    tc.after(() => {
      holdReads = false;
      for (const release of heldReads.splice(0)) release();
    });

    const cases: { nsp: string; transport: 'polling' | 'websocket'; how: string }[] = [];
    for (const nsp of ['/read', '/middleware', '/authorize']) {
      for (const transport of ['polling', 'websocket'] as const) {
        for (const how of ['engine close', 'socket.disconnect()'])
          cases.push({ nsp, transport, how });
      }
    }
    for (const { nsp, transport, how } of cases) {
      const label = `${nsp} on ${transport}, ${how}`;
      const before = seen.handshake.length;
      holdReads = nsp === '/read';
      const reached = new Promise<void>((resolve) => {
        entered = resolve;
      });
      const client = t.connect(nsp, { cookie: alice, transports: [transport] });
      await within(reached, `${label}: the step is waiting`);
      if (how === 'engine close') client.io.engine.close();
      else client.disconnect();
      const message = await arrived(
        seen.handshake,
        (m) => seen.handshake.indexOf(m) >= before && m.namespace === nsp,
        label,
      );
      assert.deepEqual(
        {
          ...message,
          socketId: typeof message.socketId,
          connection: typeof message.connection,
          durationMs: typeof message.durationMs,
        },
        {
          namespace: nsp,
          socketId: 'string',
          connection: 'string',
          outcome: 'left',
          code: undefined,
          status: undefined,
          reason: undefined,
          durationMs: 'number',
          transport,
        },
        label,
      );
    }
    holdReads = false;
    for (const release of heldReads.splice(0)) release();

    // A handshake after them all: its message comes after any late one of theirs would have.
    await connected(t.connect('/open', { cookie: alice }));
    await arrived(seen.handshake, (m) => m.namespace === '/open', 'the last handshake');
    const outcomes = seen.handshake.map((m) => `${String(m.namespace)} ${String(m.outcome)}`);
    assert.deepEqual(outcomes, [...cases.map(({ nsp }) => `${nsp} left`), '/open accepted']);
    assert.deepEqual(seen.storeError, [], 'a client that left is no store failure');

    // Nothing else calls them refused: not the debug log, not the demo's Prometheus counters.
    const ids = seen.handshake.slice(0, -1).map((m) => String(m.socketId));
    for (const id of ids) {
      const about = logged.filter((line) => line.includes(id));
      assert.ok(
        about.some((line) => line.includes('left mid-handshake')),
        `the debug log says ${id} left: ${about.join('\n')}`,
      );
      assert.ok(
        !about.some((line) => /refus|ERR_|timeout/i.test(line)),
        `nothing in the debug log calls ${id} refused: ${about.join('\n')}`,
      );
    }
    const text = await metrics.registry.metrics();
    const handshakes = text
      .split('\n')
      .filter((line) => line.startsWith('socketio_session_auth_handshakes_total{'));
    assert.deepEqual(handshakes.sort(), [
      'socketio_session_auth_handshakes_total{namespace="/authorize",outcome="left",code=""} 4',
      'socketio_session_auth_handshakes_total{namespace="/middleware",outcome="left",code=""} 4',
      'socketio_session_auth_handshakes_total{namespace="/open",outcome="accepted",code=""} 1',
      'socketio_session_auth_handshakes_total{namespace="/read",outcome="left",code=""} 4',
    ]);
  });

  test('namespaces of one connection that share a store read are all left at once', async (tc) => {
    const seen = subscribe(tc);
    const t = await start(tc, ({ io, session, passport }) => {
      sessionNamespace(io.of('/one'), session, { passport });
      sessionNamespace(io.of('/two'), session, { passport });
    });
    const alice = await t.login('alice');
    const get = t.store.get.bind(t.store);
    const held: (() => void)[] = [];
    let entered: (() => void) | undefined;
    t.store.get = (sid, cb) => {
      held.push(() => {
        get(sid, cb);
      });
      entered?.();
    };
    tc.after(() => {
      for (const release of held.splice(0)) release();
    });
    const reached = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const client = t.connect('/one', { cookie: alice, transports: ['websocket'] });
    client.io.socket('/two').connect();
    // One read for both: the second namespace waits on the first's.
    await within(reached, 'the shared read is waiting');
    client.io.engine.close();
    // Within 5 s (arrived's bound), well before the 10 s timeoutMs a late release would take.
    for (const nsp of ['/one', '/two']) {
      const message = await arrived(seen.handshake, (m) => m.namespace === nsp, nsp);
      assert.deepEqual([message.outcome, message.code], ['left', undefined], nsp);
    }
  });
});

/** A cookie signed the way express-session signs it, with `secret`. */
function signed(sid: string, secret: string): string {
  const signature = createHmac('sha256', secret).update(sid).digest('base64').replace(/=+$/, '');
  return `connect.sid=${encodeURIComponent(`s:${sid}.${signature}`)}`;
}

describe('why there is no user (explain: true)', () => {
  const reasonFor = async (
    t: TestServer,
    nsp: string,
    options: { cookie?: string; extraHeaders?: Record<string, string> },
  ): Promise<unknown> => {
    const err = await connectError(t.connect(nsp, options));
    return err.data?.reason;
  };

  test('each reason, in err.data.reason', async (tc) => {
    const t = await server(tc, true);
    const alice = await t.login('alice');
    const sid = sidOf(alice);
    assert.equal(await reasonFor(t, '/chat', {}), 'no-cookie-header');
    assert.equal(await reasonFor(t, '/chat', { cookie: 'theme=dark' }), 'no-session-cookie');
    assert.equal(
      await reasonFor(t, '/chat', { cookie: signed(sid, 'another-secret') }),
      'bad-signature',
    );
    assert.equal(
      await reasonFor(t, '/chat', { cookie: signed('no-such-session', 'spec-secret') }),
      'session-not-found',
    );
    const refusedOrigin = await connectError(
      t.connect('/strict', { cookie: alice, extraHeaders: { origin: 'https://evil.example' } }),
    );
    assert.deepEqual(refusedOrigin.data, {
      code: ERR_ORIGIN_FORBIDDEN,
      status: 403,
      reason: 'origin-not-allowed',
    });
    // deserializeUser gives false: the user is gone.
    const user = users.find((u) => u.username === 'alice');
    assert.ok(user);
    const id = user.id;
    (user as { id: string }).id = 'gone';
    try {
      assert.equal(await reasonFor(t, '/chat', { cookie: alice }), 'user-not-found');
    } finally {
      (user as { id: string }).id = id;
    }
  });

  test("another app's session cookie is bad-signature, whether or not the store knows its ID", async (tc) => {
    const seen = subscribe(tc);
    const t = await server(tc, true);
    // Another express-session + Passport app of the same host (browsers send it the cookies of
    // every port): its own secret, the default cookie name. Its session is unknown here.
    const other = await start(tc, () => undefined, {
      sessionOptions: { secret: 'another-app-secret' },
    });
    const foreign = await other.login('alice');
    assert.match(foreign, /^connect\.sid=s%3A/);
    assert.equal(await stored(t.store, sidOf(foreign)), undefined, 'an ID this store lacks');
    assert.equal(await reasonFor(t, '/chat', { cookie: foreign }), 'bad-signature');
    const message = await arrived(
      seen.handshake,
      (m) => m.outcome === 'refused' && m.namespace === '/chat',
      'the refusal on the channel',
    );
    assert.equal(message.reason, 'bad-signature');

    const alice = await t.login('alice');
    // A known ID under another secret, and the same ID unsigned (express-session ignores it).
    assert.equal(
      await reasonFor(t, '/chat', { cookie: signed(sidOf(alice), 'another-secret') }),
      'bad-signature',
    );
    assert.equal(
      await reasonFor(t, '/chat', { cookie: `connect.sid=${sidOf(alice)}` }),
      'bad-signature',
    );
    // Signed here, its session gone (logged out: Passport regenerates it): session-not-found.
    await t.logout(alice);
    assert.equal(await stored(t.store, sidOf(alice)), undefined);
    assert.equal(await reasonFor(t, '/chat', { cookie: alice }), 'session-not-found');
    // Other cookies beside the session's do not make it another reason.
    assert.equal(
      await reasonFor(t, '/chat', { cookie: `theme=dark; ${foreign}` }),
      'bad-signature',
    );
  });

  test("every secret of express-session's list is this app's", async (tc) => {
    const t = await start(tc, app(true), {
      sessionOptions: { secret: ['new-secret', 'spec-secret'] },
    });
    for (const secret of ['new-secret', 'spec-secret']) {
      assert.equal(
        await reasonFor(t, '/chat', { cookie: signed('gone', secret) }),
        'session-not-found',
        secret,
      );
    }
    assert.equal(
      await reasonFor(t, '/chat', { cookie: signed('gone', 'retired-secret') }),
      'bad-signature',
    );
  });

  test('a session without a Passport user: no-passport-user; without { passport }: passport-not-given', async (tc) => {
    const t = await start(
      tc,
      ({ io, session, passport }) => {
        requireAuth(sessionNamespace(io.of('/chat'), session, { passport, explain: true }));
        requireAuth(sessionNamespace(io.of('/bare'), session, { explain: true }));
      },
      {
        afterSession: () => [
          (req, res, next) => {
            if (req.path !== '/visit') {
              next();
              return;
            }
            (req.session as unknown as Record<string, unknown>).visited = true;
            res.json({ ok: true });
          },
        ],
      },
    );
    const res = await fetch(`${t.url}/visit`, { method: 'POST' });
    await res.arrayBuffer();
    const visitor = res.headers.getSetCookie()[0]?.split(';')[0];
    assert.ok(visitor);
    assert.equal(await reasonFor(t, '/chat', { cookie: visitor }), 'no-passport-user');
    const alice = await t.login('alice');
    assert.equal(await reasonFor(t, '/bare', { cookie: alice }), 'passport-not-given');
  });

  test('without explain, no reason reaches the client (it goes to the channel)', async (tc) => {
    const seen = subscribe(tc);
    const t = await server(tc, false);
    const err = await connectError(t.connect('/chat', { cookie: 'theme=dark' }));
    assert.deepEqual(err.data, { code: ERR_UNAUTHORIZED, status: 401 });
    const message = await arrived(
      seen.handshake,
      (m) => m.outcome === 'refused',
      'the refusal on the channel',
    );
    assert.equal(message.reason, 'no-session-cookie');
    const origin = await connectError(
      t.connect('/strict', { extraHeaders: { origin: 'https://evil.example' } }),
    );
    assert.deepEqual(origin.data, { code: ERR_ORIGIN_FORBIDDEN, status: 403 });
  });

  test('an anonymous socket that is let in: its reason is on the channel', async (tc) => {
    const seen = subscribe(tc);
    const t = await server(tc, false);
    const socket = t.connect('/open', { cookie: 'theme=dark' });
    await connected(socket);
    assert.equal(await request(socket, 'who'), null);
    const message = await within(
      arrived(seen.handshake, (m) => m.namespace === '/open', 'accepted'),
      'the accepted handshake',
    );
    assert.deepEqual([message.outcome, message.reason], ['accepted', 'no-session-cookie']);
  });
});
