import type { Socket } from 'socket.io';
import { onConnectionClose } from './connection-close.js';

/** The outcome of an `authorize` check: only a literal `true` allows. */
export type Verdict =
  { kind: 'allow' } | { kind: 'deny' } | { kind: 'error'; error: unknown } | { kind: 'timeout' };

const ALLOW: Verdict = { kind: 'allow' };
const DENY: Verdict = { kind: 'deny' };

/**
 * Runs a user's check, sync or async, and calls `done` exactly once: a throw or rejection is an
 * error, anything but `true` a denial, and a check that never settles a timeout.
 */
export function decide(
  check: () => unknown,
  timeoutMs: number,
  socket: Socket,
  done: (verdict: Verdict) => void,
): void {
  let result: unknown;
  try {
    result = check();
  } catch (error) {
    done({ kind: 'error', error });
    return;
  }
  // The common case, a synchronous answer, costs no timer and no closure: it runs per event.
  if (typeof (result as PromiseLike<unknown> | null)?.then !== 'function') {
    done(result === true ? ALLOW : DENY);
    return;
  }
  settleLater(result as PromiseLike<unknown>, timeoutMs, socket, done);
}

function settleLater(
  result: PromiseLike<unknown>,
  timeoutMs: number,
  socket: Socket,
  done: (verdict: Verdict) => void,
): void {
  // Dropped once called: a user's promise that never settles keeps only these small closures,
  // not the socket and its handshake, alive.
  let callback: ((verdict: Verdict) => void) | undefined = done;
  const finish = (verdict: Verdict): void => {
    if (!callback) return;
    const settle = callback;
    callback = undefined;
    clearTimeout(timer);
    stopWatching();
    settle(verdict);
  };
  const timer = setTimeout(() => {
    finish({ kind: 'timeout' });
  }, timeoutMs);
  // A client that leaves is let go at once, not at timeoutMs.
  const stopWatching = onConnectionClose(socket, () => {
    finish({ kind: 'timeout' });
  });
  result.then(
    (value) => {
      finish(value === true ? ALLOW : DENY);
    },
    (error: unknown) => {
      finish({ kind: 'error', error });
    },
  );
}
