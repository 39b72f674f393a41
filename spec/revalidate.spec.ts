// sessionNamespace's revalidateIntervalMs, in one process: every interval, each session with sockets
// on this node is read from the store once, and sockets whose session is gone or whose user changed
// are ended. Nothing here tells the package about the revocation: the store is changed directly,
// as another node (or an admin script) would. The multi-node case is in cluster.spec.ts.
import assert from 'node:assert/strict';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import { MemoryStore, type SessionData, type Store } from 'express-session';
import { Adapter } from 'socket.io-adapter';
import {
  ERR_SESSION_EXPIRED,
  ERR_SESSION_REVOKED,
  requireAuth,
  sessionNamespace,
  type SessionEndedCode,
  type SessionNamespaceOptions,
} from '../lib/index.js';
import { delay, waitFor } from './support/client.js';
import type { CreateTestServerOptions, TestContext, TestServer } from './support/server.js';
import {
  expectEnded,
  expectUntouched,
  reporting,
  sidOf,
  start,
  watchEnd,
  whoami,
  type Seen,
} from './support/session-ending.js';

const INTERVAL_MS = 300;
// How late a round may end a socket past its interval on a busy 2-core machine.
const SLACK_MS = 1500;

/** `/` (open) and `/chat` (guarded), both session-aware with the same revalidation options. */
function namespaces(revalidateIntervalMs?: number | false) {
  return ({ io, session, passport }: TestContext): void => {
    const options: SessionNamespaceOptions = {
      passport,
      ...(revalidateIntervalMs !== undefined && { revalidateIntervalMs }),
    };
    reporting(sessionNamespace(io, session, options));
    reporting(requireAuth(sessionNamespace(io.of('/chat'), session, options)));
  };
}

interface Tab {
  nsp: string;
  socket: ReturnType<TestServer['connect']>;
  seen: Seen;
  /** When the client saw `disconnect` (ms since epoch). */
  endedAt: number | undefined;
}

/**
 * One websocket-only client per namespace (no polling upgrade, whose engine.io check timer would
 * muddle the interval counts below), each in on the cookie's session.
 */
async function tabs(t: TestServer, cookie: string, nsps: string[]): Promise<Tab[]> {
  const opened = nsps.map((nsp) => {
    const socket = t.connect(nsp, { cookie, transports: ['websocket'] });
    const tab: Tab = { nsp, socket, seen: watchEnd(socket), endedAt: undefined };
    socket.on('disconnect', () => {
      tab.endedAt ??= Date.now();
    });
    return tab;
  });
  for (const tab of opened) {
    const who = await whoami(tab.socket);
    assert.equal(who.sessionID, sidOf(cookie), `${tab.nsp}: the cookie's session`);
  }
  return opened;
}

/** Asserts every tab ended with `code`, no later than one interval (+ slack) after `since`. */
async function expectEndedWithin(
  list: Tab[],
  code: SessionEndedCode,
  since: number,
  bound = INTERVAL_MS + SLACK_MS,
): Promise<void> {
  await Promise.all(list.map((tab) => expectEnded(tab.socket, tab.seen, code, tab.nsp)));
  for (const tab of list) {
    const late = (tab.endedAt ?? Infinity) - since;
    assert.ok(late <= bound, `${tab.nsp} ended ${late} ms after the change (bound ${bound} ms)`);
  }
}

/** Records each store read (session ID and time) from now on. */
function recordReads(store: Store): { sid: string; at: number }[] {
  const reads: { sid: string; at: number }[] = [];
  const get = store.get.bind(store);
  store.get = (sid, cb) => {
    reads.push({ sid, at: Date.now() });
    get(sid, cb);
  };
  return reads;
}

/** Groups reads into rounds: reads less than half an interval apart belong to one round. */
function rounds(reads: { sid: string; at: number }[]): string[][] {
  const grouped: { last: number; sids: string[] }[] = [];
  for (const { sid, at } of reads) {
    const current = grouped.at(-1);
    if (current && at - current.last < INTERVAL_MS / 2) {
      current.sids.push(sid);
      current.last = at;
    } else {
      grouped.push({ last: at, sids: [sid] });
    }
  }
  return grouped.map((round) => round.sids.sort());
}

/** Spies on the global setInterval and clearInterval (the package's revalidation timer). */
function spyIntervals(tc: NodeTestContext) {
  const set = tc.mock.method(globalThis, 'setInterval');
  const clear = tc.mock.method(globalThis, 'clearInterval');
  return {
    /** The timers created with this delay (every one when not given). */
    created(ms?: number): unknown[] {
      return set.mock.calls
        .filter((call) => ms === undefined || call.arguments[1] === ms)
        .map((call) => call.result);
    },
    cleared(timer: unknown): boolean {
      return clear.mock.calls.some((call) => call.arguments[0] === timer);
    },
  };
}

function storedSession(store: Store, sid: string): Promise<SessionData> {
  return new Promise((resolve, reject) => {
    store.get(sid, (err: unknown, session) => {
      if (err) reject(err instanceof Error ? err : new Error('the store failed'));
      else if (!session) reject(new Error(`no session ${sid} in the store`));
      else resolve(session);
    });
  });
}

/** A MemoryStore whose reads fail, or never answer, on demand. */
class UnreliableStore extends MemoryStore {
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  failed = 0;
  hung = 0;
  override get(sid: string, cb: (err: unknown, session?: SessionData | null) => void): void {
    if (this.mode === 'fail') {
      this.failed++;
      setImmediate(() => {
        cb(new Error('the store is down'));
      });
      return;
    }
    if (this.mode === 'hang') {
      // A lost reply: the callback is never called.
      this.hung++;
      return;
    }
    super.get(sid, cb);
  }
}

/** An adapter that says it spans nodes (it overrides serverSideEmit), with no other node. */
class OneNodeClusterAdapter extends Adapter {
  override serverSideEmit(packet: unknown[]): void {
    const ack = packet.at(-1);
    if (typeof ack === 'function') (ack as (err: null, responses: unknown[]) => void)(null, []);
  }
}

async function started(
  tc: NodeTestContext,
  revalidateIntervalMs: number | false | undefined,
  options?: CreateTestServerOptions,
): Promise<TestServer> {
  return start(tc, namespaces(revalidateIntervalMs), options);
}

describe('revalidation: what it catches', () => {
  test('a session destroyed straight in the store ends its sockets within the interval (ERR_SESSION_REVOKED)', async (tc) => {
    const t = await started(tc, INTERVAL_MS);
    const [alice, bob] = await Promise.all([t.login('alice'), t.login('bob')]);
    const aliceTabs = await tabs(t, alice, ['/', '/chat']);
    const bobTabs = await tabs(t, bob, ['/', '/chat']);
    const since = Date.now();
    t.store.destroy(sidOf(alice));
    await expectEndedWithin(aliceTabs, ERR_SESSION_REVOKED, since);
    for (const tab of bobTabs) expectUntouched(tab.socket, tab.seen, `bob ${tab.nsp}`);
  });

  test('a session whose user changed in the store ends within the interval (ERR_SESSION_REVOKED)', async (tc) => {
    const t = await started(tc, INTERVAL_MS);
    const alice = await t.login('alice');
    const aliceTabs = await tabs(t, alice, ['/', '/chat']);
    const sid = sidOf(alice);
    const stored = await storedSession(t.store, sid);
    assert.deepEqual((stored as { passport?: unknown }).passport, { user: '1' });
    const since = Date.now();
    t.store.set(sid, { ...stored, passport: { user: '2' } } as SessionData);
    await expectEndedWithin(aliceTabs, ERR_SESSION_REVOKED, since);
  });

  test('an expired session ends with ERR_SESSION_EXPIRED, never ERR_SESSION_REVOKED', async (tc) => {
    const maxAge = 1500;
    const t = await started(tc, INTERVAL_MS, { sessionOptions: { cookie: { maxAge } } });
    const loggedIn = Date.now();
    const alice = await t.login('alice');
    const aliceTabs = await tabs(t, alice, ['/', '/chat']);
    await waitFor(
      () => aliceTabs.every((tab) => tab.endedAt !== undefined),
      maxAge + INTERVAL_MS + SLACK_MS + 2000,
      'the sockets to end',
    );
    // Whichever comes first, the expiry timer or a revalidation round, the code says expired.
    await expectEndedWithin(aliceTabs, ERR_SESSION_EXPIRED, loggedIn + maxAge);
    for (const tab of aliceTabs) {
      assert.ok((tab.endedAt ?? 0) >= loggedIn + maxAge - 100, `${tab.nsp} ended early`);
    }
  });

  test('a session that is still there, with the same user, is left alone', async (tc) => {
    const t = await started(tc, INTERVAL_MS);
    const alice = await t.login('alice');
    const aliceTabs = await tabs(t, alice, ['/', '/chat']);
    const before = t.store.gets;
    await delay(4 * INTERVAL_MS);
    assert.ok(t.store.gets > before, 'the session was read');
    for (const tab of aliceTabs) expectUntouched(tab.socket, tab.seen, tab.nsp);
  });
});

describe('revalidation: what it costs', () => {
  test('one store read per session per interval, not one per socket', async (tc) => {
    const t = await started(tc, INTERVAL_MS);
    const [alice, bob] = await Promise.all([t.login('alice'), t.login('bob')]);
    // Three sockets of alice's session (two namespaces, one of them twice), one of bob's.
    await tabs(t, alice, ['/', '/chat']);
    await tabs(t, alice, ['/chat']);
    await tabs(t, bob, ['/chat']);
    const reads = recordReads(t.store);
    const gets = t.store.gets;
    await waitFor(() => rounds(reads).length >= 5, 10 * INTERVAL_MS + 5000, 'five rounds');
    // The last round may still be under way: judge the complete ones.
    const complete = rounds(reads).slice(0, -1);
    const expected = [sidOf(alice), sidOf(bob)].sort();
    for (const round of complete) assert.deepEqual(round, expected, 'the sessions read in a round');
    assert.ok(t.store.gets - gets >= 2 * complete.length);
  });

  test('two sockets of one session: the store is read once per round', async (tc) => {
    const t = await started(tc, INTERVAL_MS);
    const alice = await t.login('alice');
    await tabs(t, alice, ['/', '/chat']);
    const reads = recordReads(t.store);
    const gets = t.store.gets;
    await waitFor(() => rounds(reads).length >= 4, 8 * INTERVAL_MS + 5000, 'four rounds');
    const complete = rounds(reads).slice(0, -1);
    for (const round of complete) assert.deepEqual(round, [sidOf(alice)]);
    // t.store.gets (CountingStore's own count) grew by exactly one per round.
    assert.equal(t.store.gets - gets, reads.length);
    assert.ok(reads.length <= complete.length + 1, `${reads.length} reads in ${complete.length}+1`);
  });

  test('a store outage ends nothing; revalidation goes on once the store is back', async (tc) => {
    const store = new UnreliableStore();
    const t = await started(tc, INTERVAL_MS, { sessionOptions: { store } });
    const alice = await t.login('alice');
    const aliceTabs = await tabs(t, alice, ['/', '/chat']);

    store.mode = 'fail';
    await waitFor(() => store.failed >= 3, 6 * INTERVAL_MS + 5000, 'three failed reads');
    for (const tab of aliceTabs) expectUntouched(tab.socket, tab.seen, `${tab.nsp}, store down`);

    store.mode = 'ok';
    await delay(2 * INTERVAL_MS);
    for (const tab of aliceTabs) expectUntouched(tab.socket, tab.seen, `${tab.nsp}, store back`);
    const since = Date.now();
    store.destroy(sidOf(alice));
    await expectEndedWithin(aliceTabs, ERR_SESSION_REVOKED, since);
  });

  // A store read that never answers (a reply lost on a dropped connection) must not stop
  // revalidation for good: the bound it promises holds only while rounds keep coming.
  test('a store read that never answers does not stop later rounds', async (tc) => {
    const store = new UnreliableStore();
    const t = await started(tc, INTERVAL_MS, { sessionOptions: { store } });
    const alice = await t.login('alice');
    const aliceTabs = await tabs(t, alice, ['/', '/chat']);

    store.mode = 'hang';
    await waitFor(() => store.hung >= 1, 4 * INTERVAL_MS + 5000, 'a read to hang');
    store.mode = 'ok';
    const reads = recordReads(store);
    const since = Date.now();
    store.destroy(sidOf(alice));
    // Generous, so that a fix may give up on a hung read after the namespace's timeoutMs (10 s).
    const bound = 10_000 + 2 * INTERVAL_MS + SLACK_MS;
    try {
      await waitFor(() => aliceTabs.every((tab) => tab.endedAt !== undefined), bound, 'the end');
    } catch {
      assert.fail(
        `the sockets of a destroyed session were still connected ${Date.now() - since} ms later; ` +
          `revalidation reads since the hung one: ${reads.length}`,
      );
    }
    await expectEndedWithin(aliceTabs, ERR_SESSION_REVOKED, since, bound);
  });
});

describe('revalidation: timers', () => {
  test('one interval timer per server and interval, cleared once the sockets are gone', async (tc) => {
    const intervals = spyIntervals(tc);
    const t = await started(tc, INTERVAL_MS);
    const [alice, bob] = await Promise.all([t.login('alice'), t.login('bob')]);
    const aliceTabs = await tabs(t, alice, ['/', '/chat']);
    const bobTabs = await tabs(t, bob, ['/chat']);
    const [timer, ...more] = intervals.created(INTERVAL_MS);
    assert.ok(timer !== undefined, 'no revalidation timer');
    assert.equal(more.length, 0, 'one timer for both namespaces and both sessions');

    for (const tab of aliceTabs) tab.socket.disconnect();
    await delay(2 * INTERVAL_MS);
    assert.equal(intervals.cleared(timer), false, 'cleared while bob is still connected');
    for (const tab of bobTabs) tab.socket.disconnect();
    await waitFor(() => intervals.cleared(timer), 5000, 'the timer to be cleared');

    // Nothing is read once nobody is left.
    const gets = t.store.gets;
    await delay(3 * INTERVAL_MS);
    assert.equal(t.store.gets, gets, 'store reads with no socket left');

    // A new socket starts a new timer; a socket ended by revalidation clears it too.
    const [again] = await tabs(t, bob, ['/chat']);
    assert.ok(again);
    const [, second, ...others] = intervals.created(INTERVAL_MS);
    assert.ok(second !== undefined && others.length === 0, 'one new timer');
    t.store.destroy(sidOf(bob));
    await expectEndedWithin([again], ERR_SESSION_REVOKED, Date.now());
    await waitFor(() => intervals.cleared(second), 5000, 'the second timer to be cleared');
  });

  test('with the in-memory adapter and no option: no timer, no read, a destroyed session unnoticed', async (tc) => {
    const intervals = spyIntervals(tc);
    const t = await started(tc, undefined);
    const alice = await t.login('alice');
    const aliceTabs = await tabs(t, alice, ['/', '/chat']);
    const gets = t.store.gets;
    t.store.destroy(sidOf(alice));
    await delay(3 * INTERVAL_MS);
    assert.equal(t.store.gets, gets, 'store reads');
    assert.deepEqual(intervals.created(), [], 'interval timers');
    for (const tab of aliceTabs) expectUntouched(tab.socket, tab.seen, tab.nsp);
  });

  test('an adapter that spans nodes: every 30 s by default, and off with false', async (tc) => {
    const intervals = spyIntervals(tc);
    const serverOptions = { adapter: OneNodeClusterAdapter };
    const byDefault = await started(tc, undefined, { serverOptions });
    const alice = await byDefault.login('alice');
    await tabs(byDefault, alice, ['/chat']);
    assert.equal(intervals.created(30_000).length, 1, 'a 30 s timer');

    const off = await started(tc, false, { serverOptions });
    const bob = await off.login('bob');
    const gets = off.store.gets;
    await tabs(off, bob, ['/', '/chat']);
    assert.equal(intervals.created().length, 1, 'only the first server’s timer');
    await delay(3 * INTERVAL_MS);
    // The two handshakes read the session; nothing else does.
    assert.equal(off.store.gets - gets, 2, 'store reads');
  });
});
