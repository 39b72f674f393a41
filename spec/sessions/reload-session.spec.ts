import assert from 'node:assert/strict';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import type { SessionData } from 'express-session';
import type { Socket as ClientSocket } from 'socket.io-client';
import {
  reloadSession,
  saveSession,
  sessionNamespace,
  type SessionNamespaceOptions,
} from '../../lib/index.js';
import { request, waitFor } from '../support/client.js';
import {
  CountingStore,
  type TestContext,
  type TestServer,
  signedSidOf,
  start,
} from '../support/server.js';
import { destroyElsewhere } from '../support/session-ending.js';
import { connected } from '../support/bounded.js';
import {
  type Bag,
  bagOf,
  sessionRoutes,
  failureOf,
  type Failure,
  httpRead,
  httpWrite,
} from '../support/stores.js';

// ---------------------------------------------------------------------------------------------
// Helpers (local to this spec)
// ---------------------------------------------------------------------------------------------

/** A real MemoryStore whose writes can be held, and whose reads can be made to fail. */
class TestStore extends CountingStore {
  hold = false;
  failGetsWith: unknown = undefined;
  writes = 0;
  private held: (() => void)[] = [];

  override get(sid: string, cb: (err: unknown, session?: SessionData | null) => void): void {
    if (this.failGetsWith !== undefined) {
      this.gets++;
      const failure = this.failGetsWith;
      setImmediate(() => {
        cb(failure);
      });
      return;
    }
    super.get(sid, cb);
  }

  override set(sid: string, sess: SessionData, cb?: (err?: unknown) => void): void {
    this.writes++;
    const copy = JSON.parse(JSON.stringify(sess)) as SessionData;
    const run = (): void => {
      super.set(sid, copy, cb);
    };
    if (this.hold) this.held.push(run);
    else run();
  }

  get waiting(): number {
    return this.held.length;
  }

  releaseAll(): void {
    this.hold = false;
    for (let next = this.held.shift(); next; next = this.held.shift()) next();
  }
}

/** Handlers that read the session with and without reloading it first. */
function reader(ctx: TestContext, name: string, options?: SessionNamespaceOptions): void {
  const { io, session, passport } = ctx;
  sessionNamespace(io.of(name), session, { passport, ...options }).on('connection', (socket) => {
    socket.on('read', (key: string, ack: (value: unknown) => void) => {
      ack(bagOf(socket)[key] ?? null);
    });
    socket.on('reload-read', async (key: string, ack: (value: unknown) => void) => {
      try {
        await reloadSession(socket);
        ack(bagOf(socket)[key] ?? null);
      } catch (error) {
        ack(failureOf(error, storeFailure));
      }
    });
    socket.on('reload-only', async (ack: (reply: string) => void) => {
      await reloadSession(socket);
      ack('reloaded');
    });
    socket.on('reload-then-set', async (fields: Bag, ack: (reply: string) => void) => {
      await reloadSession(socket);
      Object.assign(bagOf(socket), fields);
      ack('done');
    });
    socket.on('put-and-save', async (fields: Bag, ack: (reply: string) => void) => {
      Object.assign(bagOf(socket), fields);
      await saveSession(socket);
      ack('saved');
    });
  });
}

const storeFailure = new Error('the store is unreachable');

interface Fixture {
  t: TestServer;
  store: TestStore;
  cookie: string;
  client: ClientSocket;
}

async function fixture(tc: NodeTestContext, options?: SessionNamespaceOptions): Promise<Fixture> {
  const store = new TestStore();
  const t = await start(
    tc,
    (ctx) => {
      reader(ctx, '/ns', options);
    },
    { sessionOptions: { store }, afterSession: () => [sessionRoutes()] },
  );
  const cookie = await t.login('alice');
  const client = t.connect('/ns', { cookie });
  await connected(client);
  store.reset();
  store.writes = 0;
  return { t, store, cookie, client };
}

// ---------------------------------------------------------------------------------------------
// reloadSession
// ---------------------------------------------------------------------------------------------

describe('reloadSession(socket)', () => {
  test('sees what an HTTP request wrote since the socket connected (without it: the copy read at connect)', async (tc) => {
    const f = await fixture(tc);
    await httpWrite(f.t, f.cookie, 'cart', 'apple');
    assert.equal(await request(f.client, 'read', 'cart'), null, 'the socket’s copy is stale');
    assert.equal(await request(f.client, 'reload-read', 'cart'), 'apple');
    assert.equal(await request(f.client, 'read', 'cart'), 'apple', 'the reloaded copy stays');
    await httpWrite(f.t, f.cookie, 'cart', 'pear');
    assert.equal(await request(f.client, 'reload-read', 'cart'), 'pear');
  });

  test('one store read per reload, no store write', async (tc) => {
    const f = await fixture(tc);
    for (let i = 0; i < 3; i++) assert.equal(await request(f.client, 'reload-read', 'x'), null);
    assert.equal(f.store.gets, 3);
    assert.equal(f.store.writes, 0);
    assert.equal(f.store.touches, 0);
  });

  test('sees what another socket of the same session saved', async (tc) => {
    const f = await fixture(tc);
    const other = f.t.connect('/ns', { cookie: f.cookie });
    await connected(other);
    assert.equal(await request(other, 'put-and-save', { theme: 'dark' }), 'saved');
    assert.equal(await request(f.client, 'read', 'theme'), null);
    assert.equal(await request(f.client, 'reload-read', 'theme'), 'dark');
  });

  test('waits for a save of the same session under way: it then reads what was saved', async (tc) => {
    const f = await fixture(tc);
    const other = f.t.connect('/ns', { cookie: f.cookie });
    await connected(other);
    f.store.hold = true;
    const saved = request(other, 'put-and-save', { theme: 'dark' });
    await waitFor(() => f.store.waiting === 1, 5000, 'the save to reach the store');
    const gets = f.store.gets;
    let reloaded: unknown = 'not yet';
    const reading = request(f.client, 'reload-read', 'theme').then((value) => {
      reloaded = value;
    });
    // Events of one socket reach their handlers in order: once this round trip is back, the
    // reload has been asked for.
    assert.equal(await request(f.client, 'read', 'theme'), null);
    assert.equal(reloaded, 'not yet', 'the reload waits for the save');
    assert.equal(f.store.gets, gets, 'the reload has not read the store yet');
    f.store.releaseAll();
    assert.equal(await saved, 'saved');
    await reading;
    assert.equal(reloaded, 'dark');
  });

  test('with autoSave: a reload alone writes nothing; a change after it is saved on top of what HTTP wrote', async (tc) => {
    const f = await fixture(tc, { autoSave: true });
    await httpWrite(f.t, f.cookie, 'cart', 'apple');
    const writes = f.store.writes;
    assert.equal(await request(f.client, 'reload-only'), 'reloaded');
    // autoSave asks the store to write before the handler's ack leaves the server.
    assert.equal(f.store.writes, writes, 'nothing to save after a reload');
    assert.equal(await request(f.client, 'reload-then-set', { theme: 'dark' }), 'done');
    assert.equal(await httpRead(f.t, f.cookie, 'theme'), 'dark');
    assert.equal(await httpRead(f.t, f.cookie, 'cart'), 'apple', 'the HTTP change is kept');
  });

  test('rejects with an Error when the session is gone from the store (destroyed elsewhere); the socket stays', async (tc) => {
    const f = await fixture(tc);
    // Where the package cannot see it: a logout it sees would end the socket.
    await new Promise<void>((resolve) => {
      destroyElsewhere(f.store, signedSidOf(f.cookie), () => {
        resolve();
      });
    });
    const failure = await request<Failure>(f.client, 'reload-read', 'cart');
    assert.equal(failure.isError, true);
    assert.equal(typeof failure.error, 'string');
    assert.equal(f.client.connected, true);
    assert.equal(await request(f.client, 'read', 'cart'), null);
  });

  test('rejects with the store’s own error when the store fails', async (tc) => {
    const f = await fixture(tc);
    f.store.failGetsWith = storeFailure;
    const failure = await request<Failure>(f.client, 'reload-read', 'cart');
    assert.deepEqual(failure, {
      error: storeFailure.message,
      isError: true,
      isTypeError: false,
      same: true,
    });
    f.store.failGetsWith = undefined;
    assert.equal(await request(f.client, 'reload-read', 'cart'), null, 'works again');
  });

  test('a store failing with a non-Error reason: rejects with an Error carrying it', async (tc) => {
    const f = await fixture(tc);
    f.store.failGetsWith = 'ECONNRESET';
    const failure = await request<Failure>(f.client, 'reload-read', 'cart');
    assert.equal(failure.isError, true);
    assert.equal(failure.error, 'ECONNRESET');
  });

  test('a socket of a namespace without sessionNamespace: a TypeError naming reloadSession', async (tc) => {
    const t = await start(tc, ({ io }) => {
      io.of('/plain').on('connection', (socket) => {
        socket.on('reload', async (ack: (failure: Failure | string) => void) => {
          try {
            await reloadSession(socket);
            ack('reloaded');
          } catch (error) {
            ack(failureOf(error));
          }
        });
      });
    });
    const client = t.connect('/plain');
    await connected(client);
    const failure = await request<Failure>(client, 'reload');
    assert.equal(failure.isTypeError, true);
    assert.match(failure.error, /^reloadSession: /);
    assert.match(failure.error, /sessionNamespace/);
  });
});
