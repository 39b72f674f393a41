// A socket's mailbox, as in Phoenix.ChannelTest: an event that arrived before the test asked for
// it is not lost, each expectEvent takes one event out, and refuteEvent checks that none came.
import { DEFAULT_WITHIN_MS, checkWithin, failure, preview } from '../bounded.js';
import { describeRefused } from './refusal.js';
import { describeMailbox, watch, type Mail, type SocketRecord } from './socket-record.js';

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

/** Options for {@link TestSocket.expectEventArgs}. */
export interface ExpectEventArgsOptions<T extends unknown[] = unknown[]> {
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
  where?: (...args: T) => boolean;
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

/** A test of an event's arguments, all of them. */
type ArgsTest = (args: unknown[]) => boolean;

function matches(mail: Mail, event: string, where: ArgsTest | undefined): boolean {
  return mail.event === event && (!where || where(mail.args));
}

/** `where` of expectEvent or refuteEvent, as a test of all the arguments. */
export function payloadTest(
  where: ((payload: never, ...rest: unknown[]) => boolean) | undefined,
): ArgsTest | undefined {
  return where && ((args) => where(...(args as [never, ...unknown[]])));
}

/**
 * Resolves with every argument of the next event of that name in the mailbox (one already
 * received included), and takes it out. Fails as soon as the socket disconnects or is refused,
 * or after `within`, saying what did arrive.
 */
export function expectArgs(
  record: SocketRecord,
  event: string,
  where: ArgsTest | undefined,
  within: unknown,
): Promise<unknown[]> {
  const ms = checkWithin('expectEvent', within, DEFAULT_WITHIN_MS);
  const what = `'${event}'${where ? ' (matching where)' : ''} on ${record.socket.label}`;
  return watch(
    record,
    () => {
      const index = record.mailbox.findIndex((mail) => matches(mail, event, where));
      if (index >= 0) return record.mailbox.splice(index, 1)[0]?.args;
      if (record.disconnect) {
        throw failure(
          `expected ${what}, but the socket disconnected (${record.disconnect.reason}); ` +
            `it had received: ${describeMailbox(record)}`,
        );
      }
      if (record.outcome?.kind === 'refused') {
        throw failure(
          `expected ${what}, but the socket was refused: ${describeRefused(record.outcome)}`,
        );
      }
      return undefined;
    },
    ms,
    () =>
      `expected ${what} within ${ms} ms, but it did not come; received meanwhile: ` +
      describeMailbox(record),
  );
}

/**
 * Fails if an event of that name is in the mailbox or arrives within `ms`, and leaves the mailbox
 * as it was.
 */
export async function refuteArgs(
  record: SocketRecord,
  event: string,
  where: ArgsTest | undefined,
  ms: number,
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
