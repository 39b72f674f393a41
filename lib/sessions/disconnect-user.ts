import type { Server } from 'socket.io';
import { ERR_SESSION_REVOKED } from '../core/errors.js';
import { endEverywhere, userKey as userEndKey } from '../live/revocation.js';
import { toServer } from '../api/setup.js';
import { userKeyOf } from '../core/state.js';

/**
 * Ends every socket of one user, in every session, every namespace (dynamic children included) and
 * on every node of the adapter. `userKey` is what Passport's `serializeUser` stored for the user
 * (usually the user's ID). Each socket first receives `session:ended` with `ERR_SESSION_REVOKED`.
 *
 * @example
 * ```ts
 * adminSocket.on('kick', (userId: string) => disconnectUser(io, userId));
 * ```
 */
export function disconnectUser(io: Server, userKey: unknown): Promise<void> {
  const server = toServer(io, 'disconnectUser');
  const key = userKeyOf(userKey);
  if (key === undefined || key === '') {
    throw new TypeError('disconnectUser: userKey must be what serializeUser stored, not empty');
  }
  return endEverywhere(server, userEndKey(key), ERR_SESSION_REVOKED, 'revocation');
}
