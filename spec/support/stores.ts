import assert from 'node:assert/strict';
import type { RequestHandler } from 'express';
import type { SessionData } from 'express-session';
import type { TestContext as NodeTestContext } from 'node:test';
import type { Socket as ServerSocket } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import { connected } from './bounded.js';
import { delay } from './client.js';
import {
  type CountedStore,
  CountingStore,
  type CreateTestServerOptions,
  type TestContext,
  type TestServer,
  start,
  sidOf,
} from './server.js';
import { sessionDefaults } from './stack.js';

/**
 * The store writes an HTTP request makes by itself when it leaves its session unchanged, on this
 * run's SESSION: express-session writes such a session back only with `resave: true`
 * (SESSION=save-uninitialized). Write counts that include HTTP requests differ by this much.
 */
export const HTTP_WRITE_BACK = sessionDefaults.resave === true ? 1 : 0;

/** A session's data, as a plain record. */
export type Bag = Record<string, unknown>;

/** The session's data as the store holds it now. */
export function stored(store: CountedStore, sid: string): Promise<Bag | undefined> {
  return new Promise((resolve, reject) => {
    store.get(sid, (err: unknown, sess) => {
      if (err) reject(new Error('store error', { cause: err }));
      else resolve((sess ?? undefined) as Bag | undefined);
    });
  });
}

/**
 * Resolves once the session has expired in the store: at the cookie's end the store holds, and
 * then once a read finds it gone (a store that keeps time itself, like Redis's whole-second TTL,
 * may hold it a moment longer). Fails after `ms`.
 */
export async function expiredInStore(store: CountedStore, sid: string, ms = 5000): Promise<void> {
  const session = (await stored(store, sid)) as { cookie?: { expires?: unknown } } | undefined;
  const expires = new Date(String(session?.cookie?.expires)).getTime();
  assert.ok(session === undefined || Number.isFinite(expires), 'the stored session has an expiry');
  // Waits for the expiry instant the store gave, then reads again until the session is gone.
  while (Date.now() <= expires) await delay(expires - Date.now() + 1);
  const deadline = Date.now() + ms;
  while ((await stored(store, sid)) !== undefined) {
    assert.ok(Date.now() < deadline, `the session still in the store ${ms} ms past its expiry`);
    await delay(20);
  }
}

/** A server whose store logs its writes, with alice logged in and one socket connected. */
export interface WritesFixture<Handled> {
  t: TestServer;
  store: WriteLog;
  cookie: string;
  sid: string;
  client: ClientSocket;
  /** What `setup` returned: what the namespace's handlers record. */
  handled: Handled;
}

/**
 * A spec server on a {@link WriteLog} store with {@link sessionRoutes}, `setup` installing its
 * namespace `nsp`: alice logged in over HTTP, one socket connected to `nsp`, the login's writes
 * forgotten (the store's counts are not).
 */
export async function writesFixture<Handled>(
  tc: NodeTestContext,
  setup: (ctx: TestContext) => Handled,
  more: CreateTestServerOptions = {},
  nsp = '/ns',
): Promise<WritesFixture<Handled>> {
  const store = new WriteLog();
  let handled: { value: Handled } | undefined;
  const t = await start(
    tc,
    (ctx) => {
      handled = { value: setup(ctx) };
    },
    { sessionOptions: { store }, afterSession: () => [sessionRoutes()], ...more },
  );
  assert.ok(handled, 'the namespace was set up');
  const cookie = await t.login('alice');
  const client = t.connect(nsp, { cookie });
  await connected(client);
  store.clearLog();
  return { t, store, cookie, sid: sidOf(cookie), client, handled: handled.value };
}

/** The socket's session as a plain bag of fields (looked up afresh: reload replaces it). */
export function bagOf(socket: ServerSocket): Bag {
  return socket.request.session as unknown as Bag;
}

export interface Write {
  data: Bag;
  start: number;
  end: number | undefined;
}

/**
 * A real MemoryStore whose writes can be slowed down or held, as a network store's may be, and
 * are logged with what they wrote (a copy taken when set() was called).
 */
export class WriteLog extends CountingStore {
  delayMs = 0;
  hold = false;
  failWith: unknown = undefined;
  writes: Write[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private held: (() => void)[] = [];

  override set(sid: string, sess: SessionData, cb?: (err?: unknown) => void): void {
    const data = JSON.parse(JSON.stringify(sess)) as Bag;
    const entry: Write = { data, start: Date.now(), end: undefined };
    this.writes.push(entry);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const finish = (err?: unknown): void => {
      entry.end = Date.now();
      this.inFlight--;
      cb?.(err);
    };
    const run = (): void => {
      if (this.failWith !== undefined) {
        finish(this.failWith);
        return;
      }
      super.set(sid, data as unknown as SessionData, finish);
    };
    if (this.hold) this.held.push(run);
    else if (this.delayMs > 0) setTimeout(run, this.delayMs);
    else run();
  }

  get waiting(): number {
    return this.held.length;
  }

  releaseOne(): void {
    this.held.shift()?.();
  }

  releaseAll(): void {
    this.hold = false;
    for (let next = this.held.shift(); next; next = this.held.shift()) next();
  }

  /** Forgets what was logged so far (the login's own writes). */
  clearLog(): void {
    this.writes = [];
    this.maxInFlight = this.inFlight;
  }
}

/** GET /read?key=k answers the session's field; GET /write?key=k&value=v sets it. */
export function sessionRoutes(gate?: {
  entered: () => void;
  release: Promise<void>;
}): RequestHandler {
  return (req, res, next) => {
    const bag = req.session as unknown as Bag;
    const key = typeof req.query.key === 'string' ? req.query.key : '';
    if (req.method === 'GET' && req.path === '/read') {
      res.json({ value: bag[key] ?? null, user: req.user?.username ?? null });
      return;
    }
    if (req.method === 'GET' && req.path === '/write') {
      bag[key] = req.query.value;
      if (!gate) {
        res.json({ ok: true });
        return;
      }
      // Holds the request (its session already changed in memory) until the test says so.
      gate.entered();
      void gate.release.then(() => {
        res.json({ ok: true });
      });
      return;
    }
    next();
  };
}

/** GET /read of sessionRoutes with the cookie: the session's field and its user, over plain HTTP. */
export async function readSession(
  t: TestServer,
  cookie: string,
  key: string,
): Promise<{ value: unknown; user: string | null }> {
  const res = await fetch(`${t.url}/read?key=${encodeURIComponent(key)}`, { headers: { cookie } });
  assert.equal(res.status, 200);
  return (await res.json()) as { value: unknown; user: string | null };
}

/** The session's field, as an HTTP request of the same app reads it (sessionRoutes' GET /read). */
export async function httpRead(t: TestServer, cookie: string, key: string): Promise<unknown> {
  return (await readSession(t, cookie, key)).value;
}

/** Sets the session's field over HTTP (sessionRoutes' GET /write), as another tab would. */
export async function httpWrite(
  t: TestServer,
  cookie: string,
  key: string,
  value: string,
): Promise<void> {
  const res = await fetch(
    `${t.url}/write?key=${encodeURIComponent(key)}&value=${encodeURIComponent(value)}`,
    { headers: { cookie } },
  );
  assert.equal(res.status, 200);
  await res.arrayBuffer();
}

export interface Failure {
  error: string;
  isError: boolean;
  isTypeError: boolean;
  same: boolean;
}

export function failureOf(error: unknown, expected?: unknown): Failure {
  return {
    error: error instanceof Error ? error.message : String(error),
    isError: error instanceof Error,
    isTypeError: error instanceof TypeError,
    same: error === expected,
  };
}

/**
 * Store reads grouped into revalidation rounds, each round's session IDs sorted: reads less than
 * half an interval apart belong to one round.
 */
export function revalidationRounds(
  reads: readonly { sid: string; at: number }[],
  intervalMs: number,
): string[][] {
  const grouped: { last: number; sids: string[] }[] = [];
  for (const { sid, at } of reads) {
    const current = grouped.at(-1);
    if (current && at - current.last < intervalMs / 2) {
      current.sids.push(sid);
      current.last = at;
    } else {
      grouped.push({ last: at, sids: [sid] });
    }
  }
  return grouped.map((round) => round.sids.sort());
}
