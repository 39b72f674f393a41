import createDebug from 'debug';
import type { Socket } from 'socket.io';
import type { ErrorHook } from './types.js';

const debug = createDebug('socket.io-session-auth');

/**
 * Reports an error the client was not shown in full: to `onError` when given, else as Express's
 * final handler does (5xx to `console.error`), and always to the debug log.
 */
export function report(
  onError: ErrorHook | undefined,
  error: unknown,
  socket: Socket,
  status = 500,
): void {
  debug('nsp %s socket %s: %O', socket.nsp.name, socket.id, error);
  if (onError) {
    try {
      onError(error, socket);
    } catch (hookError) {
      debug('onError threw: %O', hookError);
    }
  } else if (status >= 500) {
    console.error('socket.io-session-auth:', error);
  }
}
