import assert from 'node:assert/strict';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import type { SessionData } from 'express-session';
import type { RequestHandler } from 'express';
import type { Socket as ServerSocket } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import {
  ERR_SESSION_EXPIRED,
  ERR_SESSION_REVOKED,
  ERR_UNAUTHORIZED,
  SESSION_ENDED_EVENT,
  disconnectOnLogout,
  disconnectSession,
  requireAuth,
  sessionNamespace,
  type SessionNamespaceOptions,
} from '../../lib/index.js';
import { delay, request, waitFor, type ConnectError } from '../support/client.js';
import {
  CountingStore,
  type CreateTestServerOptions,
  type TestContext,
  type TestServer,
  start,
  sidOf,
} from '../support/server.js';
import { within, connected } from '../support/bounded.js';
import { destroyElsewhere, sessionRoom } from '../support/session-ending.js';
import { expiredInStore } from '../support/stores.js';
import { testClock, type TestClock } from '../support/clock.js';
import { settledTimeouts, timersBackTo } from '../support/timers.js';
import { reporting, whoami } from '../support/whoami.js';
import { Passport, storeKeepsTime } from '../support/stack.js';

// ---------------------------------------------------------------------------------------------
// Helpers (local to this spec)
// ---------------------------------------------------------------------------------------------

/** Resolves with the arguments of the next `event` the client receives. */
function nextEvent(socket: ClientSocket, event: string): Promise<unknown[]> {
  return new Promise((resolve) => {
    socket.once(event, (...args: unknown[]) => {
      resolve(args);
    });
  });
}

/** Waits until the namespace has no socket and no room left, and no engine connection is open. */
async function nothingLeft(t: TestServer, nsp: string): Promise<void> {
  await waitFor(
    () =>
      t.io.of(nsp).sockets.size === 0 &&
      t.io.of(nsp).adapter.rooms.size === 0 &&
      t.io.engine.clientsCount === 0,
    5000,
    `${nsp} to hold no socket, room or connection`,
  );
}

/** GET /ping: an ordinary HTTP request through express-session and Passport. */
const pingRoute: RequestHandler = (req, res, next) => {
  if (req.method === 'GET' && req.path === '/ping') {
    res.json({ user: req.user?.username ?? null });
    return;
  }
  next();
};

async function ping(t: TestServer, cookie: string): Promise<string | null> {
  const res = await fetch(`${t.url}/ping`, { headers: { cookie } });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { user: string | null };
  return body.user;
}

/** A namespace whose sockets answer `echo` with what they were sent. */
function echoing(ctx: TestContext, name: string, options?: SessionNamespaceOptions): void {
  const { io, session, passport } = ctx;
  reporting(sessionNamespace(io.of(name), session, { passport, ...options })).on(
    'connection',
    (socket) => {
      socket.on('echo', (value: unknown, ack: (value: unknown) => void) => {
        ack(value);
      });
    },
  );
}

/**
 * A server whose `/ns` answers `echo` (see echoing), and `endedAt()`: when the server side of a
 * `/ns` socket last disconnected (its 'disconnect' runs as the package ends it), NaN before.
 */
async function echoServer(
  tc: NodeTestContext,
  options: CreateTestServerOptions = {},
  namespaceOptions?: SessionNamespaceOptions,
  now: () => number = Date.now,
): Promise<{ t: TestServer; endedAt: () => number }> {
  let endedAt = Number.NaN;
  const t = await start(
    tc,
    (ctx) => {
      echoing(ctx, '/ns', namespaceOptions);
      ctx.io.of('/ns').on('connection', (socket) => {
        socket.on('disconnect', () => {
          endedAt = now();
        });
      });
    },
    options,
  );
  return { t, endedAt: () => endedAt };
}

/** 'an HTTP request extended the session': the socket's expiry, and the cookie's maxAge. */
const LEFT_MS = 1000;
const MAX_AGE_MS = 3000;

const ENDED_EXPIRED = {
  message: 'Session expired',
  data: { code: ERR_SESSION_EXPIRED, status: 401 },
};

/** A counting MemoryStore that also notes when each touch happened. */
class TouchLog extends CountingStore {
  touchedAt: number[] = [];
  override touch(sid: string, s: SessionData, cb?: () => void): void {
    this.touchedAt.push(Date.now());
    super.touch(sid, s, cb);
  }
}

// ---------------------------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------------------------

describe('session lifecycle: a socket never outlives its session', () => {
  test('800 ms left when the socket connects: session:ended ERR_SESSION_EXPIRED at the expiry, after its one store read, then disconnect; no store read per event', async (tc) => {
    // The package's time, moved to the expiry rather than waited for; the server's end is noted
    // in that time too.
    const noted: { clock?: TestClock } = {};
    const { t, endedAt: serverEndedAt } = await echoServer(
      tc,
      { sessionOptions: { cookie: { maxAge: 60_000 } } },
      undefined,
      () => noted.clock?.now() ?? Number.NaN,
    );
    const clock = (noted.clock = testClock(t));
    const baseline = await settledTimeouts();
    const cookie = await t.login('alice');
    // The expiry is set when the handshake reads the session, not raced from the login.
    const expiry = t.store.expireOnceRead(sidOf(cookie), 800);
    const client = t.connect('/ns', { cookie });
    const ended = nextEvent(client, SESSION_ENDED_EVENT);
    const disconnected = nextEvent(client, 'disconnect');
    await connected(client);
    const expiresAt = await expiry;
    const getsBefore = t.store.gets - clock.storeReads;
    // Ten events during the socket's life (not awaited: the session is short).
    const answers: unknown[] = [];
    for (let i = 0; i < 10; i++) {
      client.emit('echo', i, (value: unknown) => {
        answers.push(value);
      });
    }

    // A second past it: the package's expiry is counted from its clock when the handshake read
    // the cookie's maxAge (express-session's, from Date.now()), a millisecond or so apart.
    await clock.advanceTo(expiresAt + 1000);
    const [payload] = await within(ended, 'session:ended');
    assert.deepEqual(payload, ENDED_EXPIRED);
    const late = serverEndedAt() - expiresAt;
    assert.ok(late >= 0, `ended ${-late} ms before the expiry`);
    const [reason] = await within(disconnected, 'disconnect');
    assert.equal(reason, 'io server disconnect');
    assert.equal(client.connected, false);
    assert.equal(client.active, false, 'the client does not reconnect by itself');
    // The end came from the expiry's own check of the store (how soon after the expiry is the
    // bench's to measure, not a spec's): one read, or two on a store that keeps time itself and
    // still held the session at the first. (The clock's own read, as it expires the session in
    // the store at the time it moves to, is not the package's.)
    const reads = t.store.gets - clock.storeReads - getsBefore;
    assert.ok(
      reads === 1 || (storeKeepsTime && reads === 2),
      `${reads} store reads at the expiry, none for the events (${answers.length} answered)`,
    );
    await nothingLeft(t, '/ns');
    await timersBackTo(baseline);
    assert.equal(clock.timers, 0, "no timer left on the package's clock");
  });

  test('no store access per event: 100 events on a live session (maxAge 60 s)', async (tc) => {
    const { t } = await echoServer(tc, { sessionOptions: { cookie: { maxAge: 60_000 } } });
    const cookie = await t.login('alice');
    const client = t.connect('/ns', { cookie });
    await connected(client);
    assert.equal((await whoami(client)).user, 'alice');
    t.store.reset();
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) => request(client, 'echo', i)),
    );
    assert.deepEqual(
      answers,
      Array.from({ length: 100 }, (_, i) => i),
    );
    assert.deepEqual([t.store.gets, t.store.sets, t.store.touches, t.store.destroys], [0, 0, 0, 0]);
  });

  test('every socket of the session ends: two namespaces, two connections', async (tc) => {
    const t = await start(
      tc,
      (ctx) => {
        echoing(ctx, '/a');
        echoing(ctx, '/b');
      },
      { sessionOptions: { cookie: { maxAge: 60_000 } } },
    );
    const clock = testClock(t);
    const cookie = await t.login('bob');
    // 1 s left once both handshakes have read the session, however long they took to get there.
    const expiry = t.store.expireOnceRead(sidOf(cookie), 1000, 2);
    const a = t.connect('/a', { cookie });
    const b = t.connect('/b', { cookie });
    const endedA = nextEvent(a, SESSION_ENDED_EVENT);
    const endedB = nextEvent(b, SESSION_ENDED_EVENT);
    await Promise.all([connected(a), connected(b)]);
    // A second past it (the package counts it from its own clock, a millisecond or so apart).
    await clock.advanceTo((await expiry) + 1000);
    assert.deepEqual(await within(endedA, 'session:ended on /a'), [ENDED_EXPIRED]);
    assert.deepEqual(await within(endedB, 'session:ended on /b'), [ENDED_EXPIRED]);
    await nothingLeft(t, '/a');
    await nothingLeft(t, '/b');
  });

  test('an HTTP request extended the session meanwhile: not ended at the old expiry, one store read there', async (tc) => {
    const { t, endedAt: serverEndedAt } = await echoServer(tc, {
      sessionOptions: { cookie: { maxAge: MAX_AGE_MS } },
      afterSession: () => [pingRoute],
    });
    const baseline = await settledTimeouts();
    const cookie = await t.login('alice');
    // The socket's (old) expiry: LEFT_MS after its handshake read the session. The HTTP request
    // right after moves the stored expiry to MAX_AGE_MS after it, well past the old one, without
    // a sleep to space them.
    const expiry = t.store.expireOnceRead(sidOf(cookie), LEFT_MS);
    const client = t.connect('/ns', { cookie });
    const ended = nextEvent(client, SESSION_ENDED_EVENT);
    await connected(client);
    const oldExpiry = await expiry;
    const pingStart = Date.now();
    assert.equal(await ping(t, cookie), 'alice', 'express-session touches the stored expiry');
    const getsAfterPing = t.store.gets;

    const [payload] = await within(ended, 'session:ended', MAX_AGE_MS + 5000);
    assert.deepEqual(payload, ENDED_EXPIRED);
    const endedAt = serverEndedAt();
    assert.ok(endedAt > oldExpiry, 'the socket lived past its old expiry');
    assert.ok(
      endedAt >= pingStart + MAX_AGE_MS,
      `ended ${endedAt - pingStart} ms after the HTTP request, before the extended expiry`,
    );
    // One store read at the old expiry, one at the extended one (and one more on a store that
    // keeps time itself and still held the session at it).
    const reads = t.store.gets - getsAfterPing;
    assert.ok(reads === 2 || (storeKeepsTime && reads === 3), `${reads} store reads`);
    await nothingLeft(t, '/ns');
    await timersBackTo(baseline);
  });

  test('a socket that leaves before its session expires leaves no timer behind (maxAge 60 s)', async (tc) => {
    const { t } = await echoServer(tc, { sessionOptions: { cookie: { maxAge: 60_000 } } });
    const cookie = await t.login('alice');
    const baseline = await settledTimeouts();
    const clients = [t.connect('/ns', { cookie }), t.connect('/ns', { cookie })];
    await Promise.all(clients.map((client) => connected(client)));
    assert.equal(await request(clients[0] as ClientSocket, 'echo', 'hi'), 'hi');
    for (const client of clients) client.disconnect();
    await nothingLeft(t, '/ns');
    await timersBackTo(baseline);
  });

  test('the socket that expires first leaves: the next still ends at its own expiry, not before', async (tc) => {
    const { t } = await echoServer(tc, { sessionOptions: { cookie: { maxAge: 60_000 } } });
    const clock = testClock(t);
    const [alice, bob] = [await t.login('alice'), await t.login('bob')];
    // Alice's session expires 800 ms after her handshake read it, Bob's 3 s after his.
    const aliceExpiry = t.store.expireOnceRead(sidOf(alice), 800);
    const first = t.connect('/ns', { cookie: alice });
    await connected(first);
    const bobExpiry = t.store.expireOnceRead(sidOf(bob), 3000);
    const next = t.connect('/ns', { cookie: bob });
    const ended = nextEvent(next, SESSION_ENDED_EVENT);
    await connected(next);
    const [firstAt, nextAt] = [await aliceExpiry, await bobExpiry];
    first.disconnect();
    await waitFor(() => t.io.of('/ns').sockets.size === 1, 5000, 'the first socket to leave');
    // Past the expiry of the socket that left: the other one is still served (a round trip).
    await clock.advanceTo(firstAt + 1000);
    assert.equal(await request(next, 'echo', 'still here'), 'still here');
    assert.ok(nextAt > firstAt + 1000, 'the next expiry is later than where the clock stands');
    // A second past its own expiry, it ends.
    await clock.advanceTo(nextAt + 1000);
    assert.deepEqual(await within(ended, 'session:ended'), [ENDED_EXPIRED]);
    await nothingLeft(t, '/ns');
    assert.equal(clock.timers, 0, "no timer left on the package's clock");
  });

  test('a session without maxAge (browser-session cookie) is never ended by a timer', async (tc) => {
    const { t } = await echoServer(tc);
    const clock = testClock(t);
    const cookie = await t.login('alice');
    const baseline = await settledTimeouts();
    const client = t.connect('/ns', { cookie });
    let ended = false;
    client.on(SESSION_ENDED_EVENT, () => {
      ended = true;
    });
    await connected(client);
    // A year of the package's time: no timer of its comes due.
    await clock.advance(365 * 24 * 3600_000);
    assert.equal(clock.timers, 0, 'no timer armed');
    assert.equal(await request(client, 'echo', 'still here'), 'still here');
    assert.equal(ended, false);
    client.disconnect();
    await nothingLeft(t, '/ns');
    await timersBackTo(baseline);
  });
});

// ---------------------------------------------------------------------------------------------
// touchIntervalMs
// ---------------------------------------------------------------------------------------------

describe('session lifecycle: touchIntervalMs', () => {
  test('rolling session (maxAge 1000, touchIntervalMs 200): alive while the socket is active, touched at most once per interval, expires once quiet', async (tc) => {
    const store = new TouchLog();
    const { t, endedAt: serverEndedAt } = await echoServer(
      tc,
      {
        sessionOptions: { store, rolling: true, cookie: { maxAge: 1000 } },
        afterSession: () => [pingRoute],
      },
      { touchIntervalMs: 200 },
    );
    const cookie = await t.login('alice');
    const loginEnd = Date.now();
    store.reset();
    store.touchedAt = [];
    const client = t.connect('/ns', { cookie });
    let endedEarly = false;
    client.on(SESSION_ENDED_EVENT, () => {
      endedEarly = true;
    });
    await connected(client);
    assert.equal((await whoami(client)).user, 'alice', 'connected before the expiry');

    // Active for 2.5 s, well past the first expiry (loginEnd + 1000).
    let sent = 0;
    while (Date.now() < loginEnd + 2500) {
      assert.equal(await request(client, 'echo', sent), sent, `event ${sent} answered`);
      sent++;
      // Pacing, not an assertion: an active user, an event every 50 ms.
      await delay(50);
    }
    assert.equal(endedEarly, false, 'not ended while active');
    assert.equal(client.connected, true);
    assert.equal(store.touches, store.touchedAt.length);
    assert.ok(store.touches >= 3, `${store.touches} touches in 2.5 s`);
    assert.ok(store.touches < sent, `${store.touches} touches for ${sent} events`);
    const gaps = store.touchedAt.slice(1).map((at, i) => at - (store.touchedAt[i] ?? 0));
    assert.ok(
      gaps.every((gap) => gap >= 195),
      `touches closer than the interval: ${gaps.join(', ')}`,
    );
    assert.equal(await ping(t, cookie), 'alice', 'the session is alive in the store');

    // Quiet: the session expires and the socket ends.
    const ended = nextEvent(client, SESSION_ENDED_EVENT);
    const touches = store.touches;
    const lastTouch = store.touchedAt.at(-1) ?? Number.NaN;
    const [payload] = await within(ended, 'session:ended once quiet');
    assert.deepEqual(payload, ENDED_EXPIRED);
    // The rolled expiry is maxAge after the last touch (which may be up to an interval before the
    // last event), not after the moment the events stopped.
    const rolledFor = serverEndedAt() - lastTouch;
    assert.ok(
      rolledFor >= 990,
      `ended ${rolledFor} ms after the last touch: before the rolled expiry`,
    );
    assert.equal(store.touches, touches, 'no touch while quiet');
    assert.equal(await ping(t, cookie), null, 'expired in the store too');
    await nothingLeft(t, '/ns');
  });

  test('without touchIntervalMs: events never touch the store, the session expires on time', async (tc) => {
    const { t } = await echoServer(tc, {
      sessionOptions: { rolling: true, cookie: { maxAge: 60_000 } },
    });
    const clock = testClock(t);
    const cookie = await t.login('alice');
    // 1 s left once the handshake has read the session, however long the login took.
    const expiry = t.store.expireOnceRead(sidOf(cookie), 1000);
    t.store.reset();
    const client = t.connect('/ns', { cookie });
    const ended = nextEvent(client, SESSION_ENDED_EVENT);
    await connected(client);
    const expiresAt = await expiry;
    const gets = t.store.gets;
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => request(client, 'echo', i)),
    );
    assert.deepEqual(answers, [0, 1, 2, 3, 4, 5, 6, 7]);
    // A second past it (the package counts it from its own clock, a millisecond or so apart).
    await clock.advanceTo(expiresAt + 1000);
    const [payload] = await within(ended, 'session:ended');
    assert.deepEqual(payload, ENDED_EXPIRED);
    // Activity did not extend it: nothing was written, and the expiry's one store check ended it.
    // (The clock's own read and write, as it expires the session in the store at the time it
    // moves to, are not the package's.)
    assert.equal(t.store.touches, 0);
    assert.equal(t.store.sets - clock.storeWrites, 0);
    const reads = t.store.gets - clock.storeReads - gets;
    assert.ok(
      reads === 1 || (storeKeepsTime && reads === 2),
      `ended by the check at the expiry it had at connect (${reads} reads)`,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Who's online: socket.data.user
// ---------------------------------------------------------------------------------------------

describe("session lifecycle: who's online (socket.data.user)", () => {
  test('default: { id, username } of each user, through io.of(nsp).fetchSockets(); anonymous: none', async (tc) => {
    const { t } = await echoServer(tc);
    const [aliceCookie, bobCookie] = await Promise.all([t.login('alice'), t.login('bob')]);
    await Promise.all([
      connected(t.connect('/ns', { cookie: aliceCookie })),
      connected(t.connect('/ns', { cookie: bobCookie })),
      connected(t.connect('/ns')),
    ]);
    const sockets = await t.io.of('/ns').fetchSockets();
    const data = sockets.map((s) => s.data as { user?: unknown });
    assert.equal(data.length, 3);
    const users = data
      .map((d) => d.user)
      .filter((u) => u !== undefined)
      .sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
    // alice's role ('admin') and tenants are not there.
    assert.deepEqual(users, [
      { id: '1', username: 'alice' },
      { id: '2', username: 'bob' },
    ]);
    assert.equal(data.filter((d) => d.user === undefined).length, 1, 'the anonymous socket');
    for (const d of data) assert.deepEqual(JSON.parse(JSON.stringify(d)), d, 'serialisable');
  });

  test('default keeps id, username, name, displayName that are strings or numbers, nothing else', async (tc) => {
    const t = await start(tc, ({ io, session }) => {
      const rich = new Passport();
      rich.deserializeUser((_id: string, done) => {
        const user = {
          id: 7,
          username: 'alice',
          name: 'Alice Liddell',
          displayName: { first: 'Alice' },
          email: 'alice@example.test',
          role: 'admin',
          tenants: ['acme'],
          password: 'alice-pw',
        };
        done(null, user as unknown as Express.User);
      });
      sessionNamespace(io.of('/ns'), session, { passport: rich });
    });
    const cookie = await t.login('alice');
    await connected(t.connect('/ns', { cookie }));
    const [socket] = await t.io.of('/ns').fetchSockets();
    assert.deepEqual(socket?.data, { user: { id: 7, username: 'alice', name: 'Alice Liddell' } });
  });

  test('userData: (user) => … customises it', async (tc) => {
    const t = await start(tc, (ctx) => {
      echoing(ctx, '/ns', {
        userData: (user) => ({ handle: user.username.toUpperCase(), admin: user.role === 'admin' }),
      });
    });
    const cookie = await t.login('alice');
    await connected(t.connect('/ns', { cookie }));
    const sockets = await t.io.of('/ns').fetchSockets();
    assert.deepEqual(
      sockets.map((s) => s.data as unknown),
      [{ user: { handle: 'ALICE', admin: true } }],
    );
  });

  test('userData: false leaves socket.data empty', async (tc) => {
    const t = await start(tc, (ctx) => {
      echoing(ctx, '/ns', { userData: false });
    });
    const cookie = await t.login('alice');
    await connected(t.connect('/ns', { cookie }));
    const sockets = await t.io.of('/ns').fetchSockets();
    assert.deepEqual(
      sockets.map((s) => s.data as unknown),
      [{}],
    );
  });

  test('userData throws: onError gets the error, the socket still connects without data.user', async (tc) => {
    const failure = new Error('no summary today');
    const reported: { error: unknown; socket: ServerSocket }[] = [];
    const t = await start(tc, (ctx) => {
      echoing(ctx, '/ns', {
        userData: () => {
          throw failure;
        },
        onError: (error, socket) => {
          reported.push({ error, socket });
        },
      });
    });
    const cookie = await t.login('alice');
    const client = t.connect('/ns', { cookie });
    await connected(client);
    assert.equal(await request(client, 'echo', 1), 1);
    const [socket] = t.io.of('/ns').sockets.values();
    assert.ok(socket);
    assert.deepEqual(socket.data, {});
    assert.deepEqual(reported, [{ error: failure, socket }], 'the very error, and the socket');
  });
});

// ---------------------------------------------------------------------------------------------
// Connection state recovery
// ---------------------------------------------------------------------------------------------

interface Recovery {
  t: TestServer;
  cookie: string;
  client: ClientSocket;
  /** What the client received: [event, first argument]. */
  seen: [string, unknown][];
  firstId: string | undefined;
  handled: string[];
}

/**
 * A guarded namespace `/ns` with connectionStateRecovery on (skipMiddlewares defaults to true).
 * Logs alice in, connects over WebSocket, delivers one broadcast (so the client holds an offset),
 * then drops the transport without a clean disconnect and waits until the server has seen it, and
 * broadcasts again while the client is away. The client does not reconnect on its own.
 */
async function connectedThenAway(
  tc: NodeTestContext,
  options: CreateTestServerOptions = {},
  clientOptions: { reconnection?: boolean; reconnectionDelay?: number } = {},
): Promise<Recovery> {
  const handled: string[] = [];
  const t = await start(
    tc,
    ({ io, session, passport }) => {
      requireAuth(sessionNamespace(io.of('/ns'), session, { passport })).on(
        'connection',
        (socket) => {
          socket.on('whoami', (ack: (user: string | null) => void) => {
            handled.push('whoami');
            ack(socket.request.user?.username ?? null);
          });
        },
      );
    },
    { ...options, serverOptions: { ...options.serverOptions, connectionStateRecovery: {} } },
  );
  const cookie = await t.login('alice');
  const client = t.connect('/ns', {
    cookie,
    transports: ['websocket'],
    randomizationFactor: 0,
    ...clientOptions,
  });
  const seen: [string, unknown][] = [];
  client.onAny((event: string, first: unknown) => {
    seen.push([event, first]);
  });
  await connected(client);
  const firstId = client.id;
  assert.equal(client.recovered, false);
  assert.equal(await request(client, 'whoami'), 'alice');

  const news = nextEvent(client, 'news');
  t.io.of('/ns').emit('news', 'before');
  await within(news, 'the first broadcast');

  client.io.engine.close();
  await waitFor(
    () => t.io.of('/ns').sockets.size === 0 && !client.connected,
    5000,
    'the server to see the transport drop',
  );
  t.io.of('/ns').emit('news', 'while away');
  return { t, cookie, client, seen, firstId, handled };
}

type Outcome =
  { kind: 'connect'; recovered: boolean } | { kind: 'refused'; message: string; data: unknown };

function outcomeOf(client: ClientSocket): Promise<Outcome> {
  return within(
    new Promise<Outcome>((resolve) => {
      client.once('connect', () => {
        resolve({ kind: 'connect', recovered: client.recovered });
      });
      client.once('connect_error', (err: ConnectError) => {
        resolve({ kind: 'refused', message: err.message, data: err.data });
      });
    }),
    'reconnect',
  );
}

const REFUSED = {
  kind: 'refused',
  message: 'Unauthorized',
  data: { code: ERR_UNAUTHORIZED, status: 401 },
};

/** The refused client stays out, nothing was replayed to it, the server holds nothing for it. */
async function stayedOut(r: Recovery): Promise<void> {
  assert.equal(r.client.connected, false);
  assert.equal(r.client.recovered, false);
  assert.equal(r.client.active, false, 'a namespace-level refusal: the client stops');
  assert.ok(
    !r.seen.some(([event, first]) => event === 'news' && first === 'while away'),
    'the broadcast it missed was not replayed',
  );
  await nothingLeft(r.t, '/ns');
}

describe('session lifecycle: connection state recovery', () => {
  test('positive control: without revocation the socket recovers (same id, user kept, missed broadcast replayed)', async (tc) => {
    const r = await connectedThenAway(tc, { sessionOptions: { cookie: { maxAge: 60_000 } } });
    const baseline = await settledTimeouts();
    const outcome = outcomeOf(r.client);
    r.client.connect();
    assert.deepEqual(await outcome, { kind: 'connect', recovered: true });
    assert.equal(r.client.id, r.firstId);
    assert.equal(await request(r.client, 'whoami'), 'alice');
    await waitFor(
      () => r.seen.some(([event, first]) => event === 'news' && first === 'while away'),
      5000,
      'the missed broadcast',
    );
    const sockets = await r.t.io.of('/ns').fetchSockets();
    assert.deepEqual(
      sockets.map((s) => s.data as unknown),
      [{ user: { id: '1', username: 'alice' } }],
    );
    assert.equal(sockets[0]?.rooms.has(sessionRoom(sidOf(r.cookie))), true);
    r.client.disconnect();
    await nothingLeft(r.t, '/ns');
    await timersBackTo(baseline);
  });

  test('positive control with automatic reconnection (reconnectionDelay 100)', async (tc) => {
    const r = await connectedThenAway(tc, {}, { reconnection: true, reconnectionDelay: 100 });
    const outcome = outcomeOf(r.client);
    assert.deepEqual(await outcome, { kind: 'connect', recovered: true });
    assert.equal(await request(r.client, 'whoami'), 'alice');
  });

  test('logged out over HTTP with disconnectOnLogout while away: refused ERR_UNAUTHORIZED, not recovered', async (tc) => {
    const r = await connectedThenAway(tc, { afterSession: (io) => [disconnectOnLogout(io)] });
    await r.t.logout(r.cookie);
    const outcome = outcomeOf(r.client);
    r.client.connect();
    assert.deepEqual(await outcome, REFUSED);
    await stayedOut(r);
  });

  test('same, with automatic reconnection (reconnectionDelay 1000)', async (tc) => {
    // The client's own reconnection is held at the server's door until the logout is done, so
    // the logout comes first however slow the machine: not a race against the 1 s delay.
    let away = false;
    let letIn: () => void = () => undefined;
    const loggedOut = new Promise<void>((resolve) => {
      letIn = resolve;
    });
    const r = await connectedThenAway(
      tc,
      {
        afterSession: (io) => [disconnectOnLogout(io)],
        serverOptions: {
          allowRequest: (_req, callback) => {
            if (away) {
              void loggedOut.then(() => {
                callback(null, true);
              });
            } else callback(null, true);
          },
        },
      },
      { reconnection: true, reconnectionDelay: 1000 },
    );
    away = true;
    const outcome = outcomeOf(r.client);
    await r.t.logout(r.cookie);
    assert.equal(r.client.connected, false, 'logged out before the client came back');
    letIn();
    assert.deepEqual(await outcome, REFUSED);
    await stayedOut(r);
  });

  test('revoked while away (disconnectSession, session destroyed in the store): refused ERR_UNAUTHORIZED', async (tc) => {
    const r = await connectedThenAway(tc);
    const sid = sidOf(r.cookie);
    await new Promise<void>((resolve) => {
      r.t.store.destroy(sid, () => {
        resolve();
      });
    });
    await disconnectSession(r.t.io, sid);
    const outcome = outcomeOf(r.client);
    r.client.connect();
    assert.deepEqual(await outcome, REFUSED);
    await stayedOut(r);
  });

  test('disconnectSession while away, session left valid in the store: not recovered, back in as a new socket', async (tc) => {
    // disconnectSession ends sockets; it does not destroy the session. The away socket's state
    // is not restored (no recovery, no replay of what it missed); the middleware runs again and
    // admits the still-valid session as a brand-new socket.
    const r = await connectedThenAway(tc);
    await disconnectSession(r.t.io, sidOf(r.cookie));
    const outcome = outcomeOf(r.client);
    r.client.connect();
    assert.deepEqual(await outcome, { kind: 'connect', recovered: false });
    assert.notEqual(r.client.id, r.firstId);
    assert.equal(await request(r.client, 'whoami'), 'alice');
    assert.ok(
      !r.seen.some(([event, first]) => event === 'news' && first === 'while away'),
      'the broadcast it missed was not replayed',
    );
  });

  test('expired while away (maxAge 1000): refused ERR_UNAUTHORIZED, not recovered', async (tc) => {
    const r = await connectedThenAway(tc, { sessionOptions: { cookie: { maxAge: 1000 } } });
    // The cookie expires 1000 ms after the login; the connection is gone first.
    await waitFor(
      () => r.t.io.engine.clientsCount === 0,
      5000,
      'the dropped connection to be gone',
    );
    await expiredInStore(r.t.store, sidOf(r.cookie));
    const outcome = outcomeOf(r.client);
    r.client.connect();
    assert.deepEqual(await outcome, REFUSED);
    await stayedOut(r);
  });

  test('logged out over HTTP without disconnectOnLogout while away: refused ERR_UNAUTHORIZED, not recovered', async (tc) => {
    // The logout's destroy at the store ends the session as disconnectOnLogout's would.
    const r = await connectedThenAway(tc);
    await r.t.logout(r.cookie);
    const outcome = outcomeOf(r.client);
    r.client.connect();
    assert.deepEqual(await outcome, REFUSED);
    await stayedOut(r);
  });

  test('session destroyed where the package cannot see it while away: the recovered socket is checked again, gets session:ended, its events never reach a handler', async (tc) => {
    const r = await connectedThenAway(tc);
    await new Promise<void>((resolve) => {
      destroyElsewhere(r.t.store, sidOf(r.cookie), () => {
        resolve();
      });
    });
    const handledBefore = r.handled.length;
    const outcome = outcomeOf(r.client);
    const ended = nextEvent(r.client, SESSION_ENDED_EVENT);
    const disconnected = nextEvent(r.client, 'disconnect');
    let acked: unknown = 'no ack';
    r.client.once('connect', () => {
      // Sent at once: held until the recovered socket has been checked, then refused.
      r.client.emit('whoami', (reply: unknown) => {
        acked = reply;
      });
    });
    r.client.connect();
    const first = await outcome;
    assert.equal(first.kind, 'connect');
    const [payload] = await within(ended, 'session:ended');
    assert.deepEqual(payload, {
      message: 'Session revoked',
      data: { code: ERR_SESSION_REVOKED, status: 401 },
    });
    const [reason] = await within(disconnected, 'disconnect');
    assert.equal(reason, 'io server disconnect');
    assert.equal(r.client.connected, false, 'it does not end up connected');
    assert.equal(r.client.active, false);
    assert.equal(r.handled.length, handledBefore, 'the handler never ran');
    // The ack, if it arrives at all, is the refusal.
    assert.ok(
      acked === 'no ack' ||
        isDeepStrictEqual(acked, {
          error: { message: 'Unauthorized', code: ERR_UNAUTHORIZED, status: 401 },
        }),
      `ack: ${JSON.stringify(acked)}`,
    );
    await nothingLeft(r.t, '/ns');
  });
});
