import type { Socket as ClientSocket } from 'socket.io-client';
import {
  connected as connectedOrError,
  connectError as connectErrorOf,
  type ConnectError,
} from './client.js';

// Like the helpers of client.ts, but these fail within a bound instead of waiting for the test
// timeout.

/** Fails within `ms` instead of waiting for the test timeout. */
export function within<T>(promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what}: nothing within ${ms} ms`));
    }, ms);
  });
  return Promise.race([promise, limit]).finally(() => {
    clearTimeout(timer);
  });
}

/** Resolves when the socket connects; rejects on `connect_error` or after 5 s. */
export function connected(socket: ClientSocket): Promise<ClientSocket> {
  return within(connectedOrError(socket), 'connect');
}

/** Resolves with the `connect_error` error; rejects if the socket connects, or after 5 s. */
export function connectError(socket: ClientSocket): Promise<ConnectError> {
  return within(connectErrorOf(socket), 'connect_error');
}

/** Emits with an ack callback and resolves with every argument the ack was called with. */
export function emitWithReply(
  socket: ClientSocket,
  event: string,
  ...args: unknown[]
): Promise<unknown[]> {
  return within(
    new Promise<unknown[]>((resolve) => {
      socket.emit(event, ...args, (...reply: unknown[]) => {
        resolve(reply);
      });
    }),
    `the ack of ${event}`,
  );
}
