import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SessionData } from 'express-session';
import type { Socket as ServerSocket } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import {
  ERR_AUTHORIZE_ERROR,
  ERR_FORBIDDEN,
  ERR_SESSION_EXPIRED,
  ERR_UNAUTHORIZED,
  SESSION_ENDED_EVENT,
  requireAuth,
  sessionNamespace,
  type EventRefusal,
  type RequireAuthOptions,
} from '../../lib/index.js';
import { delay, request, waitFor } from '../support/client.js';
import { testClock } from '../support/clock.js';
import {
  CountingStore,
  type TestContext,
  type TestServer,
  sidOf,
  start,
} from '../support/server.js';
import { within, connected, emitWithReply } from '../support/bounded.js';

// ---------------------------------------------------------------------------------------------
// Helpers (local to this spec)
// ---------------------------------------------------------------------------------------------

const FORBIDDEN: EventRefusal = {
  error: { message: 'Forbidden', code: ERR_FORBIDDEN, status: 403 },
};
const AUTHORIZE_ERROR: EventRefusal = {
  error: { message: 'Internal Server Error', code: ERR_AUTHORIZE_ERROR, status: 500 },
};
const UNAUTHORIZED: EventRefusal = {
  error: { message: 'Unauthorized', code: ERR_UNAUTHORIZED, status: 401 },
};

interface Call {
  user: string;
  event: string;
  args: unknown[];
  socket: ServerSocket;
}

interface Guarded {
  /** Events that reached a handler: `event:first argument`. */
  handled: string[];
  /** What authorizeEvent was called with. */
  calls: Call[];
  /** What onError received. */
  reported: { error: unknown; socket: ServerSocket }[];
  /** Errors the server-side sockets emitted. */
  socketErrors: unknown[];
  /** The server-side sockets, as they connected. */
  sockets: ServerSocket[];
}

/**
 * `/ns`: session + Passport, then requireAuth with `authorizeEvent` (wrapped to record calls).
 * Handlers: `say` (text, ack?) and `note` (text).
 */
function guarded(
  ctx: TestContext,
  authorizeEvent: NonNullable<RequireAuthOptions['authorizeEvent']>,
  options: Omit<RequireAuthOptions, 'authorizeEvent' | 'onError'> = {},
  name = '/ns',
): Guarded {
  const g: Guarded = { handled: [], calls: [], reported: [], socketErrors: [], sockets: [] };
  const { io, session, passport } = ctx;
  requireAuth(sessionNamespace(io.of(name), session, { passport }), {
    ...options,
    authorizeEvent: (user, event, args, socket) => {
      g.calls.push({ user: user.username, event, args, socket });
      return authorizeEvent(user, event, args, socket);
    },
    onError: (error, socket) => {
      g.reported.push({ error, socket });
    },
  }).on('connection', (socket) => {
    g.sockets.push(socket);
    socket.on('error', (error: unknown) => {
      g.socketErrors.push(error);
    });
    socket.on('say', (text: unknown, ...rest: unknown[]) => {
      g.handled.push(`say:${String(text)}`);
      const ack = rest.at(-1);
      if (typeof ack === 'function') (ack as (reply: string) => void)(`said:${String(text)}`);
    });
    socket.on('note', (text: unknown) => {
      g.handled.push(`note:${String(text)}`);
    });
  });
  return g;
}

async function aliceOn(t: TestServer, nsp = '/ns'): Promise<ClientSocket> {
  const cookie = await t.login('alice');
  const client = t.connect(nsp, { cookie });
  await connected(client);
  return client;
}

/** Records what the client receives, apart from acks. */
function incoming(client: ClientSocket): unknown[][] {
  const seen: unknown[][] = [];
  client.onAny((...args: unknown[]) => {
    seen.push(args);
  });
  return seen;
}

// ---------------------------------------------------------------------------------------------
// authorizeEvent
// ---------------------------------------------------------------------------------------------

describe('requireAuth authorizeEvent: allowed events', () => {
  test('reach their handler with their arguments; authorizeEvent gets (user, event, args, socket)', async (tc) => {
    let g: Guarded | undefined;
    const t = await start(tc, (ctx) => {
      g = guarded(ctx, () => true);
    });
    const client = await aliceOn(t);
    assert.ok(g);
    assert.deepEqual(await emitWithReply(client, 'say', 'hi', 42), ['said:hi']);
    client.emit('note', 'plain');
    assert.deepEqual(await emitWithReply(client, 'say', 'again'), ['said:again']);
    assert.deepEqual(g.handled, ['say:hi', 'note:plain', 'say:again']);
    assert.deepEqual(
      // The data the client sent (an ack callback, when asked for, is not data).
      g.calls.map((c) => [c.user, c.event, c.args.filter((a) => typeof a !== 'function')]),
      [
        ['alice', 'say', ['hi', 42]],
        ['alice', 'note', ['plain']],
        ['alice', 'say', ['again']],
      ],
    );
    assert.equal(g.calls[1]?.args.length, 1, 'an event sent without an ack: its arguments only');
    const [server] = g.sockets;
    assert.ok(server);
    assert.ok(
      g.calls.every((c) => c.socket === server),
      'the server-side socket',
    );
  });
});

describe('requireAuth authorizeEvent: refused events', () => {
  test('with an ack: never reaches its handler; the ack gets one argument { error: Forbidden, ERR_FORBIDDEN, 403 }', async (tc) => {
    let g: Guarded | undefined;
    const t = await start(tc, (ctx) => {
      g = guarded(ctx, (_user, event) => event !== 'say');
    });
    const client = await aliceOn(t);
    assert.ok(g);
    const reply = await emitWithReply(client, 'say', 'secret');
    assert.equal(reply.length, 1, 'one argument');
    assert.deepEqual(reply, [FORBIDDEN]);
    assert.deepEqual(g.handled, []);
    // emitWithAck resolves with that one argument too.
    assert.deepEqual(await request(client, 'say', 'secret'), FORBIDDEN);
    assert.deepEqual(g.handled, []);
    assert.deepEqual(g.socketErrors, [], 'no error event on the server socket');
    assert.equal(client.connected, true, 'a refused event does not disconnect');
  });

  test('without an ack: nothing reaches the client, the handler never runs, later events still work', async (tc) => {
    let g: Guarded | undefined;
    const t = await start(tc, (ctx) => {
      g = guarded(ctx, (_user, event) => event === 'say');
    });
    const client = await aliceOn(t);
    assert.ok(g);
    const seen = incoming(client);
    const errors: unknown[] = [];
    client.on('connect_error', (err) => errors.push(err));
    client.emit('note', 'refused one');
    client.emit('note', 'refused two');
    // An allowed event sent after them: once its ack is back, the refused ones were handled.
    assert.deepEqual(await emitWithReply(client, 'say', 'after'), ['said:after']);
    assert.deepEqual(g.handled, ['say:after']);
    assert.deepEqual(
      g.calls.map((c) => c.event),
      ['note', 'note', 'say'],
    );
    assert.deepEqual(seen, [], 'nothing was sent to the client');
    assert.deepEqual(errors, []);
    assert.deepEqual(g.socketErrors, []);
    assert.equal(client.connected, true);
  });

  test('async authorizeEvent: resolves true → handled; resolves false → Forbidden', async (tc) => {
    let g: Guarded | undefined;
    const t = await start(tc, (ctx) => {
      g = guarded(ctx, async (_user, _event, args) => {
        // A slow policy check (pacing, not an assertion): both events are decided while in flight.
        await delay(20);
        return args[0] === 'allowed';
      });
    });
    const client = await aliceOn(t);
    assert.ok(g);
    const [allowed, refused] = await Promise.all([
      emitWithReply(client, 'say', 'allowed'),
      emitWithReply(client, 'say', 'refused'),
    ]);
    assert.deepEqual(allowed, ['said:allowed']);
    assert.deepEqual(refused, [FORBIDDEN]);
    assert.deepEqual(g.handled, ['say:allowed']);
  });

  test('decides per user: alice (admin) may, bob (member) may not', async (tc) => {
    let g: Guarded | undefined;
    const t = await start(tc, (ctx) => {
      g = guarded(ctx, (user, event) => event !== 'say' || user.role === 'admin');
    });
    const alice = await aliceOn(t);
    const bobCookie = await t.login('bob');
    const bob = t.connect('/ns', { cookie: bobCookie });
    await connected(bob);
    assert.ok(g);
    assert.deepEqual(await emitWithReply(alice, 'say', 'a'), ['said:a']);
    assert.deepEqual(await emitWithReply(bob, 'say', 'b'), [FORBIDDEN]);
    assert.deepEqual(g.handled, ['say:a']);
  });
});

describe('requireAuth authorizeEvent: failures', () => {
  const failure = new Error('policy service down');
  const cases: [string, () => boolean | Promise<boolean>][] = [
    [
      'throws',
      () => {
        throw failure;
      },
    ],
    ['rejects', () => Promise.reject(failure)],
    [
      'is an async function that throws',
      async () => {
        await delay(5);
        throw failure;
      },
    ],
  ];
  for (const [label, check] of cases) {
    test(`authorizeEvent ${label}: the ack gets ERR_AUTHORIZE_ERROR 500; onError gets the error and the socket; the handler never runs`, async (tc) => {
      let g: Guarded | undefined;
      const t = await start(tc, (ctx) => {
        g = guarded(ctx, check);
      });
      const client = await aliceOn(t);
      assert.ok(g);
      assert.deepEqual(await emitWithReply(client, 'say', 'x'), [AUTHORIZE_ERROR]);
      client.emit('note', 'no ack');
      await waitFor(() => g?.reported.length === 2, 5000, 'both errors reported');
      assert.deepEqual(g.handled, []);
      const [server] = g.sockets;
      assert.ok(server);
      assert.deepEqual(g.reported, [
        { error: failure, socket: server },
        { error: failure, socket: server },
      ]);
      assert.doesNotMatch(JSON.stringify(AUTHORIZE_ERROR), /policy service/);
      assert.equal(client.connected, true);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Events of a socket whose session has ended
// ---------------------------------------------------------------------------------------------

/** A real MemoryStore whose reads can be held, to stop time at the expiry's store check. */
class HeldReads extends CountingStore {
  holdGets = false;
  heldGets: (() => void)[] = [];

  override get(sid: string, cb: (err: unknown, session?: SessionData | null) => void): void {
    if (this.holdGets) {
      this.heldGets.push(() => {
        super.get(sid, cb);
      });
      return;
    }
    super.get(sid, cb);
  }

  releaseGets(): void {
    this.holdGets = false;
    for (let next = this.heldGets.shift(); next; next = this.heldGets.shift()) next();
  }
}

describe('events from a socket whose session has ended', () => {
  test('expired, the store check at the expiry still pending: refused ERR_UNAUTHORIZED 401 before authorizeEvent is asked; then session:ended', async (tc) => {
    const store = new HeldReads();
    let g: Guarded | undefined;
    let plainHandled = 0;
    const t = await start(
      tc,
      (ctx) => {
        g = guarded(ctx, () => true);
        // Without requireAuth: the session guard alone refuses too.
        sessionNamespace(ctx.io.of('/plain'), ctx.session, { passport: ctx.passport }).on(
          'connection',
          (socket) => {
            socket.on('say', (_text: unknown, ack?: (reply: string) => void) => {
              plainHandled++;
              ack?.('said');
            });
          },
        );
      },
      { sessionOptions: { store, cookie: { maxAge: 60_000 } } },
    );
    const cookie = await t.login('alice');
    // 1.5 s left once both handshakes have read the session; every read after theirs (the
    // expiry's checks) is held, whenever the expiry comes.
    void store.expireOnceRead(sidOf(cookie), 1500, 2).then(() => {
      store.holdGets = true;
    });
    const client = t.connect('/ns', { cookie });
    const plain = t.connect('/plain', { cookie });
    const ended = new Promise<unknown[]>((resolve) => {
      client.once(SESSION_ENDED_EVENT, (...args: unknown[]) => {
        resolve(args);
      });
    });
    await Promise.all([connected(client), connected(plain)]);
    assert.ok(g);
    assert.deepEqual(await emitWithReply(client, 'say', 'alive'), ['said:alive']);
    assert.deepEqual(await emitWithReply(plain, 'say', 'alive'), ['said']);
    assert.equal(store.holdGets, true, 'reads are held from the handshakes on');
    // The expiry passes; each socket's timer asks the store, and the answer is held.
    await waitFor(() => store.heldGets.length === 2, 1500 + 5000, 'the store checks at the expiry');
    const calls = g.calls.length;

    assert.deepEqual(await emitWithReply(client, 'say', 'late'), [UNAUTHORIZED]);
    client.emit('note', 'late, no ack');
    assert.deepEqual(await emitWithReply(plain, 'say', 'late'), [UNAUTHORIZED]);
    assert.equal(g.calls.length, calls, 'authorizeEvent was not asked');
    assert.deepEqual(g.handled, ['say:alive']);
    assert.equal(plainHandled, 1);
    assert.equal(client.connected, true, 'still connected until the store answers');

    store.releaseGets();
    assert.deepEqual(await within(ended, 'session:ended'), [
      { message: 'Session expired', data: { code: ERR_SESSION_EXPIRED, status: 401 } },
    ]);
    await waitFor(
      () => t.io.of('/ns').sockets.size === 0 && t.io.of('/plain').sockets.size === 0,
      5000,
      'both sockets ended',
    );
    assert.deepEqual(g.handled, ['say:alive']);
  });

  test('events sent all through the expiry: no handler runs at or after the end; every ack is the reply or the refusal', async (tc) => {
    let g: Guarded | undefined;
    let endedAt = Number.POSITIVE_INFINITY;
    const handledAt: number[] = [];
    const t = await start(
      tc,
      (ctx) => {
        g = guarded(ctx, () => true);
        ctx.io.of('/ns').on('connection', (socket) => {
          socket.on('say', () => {
            handledAt.push(Date.now());
          });
          socket.on('disconnect', () => {
            endedAt = Date.now();
          });
        });
      },
      { sessionOptions: { cookie: { maxAge: 60_000 } } },
    );
    // The package's time: moved past the expiry while events are in flight, not waited for.
    const clock = testClock(t);
    const cookie = await t.login('alice');
    // 1 s left once the handshake has read the session, however long the login took.
    const expiry = t.store.expireOnceRead(sidOf(cookie), 1000);
    const client = t.connect('/ns', { cookie });
    await connected(client);
    const expiresAt = await expiry;
    assert.ok(g);
    const replies: unknown[][] = [];
    const end = { seen: false };
    client.once(SESSION_ENDED_EVENT, () => {
      end.seen = true;
    });
    let i = 0;
    let moved: Promise<void> | undefined;
    // Until session:ended arrives; the bound only keeps a package that never ends it from
    // looping for ever.
    while (!end.seen && Date.now() < expiresAt + 10_000) {
      client.emit('say', i++, (...reply: unknown[]) => {
        replies.push(reply);
      });
      // Pacing, not an assertion: an event every 10 ms, so that some meet the end in flight.
      await delay(10);
      // A second past the expiry (the package counts it from its own clock, a millisecond or so
      // apart), once some events were handled, with more still coming.
      if (i === 10) moved = clock.advanceTo(expiresAt + 1000);
    }
    await moved;
    assert.ok(end.seen, 'session:ended arrived');
    await waitFor(() => endedAt !== Number.POSITIVE_INFINITY, 5000, 'the server-side end');
    assert.ok(handledAt.length > 0, 'events were handled while the session lived');
    assert.ok(
      handledAt.every((at) => at <= endedAt),
      'no handler ran after the socket was ended',
    );
    for (const reply of replies) {
      assert.equal(reply.length, 1);
      const [first] = reply;
      assert.ok(
        (typeof first === 'string' && first.startsWith('said:')) ||
          JSON.stringify(first) === JSON.stringify(UNAUTHORIZED),
        `unexpected ack ${JSON.stringify(reply)}`,
      );
    }
  });
});
