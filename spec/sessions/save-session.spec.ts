import assert from 'node:assert/strict';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import {
  ERR_UNAUTHORIZED,
  SESSION_ENDED_EVENT,
  SessionAuthError,
  disconnectOnLogout,
  saveSession,
  sessionNamespace,
} from '../../lib/index.js';
import { request, waitFor } from '../support/client.js';
import { type TestContext, start, sidOf } from '../support/server.js';
import { within, connected } from '../support/bounded.js';
import {
  type Bag,
  stored,
  WriteLog,
  bagOf,
  failureOf,
  type Failure,
  HTTP_WRITE_BACK,
  readSession,
  sessionRoutes,
  type WritesFixture,
  writesFixture,
} from '../support/stores.js';

// ---------------------------------------------------------------------------------------------
// Helpers (local to this spec)
// ---------------------------------------------------------------------------------------------

const storeFailure = new Error('disk full');

/**
 * `put`: changes the session (no save); `put-and-save`: changes it, saves it, then acks. Counts
 * the saveSession calls made.
 */
function saver(ctx: TestContext, name: string): { saves: number } {
  const { io, session, passport } = ctx;
  const asked = { saves: 0 };
  sessionNamespace(io.of(name), session, { passport }).on('connection', (socket) => {
    socket.on('put', (fields: Bag, ack: (reply: string) => void) => {
      Object.assign(bagOf(socket), fields);
      ack('put');
    });
    socket.on('put-and-save', async (fields: Bag, ack: (reply: string | Failure) => void) => {
      Object.assign(bagOf(socket), fields);
      try {
        asked.saves++;
        await saveSession(socket);
        ack('saved');
      } catch (error) {
        ack(failureOf(error, storeFailure));
      }
    });
  });
  return asked;
}

/** `asked`: how many saveSession calls the handlers made. */
type Fixture = Omit<WritesFixture<unknown>, 'handled'> & { asked: { saves: number } };

async function fixture(tc: NodeTestContext): Promise<Fixture> {
  const { handled: asked, ...f } = await writesFixture(tc, (ctx) => saver(ctx, '/ns'));
  return { ...f, asked };
}

// ---------------------------------------------------------------------------------------------
// saveSession
// ---------------------------------------------------------------------------------------------

describe('saveSession(socket)', () => {
  test('persists a change that a later HTTP request sees; one store write', async (tc) => {
    const f = await fixture(tc);
    assert.equal(await request(f.client, 'put', { theme: 'dark' }), 'put');
    assert.deepEqual(await readSession(f.t, f.cookie, 'theme'), { value: null, user: 'alice' });
    // With resave: true, the HTTP read writes its own copy back (HTTP_WRITE_BACK), never the
    // socket's change.
    assert.equal(f.store.writes.length, HTTP_WRITE_BACK, 'not saved until asked');
    assert.ok(!f.store.writes.some((w) => w.data.theme === 'dark'), 'not saved until asked');
    assert.equal(await request(f.client, 'put-and-save', { lang: 'fr' }), 'saved');
    assert.equal(f.store.writes.length, 1 + HTTP_WRITE_BACK);
    assert.deepEqual(await readSession(f.t, f.cookie, 'theme'), { value: 'dark', user: 'alice' });
    assert.deepEqual(await readSession(f.t, f.cookie, 'lang'), { value: 'fr', user: 'alice' });
  });

  test('resolves only once the store has written (slow store, 150 ms): HTTP right after sees it', async (tc) => {
    const f = await fixture(tc);
    f.store.delayMs = 150;
    assert.equal(await request(f.client, 'put-and-save', { cart: ['apple'] }), 'saved');
    const ackAt = Date.now();
    const [write] = f.store.writes;
    assert.ok(write?.end !== undefined && write.end <= ackAt, 'written before the ack');
    f.store.delayMs = 0;
    assert.deepEqual((await readSession(f.t, f.cookie, 'cart')).value, ['apple']);
  });

  test('writes even when nothing changed (an explicit save)', async (tc) => {
    const f = await fixture(tc);
    assert.equal(await request(f.client, 'put-and-save', {}), 'saved');
    assert.equal(f.store.writes.length, 1);
  });

  test('saves of one session from three sockets run one at a time; the store holds the last', async (tc) => {
    const f = await fixture(tc);
    const more = [
      f.t.connect('/ns', { cookie: f.cookie }),
      f.t.connect('/ns', { cookie: f.cookie }),
    ];
    await Promise.all(more.map((socket) => connected(socket)));
    const sockets = [f.client, ...more];
    f.store.hold = true;
    const acks = sockets.map((socket, i) => request(socket, 'put-and-save', { [`from${i}`]: i }));
    await waitFor(() => f.store.waiting === 1, 5000, 'the first save');
    // All three handlers have asked for their save: only the first reached the store.
    await waitFor(() => f.asked.saves === 3, 5000, 'the three saves to be asked for');
    assert.equal(f.store.waiting, 1, 'the other saves wait');
    for (let released = 0; released < 3; released++) {
      await waitFor(() => f.store.waiting === 1, 5000, `save ${released + 1}`);
      f.store.releaseOne();
    }
    assert.deepEqual(await Promise.all(acks), ['saved', 'saved', 'saved']);
    assert.equal(f.store.maxInFlight, 1);
    assert.equal(f.store.writes.length, 3);
    // Each socket wrote its whole copy: only the last one's field is left.
    const last = f.store.writes.at(-1)?.data;
    const saved = await stored(f.store, f.sid);
    const fields = (bag: Bag | undefined): string[] =>
      Object.keys(bag ?? {})
        .filter((key) => key.startsWith('from'))
        .sort();
    assert.equal(fields(saved).length, 1);
    assert.deepEqual(fields(saved), fields(last));
  });

  test('a failing store: rejects with the store’s error; the socket stays connected', async (tc) => {
    const f = await fixture(tc);
    f.store.failWith = storeFailure;
    assert.deepEqual(await request(f.client, 'put-and-save', { lost: true }), {
      error: 'disk full',
      isError: true,
      isTypeError: false,
      same: true,
    });
    assert.equal(f.client.connected, true);
    f.store.failWith = undefined;
    assert.equal(await request(f.client, 'put-and-save', {}), 'saved', 'works again');
    assert.equal((await readSession(f.t, f.cookie, 'lost')).value, true);
  });

  test('a store failing with a non-Error reason: rejects with an Error carrying it', async (tc) => {
    const f = await fixture(tc);
    f.store.failWith = 'EROFS';
    const failure = await request<Failure>(f.client, 'put-and-save', {});
    assert.equal(failure.isError, true);
    assert.equal(failure.error, 'EROFS');
  });

  test('a socket of a namespace without sessionNamespace: a TypeError naming saveSession', async (tc) => {
    const t = await start(tc, ({ io }) => {
      io.of('/plain').on('connection', (socket) => {
        socket.on('save', async (ack: (reply: string | Failure) => void) => {
          try {
            await saveSession(socket);
            ack('saved');
          } catch (error) {
            ack(failureOf(error, storeFailure));
          }
        });
      });
    });
    const client = t.connect('/plain');
    await connected(client);
    const failure = await request<Failure>(client, 'save');
    assert.equal(failure.isTypeError, true);
    assert.match(failure.error, /^saveSession: /);
  });

  test('after disconnectOnLogout ended the socket, a late saveSession does not bring the logged-out session back', async (tc) => {
    // A handler still running when the session was logged out calls saveSession afterwards.
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered = false;
    let outcome = 'not yet';
    let refused: unknown;
    const store = new WriteLog();
    const t = await start(
      tc,
      ({ io, session, passport }) => {
        sessionNamespace(io.of('/ns'), session, { passport }).on('connection', (socket) => {
          socket.on('slow-save', async () => {
            entered = true;
            await released;
            bagOf(socket).late = 'write';
            try {
              await saveSession(socket);
              outcome = 'saved';
            } catch (error) {
              outcome = failureOf(error, storeFailure).error;
              refused = error instanceof SessionAuthError ? error.data : error;
            }
          });
        });
      },
      {
        sessionOptions: { store },
        afterSession: (io) => [disconnectOnLogout(io), sessionRoutes()],
      },
    );
    const cookie = await t.login('alice');
    const client = t.connect('/ns', { cookie });
    const ended = new Promise<void>((resolve) => {
      client.once(SESSION_ENDED_EVENT, () => {
        resolve();
      });
    });
    await connected(client);
    client.emit('slow-save');
    await waitFor(() => entered, 5000, 'the handler to start');
    await t.logout(cookie);
    await within(ended, 'session:ended');
    assert.deepEqual(await readSession(t, cookie, 'late'), { value: null, user: null });
    release();
    await waitFor(() => outcome !== 'not yet', 5000, 'the late save to settle');
    // A SessionAuthError with its code in data, as every error the package throws or sends.
    assert.match(outcome, /^saveSession: the socket's session has ended/);
    assert.deepEqual(refused, { code: ERR_UNAUTHORIZED, status: 401 });
    assert.equal(await stored(store, sidOf(cookie)), undefined, 'the old session stays gone');
    assert.deepEqual(
      await readSession(t, cookie, 'late'),
      { value: null, user: null },
      'the old cookie stays logged out',
    );
  });
});
