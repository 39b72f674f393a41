import type { Socket as ClientSocket } from 'socket.io-client';

/** What a client sees in `connect_error` for a refusal of this package. */
export interface ConnectError extends Error {
  data?: { code?: string; status?: number; location?: string } & Record<string, unknown>;
}

/** Resolves when the socket connects; rejects with the `connect_error` error otherwise. */
export function connected(socket: ClientSocket): Promise<ClientSocket> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
    };
    const onConnect = (): void => {
      cleanup();
      resolve(socket);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    if (socket.connected) {
      resolve(socket);
      return;
    }
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
  });
}

/** Resolves with the `connect_error` error; rejects if the socket connects instead. */
export function connectError(socket: ClientSocket): Promise<ConnectError> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
    };
    const onConnect = (): void => {
      cleanup();
      reject(new Error(`expected a connect_error, but ${socket.io.opts.path ?? ''} connected`));
    };
    const onError = (err: Error): void => {
      cleanup();
      resolve(err);
    };
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
  });
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

/** Polls `check` until it returns true, or rejects after `timeoutMs`. */
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
