// The one debug logger (`DEBUG=socket.io-session-auth`). Typed here without the `debug` package's
// types so that no published declaration imports them (consumers need not install @types/debug).
import createDebug from 'debug';

/** Logs with `debug`'s format strings when `DEBUG` names the package; `enabled` says whether it does. */
export interface DebugLog {
  (formatter: string, ...args: unknown[]): void;
  readonly enabled: boolean;
}

export const debug: DebugLog = createDebug('socket.io-session-auth');
