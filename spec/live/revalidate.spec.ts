// sessionNamespace's revalidateIntervalMs, in one process: every interval, each session with sockets
// on this node is read from the store once, and sockets whose session is gone or whose user changed
// are ended. Nothing here tells the package about the revocation: the store is changed directly,
// as another node (or an admin script) would. The multi-node case is in spec/nodes/cluster.spec.ts.
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
} from '../../lib/index.js';
import { waitFor } from '../support/client.js';
import { serverState } from '../../lib/core/state.js';
import { testClock, type TestClock } from '../support/clock.js';
import { revalidationRounds } from '../support/stores.js';
import type { CreateTestServerOptions, TestContext, TestServer } from '../support/server.js';
import {
  destroyElsewhere,
  expectEnded,
  expectUntouched,
  reporting,
  sidOf,
  start,
  watchEnd,
  whoami,
  type Seen,
} from '../support/session-ending.js';

const INTERVAL_MS = 300;
/** How far apart the package's expiry and the store's may be on a loaded machine (see its use). */
const SKEW_MS = 1000;

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
  /** When the client saw `disconnect` (ms since epoch, on the server's clock when it has one). */
  endedAt: number | undefined;
}

/**
 * One websocket-only client per namespace (no polling upgrade, whose engine.io check timer would
 * muddle the interval counts below), each in on the cookie's session.
 */
async function tabs(
  t: TestServer & { clock?: TestClock },
  cookie: string,
  nsps: string[],
): Promise<Tab[]> {
  const opened = nsps.map((nsp) => {
    const socket = t.connect(nsp, { cookie, transports: ['websocket'] });
    const tab: Tab = { nsp, socket, seen: watchEnd(socket), endedAt: undefined };
    socket.on('disconnect', () => {
      tab.endedAt ??= t.clock?.now() ?? Date.now();
    });
    return tab;
  });
  for (const tab of opened) {
    const who = await whoami(tab.socket);
    assert.equal(who.sessionID, sidOf(cookie), `${tab.nsp}: the cookie's session`);
  }
  return opened;
}

/**
 * Asserts every tab ended with `code`, at the first revalidation read of its session made after
 * the change: `reads` is recorded from before the change, `from` is its length at the change.
 * (A round under way at the change read the store before it.) Rounds, not milliseconds: how soon
 * a round comes on a busy machine is the bench's to measure.
 */
async function expectEndedByNextRead(
  list: Tab[],
  code: SessionEndedCode,
  reads: { sid: string }[],
  from: number,
  sid: string,
): Promise<void> {
  await Promise.all(list.map((tab) => expectEnded(tab.socket, tab.seen, code, tab.nsp)));
  // Once its sockets are gone, a session is no longer read.
  const after = reads.slice(from).filter((read) => read.sid === sid).length;
  assert.equal(after, 1, `read ${after} times after the change before its sockets ended`);
}

/**
 * Waits until the session has been read `n` times (from `from`), then a round trip per tab. With
 * a clock, the `n` rounds are brought by moving it an interval at a time.
 */
async function readAndUntouched(
  tabsToCheck: Tab[],
  reads: { sid: string }[],
  from: number,
  sid: string,
  n: number,
  what: string,
  clocked?: Clocked,
): Promise<void> {
  if (clocked) await bringRounds(clocked, n);
  await waitFor(
    () => reads.slice(from).filter((read) => read.sid === sid).length >= n,
    n * INTERVAL_MS + 5000,
    `${n} revalidation reads (${what})`,
  );
  // A round's verdict is given when its read is answered, before the next round's read; and a
  // round trip on each socket comes after anything the server sent it.
  for (const tab of tabsToCheck) assert.equal((await whoami(tab.socket)).nsp, tab.nsp);
  for (const tab of tabsToCheck) expectUntouched(tab.socket, tab.seen, `${tab.nsp}, ${what}`);
}

/** Records each store read (session ID and time, on `clock` when given) from now on. */
function recordReads(store: Store, clock?: TestClock): { sid: string; at: number }[] {
  const reads: { sid: string; at: number }[] = [];
  const get = store.get.bind(store);
  store.get = (sid, cb) => {
    reads.push({ sid, at: clock?.now() ?? Date.now() });
    get(sid, cb);
  };
  return reads;
}

/** Groups reads into revalidation rounds of INTERVAL_MS. */
function rounds(reads: { sid: string; at: number }[]): string[][] {
  return revalidationRounds(reads, INTERVAL_MS);
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
  mode: 'ok' | 'fail' | 'hang' | 'slow' = 'ok';
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
    if (this.mode === 'slow') {
      // Read now, answered later than the revalidation interval: a busy store.
      super.get(sid, (err, session) => {
        setTimeout(() => {
          cb(err, session);
        }, 1.5 * INTERVAL_MS);
      });
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

/**
 * Brings `n` revalidation rounds by moving the package's clock an interval at a time, each once
 * the previous round is over (a round still under way would skip the next).
 */
async function bringRounds(t: Clocked, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await t.clock.advance(INTERVAL_MS);
    await waitFor(
      () => serverState(t.io).revalidations.get(INTERVAL_MS)?.running !== true,
      5000,
      'the round to be over',
    );
  }
}

type Clocked = TestServer & { clock: TestClock };

/** {@link started}, with the package's time on a clock the spec moves (rounds without waiting). */
async function clocked(tc: NodeTestContext, options?: CreateTestServerOptions): Promise<Clocked> {
  const t = await started(tc, INTERVAL_MS, options);
  return Object.assign(t, { clock: testClock(t) });
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
    const t = await clocked(tc);
    const [alice, bob] = await Promise.all([t.login('alice'), t.login('bob')]);
    const aliceTabs = await tabs(t, alice, ['/', '/chat']);
    const bobTabs = await tabs(t, bob, ['/', '/chat']);
    const reads = recordReads(t.store, t.clock);
    destroyElsewhere(t.store, sidOf(alice));
    await bringRounds(t, 1);
    await expectEndedByNextRead(aliceTabs, ERR_SESSION_REVOKED, reads, 0, sidOf(alice));
    for (const tab of bobTabs) assert.equal((await whoami(tab.socket)).nsp, tab.nsp);
    for (const tab of bobTabs) expectUntouched(tab.socket, tab.seen, `bob ${tab.nsp}`);
  });

  test('a session whose user changed in the store ends within the interval (ERR_SESSION_REVOKED)', async (tc) => {
    const t = await clocked(tc);
    const alice = await t.login('alice');
    const aliceTabs = await tabs(t, alice, ['/', '/chat']);
    const sid = sidOf(alice);
    const stored = await storedSession(t.store, sid);
    assert.deepEqual((stored as { passport?: unknown }).passport, { user: '1' });
    const reads = recordReads(t.store, t.clock);
    t.store.set(sid, { ...stored, passport: { user: '2' } } as SessionData);
    await bringRounds(t, 1);
    await expectEndedByNextRead(aliceTabs, ERR_SESSION_REVOKED, reads, 0, sid);
  });

  test('an expired session ends with ERR_SESSION_EXPIRED, never ERR_SESSION_REVOKED', async (tc) => {
    // Ten seconds left once both handshakes have read the session, however long the login took.
    // The spec's clock reaches the expiry at once; the margin is for the store's own real-time
    // TTL (connect-redis, memorystore), which must not drop the session before the clock gets
    // there: with 1.5 s, a loaded Redis leg saw /chat gone before the "before" check.
    const left = 10_000;
    const t = await clocked(tc, { sessionOptions: { cookie: { maxAge: 60_000 } } });
    const alice = await t.login('alice');
    const expiry = t.store.expireOnceRead(sidOf(alice), left, 2);
    const aliceTabs = await tabs(t, alice, ['/', '/chat']);
    const expiresAt = await expiry;
    // Rounds come every interval up to a second before the expiry: the sockets stay. (Not up to a
    // millisecond: the package counts the expiry as its clock's now plus the cookie's maxAge, the
    // two read a moment apart, so on a loaded machine its expiry comes a few ms before the
    // store's, and a socket's events are refused from then on.)
    await t.clock.advanceTo(expiresAt - SKEW_MS);
    for (const tab of aliceTabs) assert.equal((await whoami(tab.socket)).nsp, tab.nsp);
    for (const tab of aliceTabs) expectUntouched(tab.socket, tab.seen, `${tab.nsp}, before`);
    // Past it (a second: the package counts it from its own clock, a millisecond or so apart),
    // rounds and the expiry timer come in the order of their times.
    await t.clock.advanceTo(expiresAt + 1000);
    await waitFor(
      () => aliceTabs.every((tab) => tab.endedAt !== undefined),
      left + 5000,
      'the sockets to end',
    );
    // Whichever comes first, the expiry timer or a revalidation round, the code says expired.
    await Promise.all(
      aliceTabs.map((tab) => expectEnded(tab.socket, tab.seen, ERR_SESSION_EXPIRED, tab.nsp)),
    );
    for (const tab of aliceTabs) {
      const early = expiresAt - (tab.endedAt ?? 0);
      assert.ok(early < SKEW_MS, `${tab.nsp} ended ${early} ms before the expiry`);
    }
  });

  test('a session that is still there, with the same user, is left alone', async (tc) => {
    const t = await clocked(tc);
    const alice = await t.login('alice');
    const aliceTabs = await tabs(t, alice, ['/', '/chat']);
    const reads = recordReads(t.store, t.clock);
    await readAndUntouched(aliceTabs, reads, 0, sidOf(alice), 2, 'session unchanged', t);
  });
});

describe('revalidation: what it costs', () => {
  test('one store read per session per interval, not one per socket', async (tc) => {
    const t = await clocked(tc);
    const [alice, bob] = await Promise.all([t.login('alice'), t.login('bob')]);
    // Three sockets of alice's session (two namespaces, one of them twice), one of bob's.
    await tabs(t, alice, ['/', '/chat']);
    await tabs(t, alice, ['/chat']);
    await tabs(t, bob, ['/chat']);
    const reads = recordReads(t.store, t.clock);
    const gets = t.store.gets;
    await bringRounds(t, 5);
    await waitFor(() => rounds(reads).length >= 5, 10 * INTERVAL_MS + 5000, 'five rounds');
    // The last round may still be under way: judge the complete ones.
    const complete = rounds(reads).slice(0, -1);
    const expected = [sidOf(alice), sidOf(bob)].sort();
    for (const round of complete) assert.deepEqual(round, expected, 'the sessions read in a round');
    assert.ok(t.store.gets - gets >= 2 * complete.length);
  });

  test('two sockets of one session: the store is read once per round', async (tc) => {
    const t = await clocked(tc);
    const alice = await t.login('alice');
    await tabs(t, alice, ['/', '/chat']);
    const reads = recordReads(t.store, t.clock);
    const gets = t.store.gets;
    await bringRounds(t, 4);
    await waitFor(() => rounds(reads).length >= 4, 8 * INTERVAL_MS + 5000, 'four rounds');
    const complete = rounds(reads).slice(0, -1);
    for (const round of complete) assert.deepEqual(round, [sidOf(alice)]);
    // t.store.gets (CountingStore's own count) grew by exactly one per round.
    assert.equal(t.store.gets - gets, reads.length);
    assert.ok(reads.length <= complete.length + 1, `${reads.length} reads in ${complete.length}+1`);
  });

  test('a store outage ends nothing; revalidation goes on once the store is back', async (tc) => {
    const store = new UnreliableStore();
    const t = await clocked(tc, { sessionOptions: { store } });
    const alice = await t.login('alice');
    const aliceTabs = await tabs(t, alice, ['/', '/chat']);

    const reads = recordReads(store, t.clock);
    store.mode = 'fail';
    await readAndUntouched(aliceTabs, reads, 0, sidOf(alice), 3, 'store down', t);
    assert.ok(store.failed >= 3, `${store.failed} failed reads`);

    store.mode = 'ok';
    const back = reads.length;
    await readAndUntouched(aliceTabs, reads, back, sidOf(alice), 2, 'store back', t);
    const from = reads.length;
    destroyElsewhere(store, sidOf(alice));
    await bringRounds(t, 1);
    await expectEndedByNextRead(aliceTabs, ERR_SESSION_REVOKED, reads, from, sidOf(alice));
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
    destroyElsewhere(store, sidOf(alice));
    // A later round must come and read it, however long the package waits on the hung read (a
    // fix may give up on it only after the namespace's timeoutMs, 10 s): the bound is a hang guard.
    const bound = 10_000 + 5000;
    try {
      await waitFor(() => aliceTabs.every((tab) => tab.endedAt !== undefined), bound, 'the end');
    } catch {
      assert.fail(
        `the sockets of a destroyed session were still connected ${bound} ms later; ` +
          `revalidation reads since the hung one: ${reads.length}`,
      );
    }
    await expectEndedByNextRead(aliceTabs, ERR_SESSION_REVOKED, reads, 0, sidOf(alice));
  });
});

describe('revalidation: a store slower than the interval', () => {
  test('reads that answer after the interval still end a destroyed session', async (tc) => {
    const store = new UnreliableStore();
    const t = await started(tc, INTERVAL_MS, { sessionOptions: { store } });
    const alice = await t.login('alice');
    const aliceTabs = await tabs(t, alice, ['/', '/chat']);
    store.mode = 'slow';
    destroyElsewhere(store, sidOf(alice));
    // The late answers are the only way the sockets can end: the bound is a hang guard.
    await waitFor(
      () => aliceTabs.every((tab) => tab.endedAt !== undefined),
      10 * INTERVAL_MS + 5000,
      'the sockets of the destroyed session to end',
    );
    for (const tab of aliceTabs)
      await expectEnded(tab.socket, tab.seen, ERR_SESSION_REVOKED, tab.nsp);
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

    const reads = recordReads(t.store);
    for (const tab of aliceTabs) tab.socket.disconnect();
    // Rounds still come once alice's sockets are gone: two more reads of bob's session.
    await waitFor(
      () => t.io.of('/').sockets.size === 0 && t.io.of('/chat').sockets.size === 1,
      5000,
      'alice to be gone',
    );
    const afterAlice = reads.length;
    await waitFor(
      () => reads.slice(afterAlice).filter((read) => read.sid === sidOf(bob)).length >= 2,
      2 * INTERVAL_MS + 5000,
      'rounds for bob',
    );
    assert.equal(intervals.cleared(timer), false, 'cleared while bob is still connected');
    assert.ok(
      reads.slice(afterAlice).every((read) => read.sid === sidOf(bob)),
      'only bob is read once alice is gone',
    );
    for (const tab of bobTabs) tab.socket.disconnect();
    await waitFor(() => intervals.cleared(timer), 5000, 'the timer to be cleared');
    // Nothing is read once nobody is left: the one revalidation timer is cleared, so no round
    // can come (no sleep needed to watch for one).
    assert.equal(intervals.created(INTERVAL_MS).length, 1, 'no other revalidation timer');

    // A new socket starts a new timer; a socket ended by revalidation clears it too.
    const [again] = await tabs(t, bob, ['/chat']);
    assert.ok(again);
    const [, second, ...others] = intervals.created(INTERVAL_MS);
    assert.ok(second !== undefined && others.length === 0, 'one new timer');
    const from = reads.length;
    destroyElsewhere(t.store, sidOf(bob));
    await expectEndedByNextRead([again], ERR_SESSION_REVOKED, reads, from, sidOf(bob));
    await waitFor(() => intervals.cleared(second), 5000, 'the second timer to be cleared');
  });

  test('with the in-memory adapter and no option: no timer, no read, a destroyed session unnoticed', async (tc) => {
    const intervals = spyIntervals(tc);
    const t = await started(tc, undefined);
    const alice = await t.login('alice');
    const aliceTabs = await tabs(t, alice, ['/', '/chat']);
    const gets = t.store.gets;
    destroyElsewhere(t.store, sidOf(alice));
    // No interval timer was created, so no round can come: what would read is not there.
    assert.deepEqual(intervals.created(), [], 'interval timers');
    for (const tab of aliceTabs) assert.equal((await whoami(tab.socket)).nsp, tab.nsp);
    assert.equal(t.store.gets, gets, 'store reads');
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
    // No timer for the second server, so no round: the two handshakes read the session, and
    // nothing else can.
    assert.equal(intervals.created().length, 1, 'only the first server’s timer');
    assert.equal(off.store.gets - gets, 2, 'store reads');
  });
});
