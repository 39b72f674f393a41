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
  done: (verdict: Verdict) => void,
): void {
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  const finish = (verdict: Verdict): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    done(verdict);
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
    (result as PromiseLike<unknown>).then(judge, (error: unknown) => {
      finish({ kind: 'error', error });
    });
  } else {
    judge(result);
  }
}
