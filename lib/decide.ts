import type { Socket } from 'socket.io';
import { onConnectionClose } from './connection-close.js';

/** The outcome of an `authorize` check: only a literal `true` allows. */
export type Verdict =
  { kind: 'allow' } | { kind: 'deny' } | { kind: 'error'; error: unknown } | { kind: 'timeout' };

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
  // Dropped once called: a user's promise that never settles keeps only this small closure, not
  // the socket and its handshake, alive.
  let callback: ((verdict: Verdict) => void) | undefined = done;
  let timer: NodeJS.Timeout | undefined;
  let stopWatching: (() => void) | undefined;
  const finish = (verdict: Verdict): void => {
    if (!callback) return;
    const settle = callback;
    callback = undefined;
    clearTimeout(timer);
    stopWatching?.();
    stopWatching = undefined;
    settle(verdict);
  };
  const judge = (value: unknown): void => {
    finish(value === true ? { kind: 'allow' } : { kind: 'deny' });
  };
  let result: unknown;
  try {
    result = check();
  } catch (error) {
    finish({ kind: 'error', error });
    return;
  }
  if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
    timer = setTimeout(() => {
      finish({ kind: 'timeout' });
    }, timeoutMs);
    // A client that leaves is let go at once, not at timeoutMs.
    stopWatching = onConnectionClose(socket, () => {
      finish({ kind: 'timeout' });
    });
    (result as PromiseLike<unknown>).then(judge, (error: unknown) => {
      finish({ kind: 'error', error });
    });
  } else {
    judge(result);
  }
}
