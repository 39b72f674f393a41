// The kit's reach into the expiry check, because the package's public API has no way to do this:
// make a node's live sockets of one session run, now, the check the package runs at
// their expiry (lib/live/expiry.ts). The store then decides, as at a real expiry: a session gone or
// past its expiry ends them with ERR_SESSION_EXPIRED; one still valid re-arms them at its stored
// expiry. Nothing ends without the store's word. Replace with a public core call when there is one.
import type { Server } from 'socket.io';
import { armExpiry } from '../../live/expiry.js';
import { serverState, sessionDigest } from '../../core/state.js';

/** Moves the expiry of `io`'s connected sockets of session `sessionID` to now. */
export function recheckExpiryNow(io: Server, sessionID: string): void {
  const server = serverState(io);
  const now = server.clock.now();
  for (const state of server.bySession.get(sessionDigest(sessionID))) {
    if (state.connected && !state.ended) armExpiry(state, now);
  }
}
