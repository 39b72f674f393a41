// The one way the package bounds a wait on someone else's callback (a store, deserializeUser, a
// Passport strategy): a timer that is cleared as soon as the answer comes.

/**
 * Settles as `promise` does, or with `onTimeout()` if it has not settled within `ms`. The timer is
 * cleared when `promise` settles; a late answer is dropped (whatever it did meanwhile stays done).
 * `unref`: the timer does not keep the process alive (for background work such as revalidation).
 */
export function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => T,
  unref = false,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      resolve(onTimeout());
    }, ms);
    if (unref) timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        // Passed on as it came: the promise's own rejection, whatever it is.
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        reject(error);
      },
    );
  });
}
