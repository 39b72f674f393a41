import type { Socket as ClientSocket } from 'socket.io-client';
import type { ConnectError } from './client.js';

// Waits that fail within a bound, saying what was expected and what happened instead, rather
// than waiting for the test timeout.

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

/** The namespace of a client socket, for messages (socket.io-client keeps it private). */
function nspOf(socket: ClientSocket): string {
  return (socket as unknown as { nsp?: string }).nsp ?? '?';
}

/** A refusal as a client sees it, for messages: `Forbidden (ERR_FORBIDDEN)`. */
function describeRefusal(err: ConnectError): string {
  const code = err.data?.code;
  return code === undefined ? err.message : `${err.message} (${code})`;
}

/**
 * Resolves when the socket connects (at once if it is connected). Rejects with a message naming
 * `what` (by default the namespace) and how it was refused on `connect_error`, or after 5 s.
 */
export function connected(socket: ClientSocket, what?: string): Promise<ClientSocket> {
  const label = what ?? `the socket to ${nspOf(socket)}`;
  if (socket.connected) return Promise.resolve(socket);
  let cleanup = (): void => undefined;
  const outcome = new Promise<ClientSocket>((resolve, reject) => {
    const onConnect = (): void => {
      resolve(socket);
    };
    const onError = (err: ConnectError): void => {
      reject(
        new Error(`${label}: expected a connection, but it was refused: ${describeRefusal(err)}`, {
          cause: err,
        }),
      );
    };
    cleanup = () => {
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
    };
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
  });
  return within(outcome, `${label}: expected a connection`).finally(cleanup);
}

/**
 * Resolves with the `connect_error` error. Rejects with a message if the socket connects
 * instead, or after 5 s.
 */
export function connectError(socket: ClientSocket, what?: string): Promise<ConnectError> {
  const label = what ?? `the socket to ${nspOf(socket)}`;
  let cleanup = (): void => undefined;
  const outcome = new Promise<ConnectError>((resolve, reject) => {
    const onConnect = (): void => {
      reject(new Error(`${label}: expected a connect_error, but it connected`));
    };
    const onError = (err: ConnectError): void => {
      resolve(err);
    };
    cleanup = () => {
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
    };
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
  });
  return within(outcome, `${label}: expected a connect_error`).finally(cleanup);
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
