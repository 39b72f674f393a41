import type { Server } from 'socket.io';
import { ERR_SESSION_REVOKED } from '../core/errors.js';
import { endEverywhere, sessionKey } from '../live/revocation.js';
import { toServer } from '../api/setup.js';

/**
 * Ends every socket of one session, in every namespace (dynamic children included), on every node
 * of the adapter. Each socket first receives `session:ended` with `ERR_SESSION_REVOKED`, then is
 * disconnected. Reaches every socket of a `sessionNamespace` with no code in your app.
 *
 * @example
 * ```ts
 * app.post('/sessions/:id/revoke', async (req, res) => {
 *   await disconnectSession(io, req.params.id);
 *   res.sendStatus(204);
 * });
 * ```
 */
export function disconnectSession(io: Server, sessionID: string): Promise<void> {
  const server = toServer(io, 'disconnectSession');
  if (typeof sessionID !== 'string' || sessionID === '') {
    throw new TypeError('disconnectSession: sessionID must be a non-empty string');
  }
  return endEverywhere(server, sessionKey(sessionID), ERR_SESSION_REVOKED, 'revocation');
}
