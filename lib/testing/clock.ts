// The kit's clock: the time the package keeps its own deadlines by on the kit's nodes (expiries,
// token expiries, revalidation rounds, touch intervals; core/clock.ts), which a test moves instead
// of waiting. Until the first advance it is the real time, with real timers, so a test that never
// advances sees the package as it runs in production. From the first advance on it stands still
// except when advanced; Socket.IO's, engine.io's, the store's and the app's own timers stay real.
// Like expiry-now.ts, it reaches into the package's core: the servers' records.
import type { Server } from 'socket.io';
import type { Clock, ClockTimer } from '../core/clock.js';
import { serverState, type ServerState } from '../core/state.js';
import type { StoredSession } from '../core/types.js';
import { asError } from './bounded.js';

/** How far before a stored expiry the package's own timer for it may come due (see advanceTo). */
const EXPIRY_SKEW_MS = 100;

/** A timer of the clock: when it is due (in the clock's time), and its real timer while running. */
interface Pending {
  due: number;
  /** An interval's period; 0 for a timeout. */
  every: number;
  fn: () => void;
  unref: boolean;
  real: NodeJS.Timeout | undefined;
}

/** A store that can be written, as express-session's stores can. */
interface WritableStore {
  get(sid: string, cb: (err: unknown, session?: StoredSession | null) => void): void;
  set(sid: string, session: StoredSession, cb?: (err?: unknown) => void): void;
}

/** The package's time on some servers, moved by {@link TestClock.advance}. */
export class TestClock implements Clock {
  /** The time it stands at once frozen (its first advance); undefined: it follows real time. */
  private frozenAt: number | undefined = undefined;
  /** While following real time: the time read in the current synchronous turn. */
  private turnNow: number | undefined = undefined;
  private readonly pending = new Set<Pending>();
  private readonly servers = new Set<ServerState>();
  /** The store reads and writes its advances made (a spec counting the package's subtracts them). */
  storeReads = 0;
  storeWrites = 0;

  /**
   * Makes this the clock of `io`'s expiries, revalidation rounds and touch intervals; false when
   * the server already keeps time on another clock (sockets connected before), which it keeps.
   */
  install(io: Server): boolean {
    const server = serverState(io);
    if (server.clock === this) return true;
    // Its timers must be this clock's from the first: a timer already armed on the real clock
    // would stay there.
    if (server.expiryTimer !== undefined || server.revalidations.size > 0) return false;
    server.clock = this;
    this.servers.add(server);
    return true;
  }

  now(): number {
    if (this.frozenAt !== undefined) return this.frozenAt;
    // Following real time, the time stands still for the rest of this synchronous turn: a caller
    // that reads now() and then sets a timer for `at - now()` gets a timer due exactly at `at`,
    // not a millisecond or more after it (which an advance to `at` would then not fire).
    if (this.turnNow === undefined) {
      this.turnNow = Date.now();
      queueMicrotask(() => {
        this.turnNow = undefined;
      });
    }
    return this.turnNow;
  }

  /** How many of its timers are pending (a leak check: none once every socket has left). */
  get timers(): number {
    return this.pending.size;
  }

  setTimeout(fn: () => void, ms: number, unref = false): ClockTimer {
    return this.add(fn, ms, 0, unref);
  }

  setInterval(fn: () => void, ms: number, unref = false): ClockTimer {
    return this.add(fn, ms, Math.max(ms, 1), unref);
  }

  clearTimeout(timer: ClockTimer | undefined): void {
    if (timer === undefined || !this.pending.has(timer as Pending)) return;
    this.pending.delete(timer as Pending);
    clearTimeout((timer as Pending).real);
  }

  /**
   * Moves the time `ms` forward (freezing it first, at the real time, if it still follows it).
   * The timers due by then fire in order, each at its own time; before each, every session with a
   * socket on the clock's servers whose stored expiry that time passes is written back expired a
   * second ago in real time, so that the store (which reads `Date.now()` itself) drops it, as it
   * would at that expiry.
   */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.freeze() + ms);
  }

  /** {@link advance} to a time (ms since epoch); a time already passed moves nothing. */
  async advanceTo(time: number): Promise<void> {
    const until = Math.max(this.freeze(), time);
    // Each stored expiry passed is written before the timers due after it fire, so that a timer
    // (a revalidation round) due before it still finds the session.
    const stored = await this.storedExpiries(until);
    for (;;) {
      let next: Pending | undefined;
      for (const timer of this.pending) {
        if (timer.due <= until && (next === undefined || timer.due < next.due)) next = timer;
      }
      const at = next?.due ?? until;
      // A session this advance passes is expired in the store before any timer due up to
      // EXPIRY_SKEW_MS before its expiry fires: the package counts a cookie's expiry from its own
      // clock and express-session's maxAge (read from Date.now() a moment later), so its expiry
      // timer can come due a few ms before the stored expiry; the store check it makes must find
      // the session gone, not still there (which, on a clock standing still, is asked again only
      // at the next advance).
      await Promise.all(
        stored
          .filter((session) => session.expires <= at + EXPIRY_SKEW_MS)
          .map((session) => session.expire()),
      );
      if (next === undefined) break;
      this.frozenAt = Math.max(this.frozenAt ?? next.due, next.due);
      this.fire(next);
    }
    this.frozenAt = until;
    // What the timers started (store reads) gets a turn before the test goes on.
    await new Promise((resolve) => setImmediate(resolve));
  }

  /** Stops following real time (its real timers cleared); the time it stands at. */
  private freeze(): number {
    if (this.frozenAt === undefined) {
      this.frozenAt = this.now();
      for (const timer of this.pending) {
        clearTimeout(timer.real);
        timer.real = undefined;
      }
    }
    return this.frozenAt;
  }

  private add(fn: () => void, ms: number, every: number, unref: boolean): Pending {
    const due = this.now() + Math.max(ms, 0);
    const timer: Pending = { due, every, fn, unref, real: undefined };
    this.pending.add(timer);
    if (this.frozenAt === undefined) this.runReal(timer);
    return timer;
  }

  // Fires a timer: a timeout is done, an interval comes due again one period later.
  private fire(timer: Pending): void {
    if (timer.every > 0) timer.due += timer.every;
    else this.pending.delete(timer);
    timer.fn();
  }

  private runReal(timer: Pending): void {
    timer.real = setTimeout(
      () => {
        timer.real = undefined;
        this.fire(timer);
        if (timer.every > 0 && this.pending.has(timer) && this.frozenAt === undefined) {
          this.runReal(timer);
        }
      },
      Math.max(timer.due - Date.now(), 0),
    );
    if (timer.unref) timer.real.unref();
  }

  // The sessions with a socket on the clock's servers whose expiry is passed by `until`, each read
  // once, with how to expire it in the store (once). Its expiry is the stored one, or the latest a
  // socket's touch gave it if later: connect-redis's touch moves the key's TTL, not the stored
  // cookie, whose expiry stays the last save's.
  private async storedExpiries(until: number): Promise<StoredExpiry[]> {
    const touched = new Map<string, number>();
    for (const server of this.servers) {
      for (const digest of server.bySession.keys()) {
        for (const { sessionID, expires } of server.bySession.get(digest)) {
          if (sessionID === undefined || expires === undefined) continue;
          touched.set(sessionID, Math.max(touched.get(sessionID) ?? expires, expires));
        }
      }
    }
    const seen = new Set<string>();
    const reads: Promise<StoredExpiry | undefined>[] = [];
    for (const server of this.servers) {
      for (const digest of server.bySession.keys()) {
        for (const state of server.bySession.get(digest)) {
          const { sessionID } = state;
          const store = (state.socket.request as { sessionStore?: Partial<WritableStore> })
            .sessionStore;
          // A session the package knows no expiry of (a browser-session cookie) has none stored.
          if (sessionID === undefined || state.expires === undefined || seen.has(sessionID)) {
            continue;
          }
          if (!store?.get || !store.set) continue;
          seen.add(sessionID);
          const known = touched.get(sessionID) ?? 0;
          reads.push(this.storedExpiry(store as WritableStore, sessionID, until, known));
        }
      }
    }
    return (await Promise.all(reads)).filter((read) => read !== undefined);
  }

  private storedExpiry(
    store: WritableStore,
    sessionID: string,
    until: number,
    touched: number,
  ): Promise<StoredExpiry | undefined> {
    this.storeReads++;
    return new Promise((resolve) => {
      store.get(sessionID, (err, stored) => {
        const value = stored?.cookie?.expires;
        const expires = Math.max(
          value === undefined || value === null ? NaN : new Date(value as string).getTime(),
          touched,
        );
        if (err || !stored || !(expires <= until)) {
          resolve(undefined);
          return;
        }
        let written: Promise<void> | undefined;
        const expire = (): Promise<void> => {
          written ??= new Promise((done, reject) => {
            // Expired a second ago in real time: the store, which reads Date.now(), drops it. With
            // `maxAge` as express-session's Cookie has it, which memorystore takes its TTL from.
            const cookie = {
              ...stored.cookie,
              expires: new Date(Date.now() - 1000),
              maxAge: -1000,
            };
            this.storeWrites++;
            store.set(sessionID, { ...stored, cookie }, (error) => {
              if (error) reject(asError(error));
              else done();
            });
          });
          return written;
        };
        resolve({ expires, expire });
      });
    });
  }
}

/** A session whose stored expiry an advance passes: when, and how to expire it in the store. */
interface StoredExpiry {
  expires: number;
  expire: () => Promise<void>;
}
