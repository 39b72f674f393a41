// One counting wrapper for every session store the specs run on (express-session's MemoryStore,
// memorystore, connect-redis: see STORE in stack.ts), so that an assertion on `store.gets` means
// the same thing on each: how many times express-session, the package or the spec called get().
import { Cookie, MemoryStore, type SessionData, type Store } from 'express-session';

type ReadCallback = (err: unknown, session?: SessionData | null) => void;
type Read = (sid: string, cb: ReadCallback) => void;
type Write = (sid: string, session: SessionData, cb: (err?: unknown) => void) => void;

interface ExpiryPlan {
  ms: number;
  reads: number;
  held: ReadCallback[];
  resolve: (expires: number) => void;
}

/**
 * A stored session's cookie (a plain object, parsed from JSON) made a Cookie again, expiring `ms`
 * from now (in the past when negative), as express-session writes it: a store that keeps time
 * itself (memorystore, connect-redis: a TTL from the cookie's maxAge) then keeps it that long.
 */
export function cookieExpiringIn(stored: unknown, ms: number): Cookie {
  // (Its constructor takes the cookie's fields, which @types/express-session does not say.)
  const MakeCookie = Cookie as unknown as new (fields: object) => Cookie;
  const cookie = new MakeCookie({ ...(stored as object) });
  cookie.maxAge = ms;
  return cookie;
}

/**
 * What `expireOnceRead` needs of any store: hold the next reads of a session, then move its
 * stored expiry and answer them. `read` and `write` are the store's own get and set, not counted:
 * they are the spec's plumbing, not calls of the package's.
 */
class ExpiryPlans {
  private readonly plans = new Map<string, ExpiryPlan>();

  add(sid: string, ms: number, reads: number): Promise<number> {
    return new Promise((resolve) => {
      this.plans.set(sid, { ms, reads, held: [], resolve });
    });
  }

  /** Takes the read when a plan holds this session's reads; false lets it through. */
  hold(sid: string, cb: ReadCallback, read: Read, write: Write): boolean {
    const plan = this.plans.get(sid);
    if (!plan) return false;
    plan.held.push(cb);
    if (plan.held.length < plan.reads) return true;
    this.plans.delete(sid);
    const { ms, held, resolve } = plan;
    read(sid, (err, session) => {
      if (err || !session) {
        for (const waiting of held) waiting(err, session);
        return;
      }
      const expires = Date.now() + ms;
      // Stores hand out a copy parsed from JSON, whose cookie is a plain object: written back as
      // express-session writes it, a Cookie, so that a store that keeps time itself (memorystore,
      // connect-redis: a TTL from the cookie's maxAge) drops it at the new expiry too.
      const stored = session.cookie as unknown as { originalMaxAge?: number | null };
      const cookie = cookieExpiringIn(session.cookie, expires - Date.now());
      cookie.originalMaxAge = stored.originalMaxAge ?? null;
      const moved = { ...session, cookie };
      write(sid, moved, () => {
        resolve(expires);
        for (const waiting of held) read(sid, waiting);
      });
    });
    return true;
  }
}

/**
 * Holds the next `reads` reads of session `sid` (the handshakes of its sockets); once they are all
 * in, moves the stored expiry to `ms` from then and answers them. The session then has exactly
 * `ms` left when its sockets connect, however long the login and the handshakes took: a test of
 * what happens at the expiry need not race a short maxAge. Resolves with the expiry.
 */
export type ExpireOnceRead = (sid: string, ms: number, reads?: number) => Promise<number>;

/** What a counting store counts: calls made to it, whatever the store does inside. */
export interface StoreCounts {
  gets: number;
  sets: number;
  touches: number;
  destroys: number;
  reset(): void;
  expireOnceRead: ExpireOnceRead;
}

/** A real session store that counts what it is asked. */
export type CountedStore = Store & StoreCounts;

// TypeScript's mixin pattern requires a constructor type whose rest parameter is `any[]`. The
// instances are typed as express-session's MemoryStore, the concrete store every store the specs
// use has the shape of (express-session's Store declares get, set and destroy abstract, which a
// mixin could not call through `super`).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type StoreClass = new (...args: any[]) => MemoryStore;

/**
 * A subclass of `Base` that counts get, set, touch and destroy, then calls the store's own: the
 * wrapper of every STORE variant (stack.ts). A store that calls one of these on itself counts
 * twice: connect-redis's set() of a session whose cookie has already expired calls its destroy();
 * MemoryStore and memorystore do not call themselves.
 */
export function counting<B extends StoreClass>(Base: B) {
  return class Counting extends Base implements StoreCounts {
    gets = 0;
    sets = 0;
    touches = 0;
    destroys = 0;
    private readonly plans = new ExpiryPlans();
    override get(sid: string, cb: (err: unknown, session?: SessionData | null) => void): void {
      this.gets++;
      const read: Read = (id, done) => {
        super.get(id, done);
      };
      const write: Write = (id, session, done) => {
        super.set(id, session, done);
      };
      if (!this.plans.hold(sid, cb, read, write)) super.get(sid, cb);
    }
    expireOnceRead(sid: string, ms: number, reads = 1): Promise<number> {
      return this.plans.add(sid, ms, reads);
    }
    override set(sid: string, s: SessionData, cb?: (err?: unknown) => void): void {
      this.sets++;
      super.set(sid, s, cb);
    }
    override touch(sid: string, s: SessionData, cb?: () => void): void {
      this.touches++;
      super.touch(sid, s, cb);
    }
    override destroy(sid: string, cb?: (err?: unknown) => void): void {
      this.destroys++;
      super.destroy(sid, cb);
    }
    reset(): void {
      this.gets = this.sets = this.touches = this.destroys = 0;
    }
  };
}

/**
 * A real express-session MemoryStore that counts the same way, as a plain class: the base of the
 * stores specs make for themselves, to hold or fail reads and writes (they count when they pass a
 * call on to the store, through `super`). The mixin above cannot be that base: typescript-eslint's
 * no-unsafe-class-instance-assignment does not see a Store through a subclass of a mixin.
 */
export class CountingStore extends MemoryStore implements StoreCounts {
  gets = 0;
  sets = 0;
  touches = 0;
  destroys = 0;
  private readonly plans = new ExpiryPlans();
  override get(sid: string, cb: (err: unknown, session?: SessionData | null) => void): void {
    this.gets++;
    const read: Read = (id, done) => {
      super.get(id, done);
    };
    const write: Write = (id, session, done) => {
      super.set(id, session, done);
    };
    if (!this.plans.hold(sid, cb, read, write)) super.get(sid, cb);
  }
  expireOnceRead(sid: string, ms: number, reads = 1): Promise<number> {
    return this.plans.add(sid, ms, reads);
  }
  override set(sid: string, s: SessionData, cb?: (err?: unknown) => void): void {
    this.sets++;
    super.set(sid, s, cb);
  }
  override touch(sid: string, s: SessionData, cb?: () => void): void {
    this.touches++;
    super.touch(sid, s, cb);
  }
  override destroy(sid: string, cb?: (err?: unknown) => void): void {
    this.destroys++;
    super.destroy(sid, cb);
  }
  reset(): void {
    this.gets = this.sets = this.touches = this.destroys = 0;
  }
}
