// Every wait of the kit is bounded, and every failure is an AssertionError that says what was
// expected and what happened instead: never a bare timeout, under any test runner.
import { AssertionError } from 'node:assert';
import { inspect } from 'node:util';

/** How long the kit waits for what a test expects, unless told otherwise (milliseconds). */
export const DEFAULT_WITHIN_MS = 5000;

/** How long `refuteEvent` watches for an event that must not come, unless told otherwise. */
export const DEFAULT_REFUTE_MS = 100;

/** An AssertionError with this message (and no generated diff). */
export function failure(message: string): AssertionError {
  return new AssertionError({ message });
}

/** Checks a `within` option; throws a TypeError naming the helper. */
export function checkWithin(helper: string, within: unknown, fallback: number): number {
  if (within === undefined) return fallback;
  if (typeof within !== 'number' || !Number.isFinite(within) || within < 0) {
    throw new TypeError(`${helper}: options.within must be a number of milliseconds (0 or more)`);
  }
  return within;
}

/**
 * Resolves or rejects as `promise` does, or rejects with an AssertionError whose message
 * `onTimeout` writes once `ms` have passed.
 */
export function bounded<T>(promise: Promise<T>, ms: number, onTimeout: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(failure(onTimeout()));
    }, ms);
  });
  return Promise.race([promise, limit]).finally(() => {
    clearTimeout(timer);
  });
}

/** `value` if it is an Error, else an Error that has it as its cause. */
export function asError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : 'non-Error thrown', { cause: value });
}

/** A short, one-line rendering of a value for a failure message. */
export function preview(value: unknown): string {
  return inspect(value, {
    depth: 3,
    breakLength: Infinity,
    maxArrayLength: 10,
    maxStringLength: 120,
  });
}
