// The time the package keeps its own deadlines by: session and token expiries (the expiry heap),
// revalidation rounds, touch intervals, the browser cookie's end. One per server, on its record
// (`ServerState.clock`): the real one, unless the test kit puts its own there, so that a test can
// move the package's time without waiting on it (lib/testing/clock.ts). Timers of Socket.IO,
// engine.io, the stores and the app are never on it.

/** A timer of a {@link Clock}: opaque, handed back to its `clearTimeout`. */
export type ClockTimer = object;

/** What the package reads the time from and sets its own timers with. */
export interface Clock {
  /** Milliseconds since epoch, as `Date.now()`. */
  now(): number;
  /** Calls `fn` once `ms` have passed; `unref`: the timer does not keep the process alive. */
  setTimeout(fn: () => void, ms: number, unref?: boolean): ClockTimer;
  /** Calls `fn` every `ms`, until cleared (with `clearTimeout`, as Node's timers allow). */
  setInterval(fn: () => void, ms: number, unref?: boolean): ClockTimer;
  clearTimeout(timer: ClockTimer | undefined): void;
}

/** The real clock: `Date.now()` and the global timers. */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms, unref = false) {
    const timer = setTimeout(fn, ms);
    if (unref) timer.unref();
    return timer;
  },
  setInterval(fn, ms, unref = false) {
    const timer = setInterval(fn, ms);
    if (unref) timer.unref();
    return timer;
  },
  clearTimeout(timer) {
    // Node's clearTimeout clears an interval too; clearInterval, which the specs watch, is the
    // one for an interval.
    clearInterval(timer as NodeJS.Timeout | undefined);
  },
};
