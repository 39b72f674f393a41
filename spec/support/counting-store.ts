// One counting wrapper for every session store the specs run on (express-session's MemoryStore,
// memorystore, connect-redis: see STORE in stack.ts), so that an assertion on `store.gets` means
// the same thing on each: how many times express-session, the package or the spec called get().
import { MemoryStore, type SessionData, type Store } from 'express-session';

/** What a counting store counts: calls made to it, whatever the store does inside. */
export interface StoreCounts {
  gets: number;
  sets: number;
  touches: number;
  destroys: number;
  reset(): void;
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
    override get(sid: string, cb: (err: unknown, session?: SessionData | null) => void): void {
      this.gets++;
      super.get(sid, cb);
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
  override get(sid: string, cb: (err: unknown, session?: SessionData | null) => void): void {
    this.gets++;
    super.get(sid, cb);
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
