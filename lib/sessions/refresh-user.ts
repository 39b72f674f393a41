import type { Server } from 'socket.io';
import { refreshEverywhere } from '../live/refresh.js';
import { userKey as userEndKey } from '../live/revocation.js';
import { toServer } from '../api/setup.js';
import { userKeyOf } from '../core/state.js';

/**
 * Keeps a user's live sockets true to what the app now says of the user, on every node: each of
 * the user's sessions is read again, `deserializeUser` runs again, `socket.request.user` and
 * `socket.data.user` become the fresh user, and each namespace's `requireAuth` decides again. A
 * socket its `authorize` now turns down receives `session:ended` (`ERR_FORBIDDEN`, 403) and is
 * disconnected from that namespace; one that stays leaves the rooms its room policy no longer
 * allows (`session:rooms-left`). A user who is gone (`deserializeUser` gives `false`) ends as
 * revoked. `userKey` is what Passport's `serializeUser` stored. Resolves once this node has checked
 * its sockets and every other node has acknowledged; an unknown user is a no-op.
 *
 * @example
 * ```ts
 * await db.users.update(id, { role: 'member' });
 * await refreshUser(io, id); // their /admin sockets end with ERR_FORBIDDEN
 * ```
 */
export function refreshUser(io: Server, userKey: unknown): Promise<void> {
  const server = toServer(io, 'refreshUser');
  const key = userKeyOf(userKey);
  if (key === undefined || key === '') {
    throw new TypeError('refreshUser: userKey must be what serializeUser stored, not empty');
  }
  return refreshEverywhere(server, userEndKey(key));
}
