import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Socket as ServerSocket } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import {
  ERR_AUTHORIZE_ERROR,
  ERR_FORBIDDEN,
  ERR_MIDDLEWARE_TIMEOUT,
  requireAuth,
  sessionNamespace,
  type EventRefusal,
  type RequireAuthOptions,
} from '../../lib/index.js';
import { delay, waitFor, shown } from '../support/client.js';
import { type TestContext, type TestServer, start } from '../support/server.js';
import { connected, connectError, emitWithReply } from '../support/bounded.js';
import { settledTimeouts, timersBackTo } from '../support/timers.js';

// ---------------------------------------------------------------------------------------------
// Helpers (local to this spec)
// ---------------------------------------------------------------------------------------------

const TIMEOUT = {
  message: 'Service Unavailable',
  data: { code: ERR_MIDDLEWARE_TIMEOUT, status: 503 },
};
const FORBIDDEN = { message: 'Forbidden', data: { code: ERR_FORBIDDEN, status: 403 } };
const AUTHORIZE_ERROR = {
  message: 'Internal Server Error',
  data: { code: ERR_AUTHORIZE_ERROR, status: 500 },
};
const refusalOf = (shape: { message: string; data: { code: string; status: number } }) =>
  ({ error: { message: shape.message, ...shape.data } }) satisfies EventRefusal;

interface Seen {
  connections: number;
  handled: string[];
  reported: unknown[];
}

/** `/ns` guarded by requireAuth with these options; `say` handlers record what they got. */
function guarded(ctx: TestContext, options: RequireAuthOptions): Seen {
  const seen: Seen = { connections: 0, handled: [], reported: [] };
  const { io, session, passport } = ctx;
  requireAuth(sessionNamespace(io.of('/ns'), session, { passport }), {
    ...options,
    onError: (error) => {
      seen.reported.push(error);
    },
  }).on('connection', (socket: ServerSocket) => {
    seen.connections++;
    socket.on('say', (text: unknown, ack?: (reply: string) => void) => {
      seen.handled.push(String(text));
      ack?.(`said:${String(text)}`);
    });
  });
  return seen;
}

/**
 * Logs alice in and opens `/ns` with this handshake `auth` payload. WebSocket only: no transport
 * upgrade, whose own timers would come and go while timers are counted.
 */
async function openAsAlice(t: TestServer, auth?: Record<string, unknown>): Promise<ClientSocket> {
  const cookie = await t.login('alice');
  return t.connect('/ns', { cookie, transports: ['websocket'], ...(auth && { auth }) });
}

const never = (): Promise<boolean> => new Promise<boolean>(() => undefined);

// ---------------------------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------------------------

describe('decide through requireAuth: checks that never settle', () => {
  test('authorize never settles: refused ERR_MIDDLEWARE_TIMEOUT 503 after timeoutMs (200); no timer left', async (tc) => {
    let seen: Seen | undefined;
    const t = await start(tc, (ctx) => {
      seen = guarded(ctx, { authorize: never, timeoutMs: 200 });
    });
    const cookie = await t.login('alice');
    const baseline = await settledTimeouts();
    const started = Date.now();
    const client = t.connect('/ns', { cookie });
    const refused = await connectError(client);
    const elapsed = Date.now() - started;
    assert.deepEqual(shown(refused), TIMEOUT);
    assert.equal(client.active, false, 'the client does not retry');
    assert.ok(elapsed >= 190, `refused after ${elapsed} ms, before timeoutMs`);
    assert.ok(elapsed < 9000, `refused after ${elapsed} ms: the 10 s default was used`);
    assert.equal(seen?.connections, 0);
    await waitFor(
      () => t.io.of('/ns').sockets.size === 0 && t.io.engine.clientsCount === 0,
      5000,
      'no socket or connection left',
    );
    await timersBackTo(baseline);
  });

  test('authorizeEvent never settles: the ack gets ERR_MIDDLEWARE_TIMEOUT 503; the handler never runs; no timer left; the socket stays', async (tc) => {
    let seen: Seen | undefined;
    const t = await start(tc, (ctx) => {
      seen = guarded(ctx, { authorizeEvent: never, timeoutMs: 200 });
    });
    const client = await openAsAlice(t);
    await connected(client);
    const baseline = await settledTimeouts();
    const started = Date.now();
    const [first, second] = await Promise.all([
      emitWithReply(client, 'say', 'one'),
      emitWithReply(client, 'say', 'two'),
    ]);
    const elapsed = Date.now() - started;
    assert.deepEqual(first, [refusalOf(TIMEOUT)]);
    assert.deepEqual(second, [refusalOf(TIMEOUT)]);
    assert.ok(elapsed >= 190, `refused after ${elapsed} ms, before timeoutMs`);
    assert.ok(elapsed < 9000, `refused after ${elapsed} ms: the 10 s default was used`);
    client.emit('say', 'no ack');
    // Refused by a timer started before this one's: once its refusal is back, the event without
    // an ack has had its answer too.
    assert.deepEqual(await emitWithReply(client, 'say', 'after'), [refusalOf(TIMEOUT)]);
    assert.deepEqual(seen?.handled, []);
    assert.equal(client.connected, true);
    await timersBackTo(baseline);
  });

  test('a check that settles after the timeout changes nothing: still refused, no late connection or handler', async (tc) => {
    let seen: Seen | undefined;
    let lateSettled = 0;
    // Each check settles only once the test has seen both refusals: after its timeout, whatever
    // the machine's load.
    let release = (): void => {};
    const refusalsSeen = new Promise<void>((resolve) => (release = resolve));
    tc.after(release);
    const late = async (): Promise<boolean> => {
      await refusalsSeen;
      lateSettled++;
      return true;
    };
    const t = await start(tc, (ctx) => {
      seen = guarded(ctx, {
        authorize: (_user, socket) =>
          (socket.handshake.auth as { late?: boolean }).late === true ? late() : true,
        authorizeEvent: late,
        timeoutMs: 200,
      });
    });
    const refused = await connectError(await openAsAlice(t, { late: true }));
    assert.deepEqual(shown(refused), TIMEOUT);
    const client = await openAsAlice(t);
    await connected(client);
    assert.deepEqual(await emitWithReply(client, 'say', 'x'), [refusalOf(TIMEOUT)]);
    release();
    // Both late checks have settled; what their settling set off (in microtasks and the next
    // tick) has run by the time the poll sees it.
    await waitFor(() => lateSettled === 2, 5000, 'the late checks to settle');
    assert.equal(seen?.connections, 1, 'only the second client connected');
    assert.equal(t.io.of('/ns').sockets.size, 1);
    assert.deepEqual(seen.handled, [], 'the late allowance did not run the handler');
  });

  test('async checks that settle in time leave no timer behind (timeoutMs 60000, 30 events)', async (tc) => {
    let seen: Seen | undefined;
    const t = await start(tc, (ctx) => {
      seen = guarded(ctx, {
        authorize: () => Promise.resolve(true),
        authorizeEvent: async () => {
          await delay(1);
          return true;
        },
        timeoutMs: 60_000,
      });
    });
    const client = await openAsAlice(t);
    await connected(client);
    const baseline = await settledTimeouts();
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) => emitWithReply(client, 'say', i)),
    );
    assert.deepEqual(
      replies,
      Array.from({ length: 30 }, (_, i) => [`said:${i}`]),
    );
    assert.equal(seen?.handled.length, 30);
    await timersBackTo(baseline);
  });

  test('a synchronous check is not timed: a slow sync authorizeEvent (timeoutMs 1) still allows', async (tc) => {
    const t = await start(tc, (ctx) => {
      guarded(ctx, {
        authorizeEvent: () => {
          const until = Date.now() + 20;
          while (Date.now() < until) {
            // busy: a synchronous check blocks, it cannot be cut short
          }
          return true;
        },
        timeoutMs: 1,
      });
    });
    const client = await openAsAlice(t);
    await connected(client);
    assert.deepEqual(await emitWithReply(client, 'say', 'slow'), ['said:slow']);
  });
});

// ---------------------------------------------------------------------------------------------
// Only a literal true allows
// ---------------------------------------------------------------------------------------------

const verdicts: Record<string, () => unknown> = {
  false: () => false,
  '1': () => 1,
  "'true'": () => 'true',
  '{}': () => ({}),
  '[]': () => [],
  null: () => null,
  undefined: () => undefined,
  'a resolved 1': () => Promise.resolve(1),
  "a resolved 'true'": () => Promise.resolve('true'),
  'a resolved false': () => Promise.resolve(false),
  'a thenable of 1': () => ({
    then(resolve: (value: unknown) => void) {
      resolve(1);
    },
  }),
};
const allowing: Record<string, () => unknown> = {
  true: () => true,
  'a resolved true': () => Promise.resolve(true),
  'a thenable of true': () => ({
    then(resolve: (value: unknown) => void) {
      resolve(true);
    },
  }),
};
const all = { ...verdicts, ...allowing };

function verdictOf(label: unknown): boolean | Promise<boolean> {
  const make = typeof label === 'string' ? all[label] : undefined;
  assert.ok(make, `no verdict ${String(label)}`);
  return make() as boolean | Promise<boolean>;
}

describe('decide through requireAuth: only a literal true allows', () => {
  test('authorize: every other value (sync or async) refuses with ERR_FORBIDDEN 403', async (tc) => {
    let seen: Seen | undefined;
    const t = await start(tc, (ctx) => {
      seen = guarded(ctx, {
        authorize: (_user, socket) => verdictOf((socket.handshake.auth as { v?: unknown }).v),
      });
    });
    for (const label of Object.keys(verdicts)) {
      const refused = await connectError(await openAsAlice(t, { v: label }));
      assert.deepEqual(shown(refused), FORBIDDEN, `authorize returning ${label}`);
    }
    for (const label of Object.keys(allowing)) {
      await connected(await openAsAlice(t, { v: label }));
    }
    assert.equal(seen?.connections, Object.keys(allowing).length);
  });

  test('authorizeEvent: every other value (sync or async) refuses with ERR_FORBIDDEN 403', async (tc) => {
    let seen: Seen | undefined;
    const t = await start(tc, (ctx) => {
      seen = guarded(ctx, { authorizeEvent: (_user, _event, args) => verdictOf(args[0]) });
    });
    const client = await openAsAlice(t);
    await connected(client);
    for (const label of Object.keys(verdicts)) {
      assert.deepEqual(
        await emitWithReply(client, 'say', label),
        [refusalOf(FORBIDDEN)],
        `authorizeEvent returning ${label}`,
      );
    }
    for (const label of Object.keys(allowing)) {
      assert.deepEqual(await emitWithReply(client, 'say', label), [`said:${label}`]);
    }
    assert.deepEqual(seen?.handled, Object.keys(allowing));
  });
});

// ---------------------------------------------------------------------------------------------
// A synchronous throw and a rejection
// ---------------------------------------------------------------------------------------------

describe('decide through requireAuth: a synchronous throw and a rejection', () => {
  const failure = new Error('rules engine crashed');
  const failing: [string, () => boolean | Promise<boolean>, unknown][] = [
    [
      'a synchronous throw',
      () => {
        throw failure;
      },
      failure,
    ],
    ['a rejection', () => Promise.reject(failure), failure],
    [
      'a synchronous throw of a string',
      () => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- what some code does
        throw 'nope';
      },
      'nope',
    ],
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- likewise
    ['a rejection without a reason', () => Promise.reject(), undefined],
  ];
  for (const [label, check, reason] of failing) {
    test(`authorize with ${label}: ERR_AUTHORIZE_ERROR 500 at once (not after timeoutMs); onError gets the reason; no timer left`, async (tc) => {
      let seen: Seen | undefined;
      const t = await start(tc, (ctx) => {
        seen = guarded(ctx, { authorize: check, timeoutMs: 60_000 });
      });
      const cookie = await t.login('alice');
      const baseline = await settledTimeouts();
      const refused = await connectError(t.connect('/ns', { cookie }));
      assert.deepEqual(shown(refused), AUTHORIZE_ERROR);
      assert.deepEqual(seen?.reported, [reason]);
      assert.equal(seen.reported[0], reason, 'the very reason');
      assert.equal(seen.connections, 0);
      await timersBackTo(baseline);
    });

    test(`authorizeEvent with ${label}: the ack gets ERR_AUTHORIZE_ERROR 500; onError gets the reason; no timer left`, async (tc) => {
      let seen: Seen | undefined;
      const t = await start(tc, (ctx) => {
        seen = guarded(ctx, { authorizeEvent: check, timeoutMs: 60_000 });
      });
      const client = await openAsAlice(t);
      await connected(client);
      const baseline = await settledTimeouts();
      assert.deepEqual(await emitWithReply(client, 'say', 'x'), [refusalOf(AUTHORIZE_ERROR)]);
      assert.deepEqual(seen?.reported, [reason]);
      assert.deepEqual(seen.handled, []);
      assert.equal(client.connected, true);
      await timersBackTo(baseline);
    });
  }
});
