// Admission, on 'connection': a socket whose session ended during its handshake is told and
// disconnected; the others get their expiry, the browser cookie's end and, on several nodes,
// revalidation.
import type { Socket } from 'socket.io';
import { type HandshakeOptions, socketState } from '../core/state.js';
import { initialCookieEnd } from '../live/cookie-refresh.js';
import { armExpiry, cookieExpiry } from '../live/expiry.js';
import { recheckRecovered } from '../live/recovery.js';
import { sendEnded } from '../live/revocation.js';
import { revalidate } from '../live/revalidation.js';

export function admit(socket: Socket, options: HandshakeOptions): void {
  const state = socketState(socket);
  if (!state) {
    if (socket.recovered) recheckRecovered(socket, options);
    return;
  }
  state.connected = true;
  if (state.ended) {
    sendEnded(socket, state.ended);
    return;
  }
  const expires = state.token
    ? state.token.expires
    : cookieExpiry(socket.request, state.server.clock.now());
  armExpiry(state, expires);
  // Touching sockets keep a stored session alive: they track the browser cookie's end too.
  if (options.touchIntervalMs !== undefined && state.sessionID !== undefined && !state.token) {
    state.cookieEnds = initialCookieEnd(expires, state);
  }
  if (state.sessionID !== undefined) revalidate(state);
}
