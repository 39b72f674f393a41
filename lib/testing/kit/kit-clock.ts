// kit.clock: the package's time on the kit's nodes (the TestClock of ../clock.ts), moved by a test
// instead of waited for, and refused while a node keeps real time.
import type { TestClock } from '../clock.js';

/**
 * The time the package keeps its own deadlines by on the kit's nodes: session expiries, token
 * expiries, revalidation rounds, touch intervals. Until the first {@link KitClock.advance} it is
 * the real time; from then on it moves only when advanced, so a test of an expiry neither waits
 * for it nor depends on how busy the machine is. Only the package's time moves: Socket.IO's own
 * timers (pings, `connectTimeout`), the app's and the client's stay on real time.
 *
 * @example
 * ```ts
 * // The session's cookie has maxAge 60 000: an hour of the package's time, in no time.
 * const alice = await kit.loginAs({ id: '1', username: 'alice' });
 * const socket = await alice.connect('/chat');
 * await kit.clock.advance(59_000);
 * await socket.emitWithAck('ping'); // still connected
 * await kit.clock.advance(2_000);
 * await expectEnded(socket, 'ERR_SESSION_EXPIRED');
 * ```
 */
export interface KitClock {
  /** The package's time on the kit's nodes, in ms since epoch (`Date.now()` until advanced). */
  now(): number;
  /**
   * Moves the package's time `ms` forward on every node, and resolves once what came due has
   * run: the package's timers due by then fire in order, each at its own time, and as the time
   * passes the expiry of a session with a socket on the kit's nodes (the stored one, or its
   * sockets' last touch if later), that session is written to the store as expired (so the store
   * drops it, as at a real expiry). Sessions are
   * still read from the store, which decides as at a real expiry. HTTP requests, sessions no socket holds, and what the session
   * middleware writes (a touch moves the stored expiry from the real `Date.now()`) keep real time:
   * advance past such a write by less than the session's `maxAge`. Throws a TypeError if a node's
   * server had live sockets before the kit started (their timers keep real time).
   */
  advance(ms: number): Promise<void>;
}

/**
 * `kit.clock` on `time`. `usable(helper)` throws when the clock may not move: the kit is closed,
 * or a node keeps real time.
 */
export function kitClock(time: TestClock, usable: (helper: string) => void): KitClock {
  return {
    now: function now() {
      return time.now();
    },
    advance: function advance(ms: number) {
      usable('kit.clock.advance');
      if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
        throw new TypeError('kit.clock.advance: expected a number of milliseconds (0 or more)');
      }
      return time.advance(ms);
    },
  };
}
