// Acks and polling. The waits on a socket's connect are in bounded.ts: they fail with a message
// within a bound.
import type { Socket as ClientSocket } from 'socket.io-client';

/** What a client sees in `connect_error` for a refusal of this package. */
export interface ConnectError extends Error {
  data?: { code?: string; status?: number; location?: string } & Record<string, unknown>;
}

/** Emits an event with an ack and resolves with the ack's first argument. */
export function request<T = unknown>(
  socket: ClientSocket,
  event: string,
  ...args: unknown[]
): Promise<T> {
  return socket.timeout(5000).emitWithAck(event, ...args) as Promise<T>;
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` until it returns true, or rejects after `timeoutMs`: for state that no event
 * reports (a count on the server, a store's content). Wait on the event where there is one.
 */
export async function waitFor(
  check: () => boolean,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/** The parts of a refusal a client can see: its message and its data. */
export function shown(err: ConnectError): { message: string; data: unknown } {
  return { message: err.message, data: err.data };
}
