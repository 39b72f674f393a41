import type { Server } from 'socket.io';
import { refreshEverywhere } from '../live/refresh.js';
import { sessionKey } from '../live/revocation.js';
import { toServer } from '../api/setup.js';

/**
 * Like {@link refreshUser}, for the sockets of one session: its session is read again, its user
 * deserialized again, and each namespace's `requireAuth` decides again, on every node.
 *
 * @example
 * ```ts
 * req.session.tenants = ['acme'];
 * req.session.save(() => refreshSession(io, req.sessionID));
 * ```
 */
export function refreshSession(io: Server, sessionID: string): Promise<void> {
  const server = toServer(io, 'refreshSession');
  if (typeof sessionID !== 'string' || sessionID === '') {
    throw new TypeError('refreshSession: sessionID must be a non-empty string');
  }
  return refreshEverywhere(server, sessionKey(sessionID));
}
