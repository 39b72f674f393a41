// A real socket.io-client socket that remembers what it was sent, like Phoenix.ChannelTest's
// mailbox: an event that arrived before the test asked for it is not lost, and each expectEvent
// takes one event out. It also knows how its connect went and why it disconnected, so that every
// wait ends as soon as the answer is known, with a message that says what happened.
import type { Socket as ClientSocket } from 'socket.io-client';
import {
  DEFAULT_REFUTE_MS,
  DEFAULT_WITHIN_MS,
  bounded,
  asError,
  checkWithin,
  failure,
  preview,
} from '../bounded.js';

/** Options for {@link TestSocket.expectEvent}. */
export interface ExpectEventOptions<T = unknown> {
  /**
   * How long to wait for the event, in milliseconds.
   * @default 5000
   */
  within?: number;
  /**
   * Only an event whose arguments pass this test counts; the others stay in the socket's mailbox
   * for later expectations.
   * @default undefined (the first event of that name counts)
   */
  where?: (payload: T, ...rest: unknown[]) => boolean;
}

/** Options for {@link TestSocket.refuteEvent}. */
export interface RefuteEventOptions<T = unknown> {
  /**
   * How long to watch for the event, in milliseconds. `0` checks only the events already
   * received: the way to refute without a time window, once something that comes after the
   * event (an ack, a later event) has arrived.
   * @default 100
   */
  within?: number;
  /**
   * Only an event whose arguments pass this test counts.
   * @default undefined (any event of that name counts)
   */
  where?: (payload: T, ...rest: unknown[]) => boolean;
}

/**
 * A real socket.io-client `Socket`, opened by an agent of the test kit with the agent's cookie,
 * that also remembers every event it received.
 *
 * @example
 * ```ts
 * const chat = await alice.connect('/chat');
 * const said = chat.expectEvent<{ from: string }>('said');
 * await chat.emitWithAck('say', { text: 'hi' });
 * assert.equal((await said).from, 'alice');
 * ```
 */
export interface TestSocket extends ClientSocket {
  /** The namespace, as the test asked for it (`'/chat'`). */
  readonly namespace: string;
  /** Who opened it and where, for messages: `'/chat (alice)'`. */
  readonly label: string;
  /**
   * Resolves with the first argument of the next event of that name (one already received
   * included), and takes it out of the mailbox. Fails as soon as the socket disconnects, or after
   * `within`, saying what did arrive.
   */
  expectEvent<T = unknown>(event: string, options?: ExpectEventOptions<T>): Promise<T>;
  /**
   * Fails if an event of that name has arrived or arrives within the window, and leaves the
   * mailbox as it was.
   */
  refuteEvent<T = unknown>(event: string, options?: RefuteEventOptions<T>): Promise<void>;
}

/** What a client sees of a refusal: `connect_error`'s message and data. */
export interface Refusal {
  message: string;
  /** `{ code, status }` for this package's refusals; undefined for Socket.IO's own. */
  data?: { code?: string; status?: number; location?: string } & Record<string, unknown>;
}

interface Mail {
  event: string;
  args: unknown[];
}

type Outcome = { kind: 'connected' } | { kind: 'refused'; refusal: Refusal };

/** The kit's record of one socket. */
export interface SocketRecord {
  readonly socket: TestSocket;
  readonly mailbox: Mail[];
  outcome: Outcome | undefined;
  disconnect: { reason: string } | undefined;
  /** Called on every change (an event, connect, connect_error, disconnect). */
  readonly watchers: Set<() => void>;
}

const records = new WeakMap<ClientSocket, SocketRecord>();

/** The record of a socket the kit opened, or undefined for any other socket. */
export function recordOf(socket: unknown): SocketRecord | undefined {
  return typeof socket === 'object' && socket !== null
    ? records.get(socket as ClientSocket)
    : undefined;
}

/** Makes a fresh (not yet connected) client socket a TestSocket: call before it connects. */
export function toTestSocket(raw: ClientSocket, namespace: string, owner: string): TestSocket {
  const socket = raw as TestSocket;
  const record: SocketRecord = {
    socket,
    mailbox: [],
    outcome: undefined,
    disconnect: undefined,
    watchers: new Set(),
  };
  records.set(raw, record);
  const changed = (): void => {
    for (const watcher of [...record.watchers]) watcher();
  };
  raw.onAny((event: string, ...args: unknown[]) => {
    record.mailbox.push({ event, args });
    changed();
  });
  raw.on('connect', () => {
    record.outcome = { kind: 'connected' };
    record.disconnect = undefined;
    changed();
  });
  raw.on('connect_error', (error: Error & { data?: Refusal['data'] }) => {
    const refusal: Refusal = { message: error.message };
    if (error.data !== undefined) refusal.data = error.data;
    record.outcome ??= { kind: 'refused', refusal };
    changed();
  });
  raw.on('disconnect', (reason) => {
    record.disconnect = { reason };
    changed();
  });
  Object.defineProperties(socket, {
    namespace: { value: namespace },
    label: { value: `${namespace} (${owner})` },
    expectEvent: {
      value: function expectEvent<T>(event: string, options?: ExpectEventOptions<T>) {
        return expectEventOn<T>(record, event, options);
      },
    },
    refuteEvent: {
      value: function refuteEvent<T>(event: string, options: RefuteEventOptions<T> = {}) {
        const ms = checkWithin('refuteEvent', options.within, DEFAULT_REFUTE_MS);
        return refuteEventOn<T>(record, event, ms, options.where);
      },
    },
  });
  return socket;
}

/**
 * Resolves with `check()`'s first defined answer, checked now and after every change of the
 * socket; rejects with `onTimeout()`'s message after `ms`.
 */
export function watch<T>(
  record: SocketRecord,
  check: () => T | undefined,
  ms: number,
  onTimeout: () => string,
): Promise<T> {
  let watcher: (() => void) | undefined;
  const answer = new Promise<T>((resolve, reject) => {
    watcher = () => {
      let value: T | undefined;
      try {
        value = check();
      } catch (error) {
        reject(asError(error));
        return;
      }
      if (value !== undefined) resolve(value);
    };
    watcher();
    record.watchers.add(watcher);
  });
  return bounded(answer, ms, onTimeout).finally(() => {
    if (watcher) record.watchers.delete(watcher);
  });
}

/** Resolves once the socket has connected; rejects as soon as it is refused, or after `ms`. */
export function settled(record: SocketRecord, ms: number): Promise<Outcome> {
  return watch(
    record,
    () => record.outcome,
    ms,
    () =>
      `expected ${record.socket.label} to connect or be refused, but neither connect nor ` +
      `connect_error came within ${ms} ms (is the server listening? is the path right?)`,
  );
}

/** What a refusal says, for messages: `ERR_FORBIDDEN (403 Forbidden)`. */
export function describeRefusal(refusal: Refusal): string {
  const { code, status } = refusal.data ?? {};
  if (code === undefined) {
    return `${JSON.stringify(refusal.message)} (no code: ${
      refusal.message === 'Invalid namespace'
        ? 'Socket.IO has no such namespace'
        : 'refused before any namespace middleware, such as at the HTTP level'
    })`;
  }
  return `${code} (${status === undefined ? '' : `${status} `}${refusal.message})`;
}

/** The events still in the mailbox, for messages: `online ×2, said`. */
export function describeMailbox(record: SocketRecord): string {
  if (record.mailbox.length === 0) return 'no event';
  const counts = new Map<string, number>();
  for (const { event } of record.mailbox) counts.set(event, (counts.get(event) ?? 0) + 1);
  return [...counts].map(([event, n]) => (n > 1 ? `${event} ×${n}` : event)).join(', ');
}

function matches<T>(mail: Mail, event: string, where: ExpectEventOptions<T>['where']): boolean {
  if (mail.event !== event) return false;
  if (!where) return true;
  const [payload, ...rest] = mail.args;
  return where(payload as T, ...rest);
}

function expectEventOn<T>(
  record: SocketRecord,
  event: string,
  options: ExpectEventOptions<T> = {},
): Promise<T> {
  const ms = checkWithin('expectEvent', options.within, DEFAULT_WITHIN_MS);
  const { where } = options;
  const { label } = record.socket;
  const what = `'${event}'${where ? ' (matching where)' : ''} on ${label}`;
  return watch(
    record,
    () => {
      const index = record.mailbox.findIndex((mail) => matches(mail, event, where));
      if (index >= 0) {
        const [mail] = record.mailbox.splice(index, 1);
        return { payload: mail?.args[0] as T };
      }
      if (record.disconnect) {
        throw failure(
          `expected ${what}, but the socket disconnected (${record.disconnect.reason}); ` +
            `it had received: ${describeMailbox(record)}`,
        );
      }
      if (record.outcome?.kind === 'refused') {
        throw failure(
          `expected ${what}, but the socket was refused: ${describeRefusal(record.outcome.refusal)}`,
        );
      }
      return undefined;
    },
    ms,
    () =>
      `expected ${what} within ${ms} ms, but it did not come; received meanwhile: ` +
      describeMailbox(record),
  ).then(({ payload }) => payload);
}

async function refuteEventOn<T>(
  record: SocketRecord,
  event: string,
  ms: number,
  where: RefuteEventOptions<T>['where'],
): Promise<void> {
  const found = (): Mail | undefined => record.mailbox.find((mail) => matches(mail, event, where));
  const early = found();
  const what = `no '${event}'${where ? ' (matching where)' : ''} on ${record.socket.label}`;
  if (early) throw failure(`expected ${what}, but it received one: ${preview(early.args)}`);
  if (ms === 0) return;
  await new Promise<void>((resolve, reject) => {
    const stop = (): void => {
      clearTimeout(timer);
      record.watchers.delete(watcher);
    };
    const watcher = (): void => {
      const late = found();
      if (!late) return;
      stop();
      reject(
        failure(`expected ${what} within ${ms} ms, but it received one: ${preview(late.args)}`),
      );
    };
    // The window passing with no such event is what was asked.
    const timer = setTimeout(() => {
      stop();
      resolve();
    }, ms);
    record.watchers.add(watcher);
  });
}

// The errors `connected` rejects with, and the socket each is about: expectRefused reads them.
const failedConnects = new WeakMap<object, { record: SocketRecord; ms: number }>();

/** The socket a rejection of {@link connected} is about, and how long it waited. */
export function failedConnectOf(error: unknown): { record: SocketRecord; ms: number } | undefined {
  return typeof error === 'object' && error !== null ? failedConnects.get(error) : undefined;
}

/**
 * Resolves with the socket once it has connected. Rejects with an AssertionError that says how it
 * was refused, or that nothing came within `ms`.
 */
export async function connected(record: SocketRecord, ms: number): Promise<TestSocket> {
  const { socket } = record;
  try {
    const outcome = await settled(record, ms);
    if (outcome.kind === 'connected') return socket;
    throw failure(
      `expected ${socket.label} to connect, but it was refused: ${describeRefusal(outcome.refusal)}`,
    );
  } catch (error) {
    if (typeof error === 'object' && error !== null) failedConnects.set(error, { record, ms });
    throw error;
  }
}
