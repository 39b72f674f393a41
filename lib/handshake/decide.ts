import type { Socket } from 'socket.io';
import {
  ERR_AUTHORIZE_ERROR,
  ERR_FORBIDDEN,
  ERR_MIDDLEWARE_TIMEOUT,
  type OrRefusal,
  refusal,
  report,
} from '../core/errors.js';
import type { Guard } from '../core/state.js';
import { onConnectionClose } from '../socket-io/connection-close.js';

/** What a check answered, before it becomes a refusal: only a literal `true` allows. */
type Verdict =
  { kind: 'allow' } | { kind: 'deny' } | { kind: 'error'; error: unknown } | { kind: 'timeout' };

const ALLOW: Verdict = { kind: 'allow' };
const DENY: Verdict = { kind: 'deny' };

/** What `decide` answers: undefined when the check allowed, else the refusal with its code. */
export type Decision = OrRefusal<undefined>;

/**
 * Runs a user's check, sync or async, and calls `done` exactly once: undefined when it returned
 * `true`; else the refusal: ERR_FORBIDDEN (anything but `true`), ERR_AUTHORIZE_ERROR (a throw or
 * rejection, reported to the guard's `onError`), ERR_MIDDLEWARE_TIMEOUT (no answer within the
 * guard's `timeoutMs`, or the client left).
 */
export function decide(
  check: () => unknown,
  guard: Pick<Guard, 'timeoutMs' | 'onError'>,
  socket: Socket,
  done: (decision: Decision) => void,
): void {
  const answer = (verdict: Verdict): void => {
    done(refusalOf(verdict, guard, socket));
  };
  let result: unknown;
  try {
    result = check();
  } catch (error) {
    answer({ kind: 'error', error });
    return;
  }
  // The common case, a synchronous answer, costs no timer and no closure: it runs per event.
  if (typeof (result as PromiseLike<unknown> | null)?.then !== 'function') {
    done(result === true ? undefined : refusal(ERR_FORBIDDEN, 403));
    return;
  }
  settleLater(result as PromiseLike<unknown>, guard.timeoutMs, socket, answer);
}

/** The refusal a verdict stands for (reported to `onError` when the check failed). */
function refusalOf(verdict: Verdict, guard: Pick<Guard, 'onError'>, socket: Socket): Decision {
  switch (verdict.kind) {
    case 'allow':
      return undefined;
    case 'deny':
      return refusal(ERR_FORBIDDEN, 403);
    case 'timeout':
      return refusal(ERR_MIDDLEWARE_TIMEOUT, 503);
    case 'error':
      report(guard.onError, verdict.error, socket);
      return refusal(ERR_AUTHORIZE_ERROR, 500, verdict.error);
  }
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
