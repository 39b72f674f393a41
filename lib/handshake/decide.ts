import type { Socket } from 'socket.io';
import { onConnectionClose } from '../socket-io/connection-close.js';

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

// The checks waiting on each promise. A user's authorize may hand every handshake the same
// promise (a cached lookup on a backend that hangs): callbacks are attached to it once, and a
// check that gave up (timeout, client gone) leaves nothing attached to it.
const waiting = new WeakMap<PromiseLike<unknown>, Set<(verdict: Verdict) => void>>();

function whenSettled(
  promise: PromiseLike<unknown>,
  finish: (verdict: Verdict) => void,
): () => void {
  const known = waiting.get(promise);
  if (known) {
    known.add(finish);
    return () => known.delete(finish);
  }
  const checks = new Set([finish]);
  waiting.set(promise, checks);
  // Added before attaching: a thenable may call back at once, inside then().
  attach(promise, checks);
  return () => checks.delete(finish);
}

// Its own function, so that the callbacks hold the set of checks and nothing else.
function attach(promise: PromiseLike<unknown>, checks: Set<(verdict: Verdict) => void>): void {
  const settle = (verdict: Verdict): void => {
    waiting.delete(promise);
    for (const finish of [...checks]) finish(verdict);
    checks.clear();
  };
  promise.then(
    (value) => {
      settle(value === true ? ALLOW : DENY);
    },
    (error: unknown) => {
      settle({ kind: 'error', error });
    },
  );
}

function settleLater(
  result: PromiseLike<unknown>,
  timeoutMs: number,
  socket: Socket,
  done: (verdict: Verdict) => void,
): void {
  let callback: ((verdict: Verdict) => void) | undefined = done;
  const finish = (verdict: Verdict): void => {
    if (!callback) return;
    const settle = callback;
    callback = undefined;
    clearTimeout(timer);
    stopWatching();
    stopWaiting?.();
    settle(verdict);
  };
  const timer = setTimeout(() => {
    finish({ kind: 'timeout' });
  }, timeoutMs);
  // A client that leaves is let go at once, not at timeoutMs (a handshake's is then reported as
  // `left`, whatever the verdict: see handshakeSettled).
  const stopWatching = onConnectionClose(socket, () => {
    finish({ kind: 'timeout' });
  });
  // Declared before it is assigned: a thenable that calls back at once runs finish before
  // whenSettled returns, and a const would not exist yet.
  // eslint-disable-next-line prefer-const
  let stopWaiting: (() => void) | undefined;
  stopWaiting = whenSettled(result, finish);
}
