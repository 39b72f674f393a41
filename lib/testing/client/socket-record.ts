// The kit's record of each client socket it opened: the events it received (its mailbox), how its
// connect went, why it disconnected, and who is waiting on a change. Every wait of the kit on a
// socket watches its record, so it ends as soon as the answer is known.
import type { Socket as ClientSocket } from 'socket.io-client';
import type { NoUserReason } from '../../diagnostics/diagnostics.js';
import { asError, bounded } from '../bounded.js';
import type { Refusal } from './refusal.js';
import type { TestSocket } from './test-socket.js';

/** One event received: its name and every argument. */
export interface Mail {
  event: string;
  args: unknown[];
}

/**
 * How the connect went. A refusal keeps why the package refused it, when it knows: from
 * `err.data.reason` (the app explains), or else from the `handshake` diagnostics channel.
 */
export type Outcome =
  { kind: 'connected' } | { kind: 'refused'; refusal: Refusal; reason: NoUserReason | undefined };

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

/** A new, empty record of `socket`, kept for {@link recordOf}. */
export function newRecord(socket: TestSocket): SocketRecord {
  const record: SocketRecord = {
    socket,
    mailbox: [],
    outcome: undefined,
    disconnect: undefined,
    watchers: new Set(),
  };
  records.set(socket, record);
  return record;
}

/** Tells every watcher of the record that something changed. */
export function changed(record: SocketRecord): void {
  for (const watcher of [...record.watchers]) watcher();
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

/** The events still in the mailbox, for messages: `online ×2, said`. */
export function describeMailbox(record: SocketRecord): string {
  if (record.mailbox.length === 0) return 'no event';
  const counts = new Map<string, number>();
  for (const { event } of record.mailbox) counts.set(event, (counts.get(event) ?? 0) + 1);
  return [...counts].map(([event, n]) => (n > 1 ? `${event} ×${n}` : event)).join(', ');
}
