// A real socket.io-client socket that remembers what it was sent (its mailbox: mailbox.ts), knows
// how its connect went and why it disconnected (its record: socket-record.ts), so that every wait
// ends as soon as the answer is known, with a message that says what happened.
import type { Socket as ClientSocket } from 'socket.io-client';
import type { NoUserReason } from '../../diagnostics/diagnostics.js';
import { DEFAULT_REFUTE_MS, checkWithin } from '../bounded.js';
import {
  expectArgs,
  payloadTest,
  refuteArgs,
  type ExpectEventArgsOptions,
  type ExpectEventOptions,
  type RefuteEventOptions,
} from './mailbox.js';
import type { Refusal } from './refusal.js';
import { changed, newRecord } from './socket-record.js';

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
   * `within`, saying what did arrive. For every argument, {@link TestSocket.expectEventArgs}.
   */
  expectEvent<T = unknown>(event: string, options?: ExpectEventOptions<T>): Promise<T>;
  /**
   * {@link TestSocket.expectEvent}, resolving with every argument of the event, as an array:
   * for an event emitted as `emit('said', user, text)`, `[user, text]`. `where` is given them all.
   *
   * @example
   * ```ts
   * // server: socket.on('say', (text) => chat.emit('said', socket.request.user?.username, text));
   * const chat = await alice.connect('/chat');
   * await chat.emitWithAck('say', 'hi');
   * const [from, text] = await chat.expectEventArgs<[string, string]>('said');
   * assert.deepEqual([from, text], ['alice', 'hi']);
   * // or only the event a given user said:
   * await chat.expectEventArgs<[string, string]>('said', { where: (from) => from === 'bob' });
   * ```
   */
  expectEventArgs<T extends unknown[] = unknown[]>(
    event: string,
    options?: ExpectEventArgsOptions<T>,
  ): Promise<T>;
  /**
   * Fails if an event of that name has arrived or arrives within the window, and leaves the
   * mailbox as it was.
   */
  refuteEvent<T = unknown>(event: string, options?: RefuteEventOptions<T>): Promise<void>;
}

/** Where the package's reasons for refusing the kit's sockets come from: the kit's channel. */
export type ReasonSource = (
  connectionId: string | undefined,
  namespace: string,
) => NoUserReason | undefined;

/**
 * Makes a fresh (not yet connected) client socket a TestSocket: call before it connects.
 * `reason()` gives the package's reason for a refusal the client was not told the reason of.
 */
export function toTestSocket(
  raw: ClientSocket,
  namespace: string,
  owner: string,
  reason: () => NoUserReason | undefined,
): TestSocket {
  const socket = raw as TestSocket;
  const record = newRecord(socket);
  raw.onAny((event: string, ...args: unknown[]) => {
    record.mailbox.push({ event, args });
    changed(record);
  });
  raw.on('connect', () => {
    record.outcome = { kind: 'connected' };
    record.disconnect = undefined;
    changed(record);
  });
  raw.on('connect_error', (error: Error & { data?: Refusal['data'] }) => {
    const refusal: Refusal = { message: error.message };
    if (error.data !== undefined) refusal.data = error.data;
    // Taken at once: the server published it a tick after it sent the refusal, before any read.
    const told = error.data?.reason as NoUserReason | undefined;
    record.outcome ??= { kind: 'refused', refusal, reason: told ?? reason() };
    changed(record);
  });
  raw.on('disconnect', (reason) => {
    record.disconnect = { reason };
    changed(record);
  });
  Object.defineProperties(socket, {
    namespace: { value: namespace },
    label: { value: `${namespace} (${owner})` },
    expectEvent: {
      value: function expectEvent<T>(event: string, options: ExpectEventOptions<T> = {}) {
        const where = payloadTest(options.where);
        return expectArgs(record, event, where, options.within).then((args) => args[0] as T);
      },
    },
    expectEventArgs: {
      value: function expectEventArgs<T extends unknown[]>(
        event: string,
        options: ExpectEventArgsOptions<T> = {},
      ) {
        const { where } = options;
        const test = where && ((args: unknown[]) => where(...(args as T)));
        return expectArgs(record, event, test, options.within) as Promise<T>;
      },
    },
    refuteEvent: {
      value: function refuteEvent<T>(event: string, options: RefuteEventOptions<T> = {}) {
        const ms = checkWithin('refuteEvent', options.within, DEFAULT_REFUTE_MS);
        return refuteArgs(record, event, payloadTest(options.where), ms);
      },
    },
  });
  return socket;
}
