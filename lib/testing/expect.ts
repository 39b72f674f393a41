// The assertions of the kit that are not about one socket's mailbox: a refused connect, a refused
// event's ack, and a socket ended because its session ended. Each throws node:assert's
// AssertionError, so they work under node:test, Vitest, Jest and Mocha alike.
import { DEFAULT_WITHIN_MS, bounded, checkWithin, failure, preview } from './bounded.js';
import { describeRefused, failedConnectOf, settled, type Refusal } from './client/refusal.js';
import { describeMailbox, recordOf, watch, type SocketRecord } from './client/socket-record.js';
import type { TestSocket } from './client/test-socket.js';

/** The `{ within }` option the assertions take. */
export interface WithinOptions {
  /**
   * How long to wait, in milliseconds.
   * @default 5000
   */
  within?: number;
}

/** What a refused event's ack carries under `error` (see the package's `EventRefusal`). */
export interface AckError {
  message: string;
  code: string;
  status: number;
  /** `ERR_RATE_LIMITED`: in how many milliseconds the event can go through. */
  retryAfterMs?: number;
}

const SESSION_ENDED = 'session:ended';

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

function recordOrThrow(helper: string, socket: unknown): SocketRecord {
  const record = recordOf(socket);
  if (!record) {
    throw new TypeError(`${helper}: expected a socket opened by the test kit (agent.connect)`);
  }
  return record;
}

/**
 * Asserts that a connect is refused, with `code` when given (`err.data.code` of
 * `connect_error`), and that the client does not try again. Takes what `agent.connect` returns
 * (or the socket). Resolves with the refusal: its message and data. A refusal with another code
 * fails naming it, with the package's reason when it has one (why the socket had no user, such as
 * `user-not-found`), whether or not the app explains it to clients.
 *
 * @example
 * ```ts
 * const bob = await kit.loginAs(findUserById('2'));
 * await expectRefused(bob.connect('/admin'), 'ERR_FORBIDDEN');
 * ```
 */
export function expectRefused(
  connecting: Promise<TestSocket> | TestSocket,
  code?: string,
  options: WithinOptions = {},
): Promise<Refusal> {
  const ms = checkWithin('expectRefused', options.within, DEFAULT_WITHIN_MS);
  const given: unknown = code;
  if (given !== undefined && typeof given !== 'string') {
    throw new TypeError('expectRefused: code must be a string, such as ERR_FORBIDDEN');
  }
  if (!recordOf(connecting) && !isThenable(connecting)) {
    throw new TypeError('expectRefused: expected what agent.connect() returns, or its socket');
  }
  return refused(connecting, code, ms);
}

async function refused(
  connecting: Promise<TestSocket> | TestSocket,
  code: string | undefined,
  ms: number,
): Promise<Refusal> {
  const expected = `connect_error${code === undefined ? '' : ` ${code}`}`;
  let record = recordOf(connecting);
  let waited = ms;
  let timedOut = false;
  if (!record) {
    try {
      const socket = await bounded(
        Promise.resolve(connecting),
        ms,
        () => `expected ${expected}, but the connect neither resolved nor rejected in ${ms} ms`,
      );
      record = recordOrThrow('expectRefused', socket);
    } catch (error) {
      const failed = failedConnectOf(error);
      if (!failed) throw error;
      ({ record, ms: waited } = failed);
      // The connect gave up waiting: nothing more to wait for.
      timedOut = record.outcome === undefined;
    }
  }
  const { label } = record.socket;
  const outcome = timedOut ? undefined : await settled(record, waited).catch(() => undefined);
  if (!outcome) {
    throw failure(
      `expected ${expected} on ${label}, but neither connect nor connect_error came within ` +
        `${waited} ms`,
    );
  }
  if (outcome.kind === 'connected') {
    throw failure(`expected ${expected} on ${label}, but the socket connected`);
  }
  const { refusal } = outcome;
  if (code !== undefined && refusal.data?.code !== code) {
    throw failure(
      `expected ${expected} on ${label}, but it was refused with ${describeRefused(outcome)}`,
    );
  }
  if (record.socket.active) {
    throw failure(
      `expected ${expected} on ${label} and no retry, but the client is still trying to connect ` +
        `after ${describeRefused(outcome)}`,
    );
  }
  return refusal;
}

/**
 * Asserts that an event's ack carries `{ error: { code } }`: the package's answer to an event
 * that `authorizeEvent` refused, that came after the session ended, or that was over a
 * `rateLimit` budget (`ERR_RATE_LIMITED`, with `retryAfterMs`). Takes the promise of
 * `socket.emitWithAck(…)`. Resolves with the error; a failure shows the whole error, its
 * `retryAfterMs` included.
 *
 * @example
 * ```ts
 * const chat = await bob.connect('/chat');
 * await expectAckError(chat.emitWithAck('delete-message', 42), 'ERR_FORBIDDEN');
 * const { retryAfterMs } = await expectAckError(chat.emitWithAck('message', 'hi'), 'ERR_RATE_LIMITED');
 * ```
 */
export function expectAckError(
  reply: Promise<unknown>,
  code: string,
  options: WithinOptions = {},
): Promise<AckError> {
  const ms = checkWithin('expectAckError', options.within, DEFAULT_WITHIN_MS);
  if (!isThenable(reply)) {
    throw new TypeError('expectAckError: expected the promise of socket.emitWithAck(…)');
  }
  const given: unknown = code;
  if (typeof given !== 'string') {
    throw new TypeError('expectAckError: code must be a string, such as ERR_FORBIDDEN');
  }
  return ackError(reply, code, ms);
}

async function ackError(reply: PromiseLike<unknown>, code: string, ms: number): Promise<AckError> {
  const expected = `an ack with error ${code}`;
  let value: unknown;
  try {
    value = await bounded(
      Promise.resolve(reply),
      ms,
      () => `expected ${expected}, but no ack came within ${ms} ms`,
    );
  } catch (error) {
    if (error instanceof Error && error.name === 'AssertionError') throw error;
    throw failure(`expected ${expected}, but the emit failed: ${preview(error)}`);
  }
  const error = (value as { error?: unknown } | null | undefined)?.error;
  if (error === null || typeof error !== 'object') {
    throw failure(`expected ${expected}, but the ack was ${preview(value)}`);
  }
  const got = error as Partial<AckError>;
  if (got.code !== code) {
    throw failure(`expected ${expected}, but the ack's error was ${preview(error)}`);
  }
  return got as AckError;
}

/**
 * Asserts that the server ended the socket because its session ended: the socket received
 * `session:ended` with `data.code === code` (`ERR_SESSION_REVOKED`, `ERR_SESSION_ROTATED`,
 * `ERR_SESSION_EXPIRED`), then was disconnected by the server, and does not reconnect.
 *
 * @example
 * ```ts
 * const chat = await alice.connect('/chat');
 * await alice.logout();
 * await expectEnded(chat, 'ERR_SESSION_REVOKED');
 * ```
 */
export function expectEnded(
  socket: TestSocket,
  code: string,
  options: WithinOptions = {},
): Promise<void> {
  const ms = checkWithin('expectEnded', options.within, DEFAULT_WITHIN_MS);
  const record = recordOrThrow('expectEnded', socket);
  const given: unknown = code;
  if (typeof given !== 'string') {
    throw new TypeError('expectEnded: code must be a string, such as ERR_SESSION_REVOKED');
  }
  return ended(record, code, ms);
}

async function ended(record: SocketRecord, code: string, ms: number): Promise<void> {
  const { label } = record.socket;
  const expected = `${label} to end with ${SESSION_ENDED} ${code}`;
  let told: unknown;
  await watch(
    record,
    () => {
      if (told === undefined) {
        const index = record.mailbox.findIndex((mail) => mail.event === SESSION_ENDED);
        if (index >= 0) {
          told = record.mailbox.splice(index, 1)[0]?.args[0] ?? null;
          const got = (told as { data?: { code?: unknown } } | null)?.data?.code;
          if (got !== code) {
            throw failure(`expected ${expected}, but it received ${SESSION_ENDED} ${preview(got)}`);
          }
        }
      }
      const { disconnect } = record;
      if (!disconnect) return undefined;
      if (told === undefined) {
        throw failure(
          `expected ${expected}, but it disconnected (${disconnect.reason}) without ` +
            `${SESSION_ENDED}; it had received: ${describeMailbox(record)}`,
        );
      }
      if (disconnect.reason !== 'io server disconnect') {
        throw failure(
          `expected ${expected} and a disconnect by the server, but it disconnected ` +
            `(${disconnect.reason})`,
        );
      }
      return true;
    },
    ms,
    () =>
      told === undefined
        ? `expected ${expected}, but ${
            record.outcome?.kind === 'connected' ? 'it is still connected' : 'it never connected'
          } after ${ms} ms; it received: ${describeMailbox(record)}`
        : `expected ${expected}: it received ${SESSION_ENDED}, but no disconnect within ${ms} ms`,
  );
  if (record.socket.active) {
    throw failure(`expected ${expected} for good, but the client is reconnecting`);
  }
}
