// Why a socket that read its session has no user: for the log, the diagnostics and `explain`.
import type { Socket } from 'socket.io';
import type { ReadResponse } from '../core/response.js';
import type { HandshakeOptions } from '../core/state.js';
import type { SessionRequest } from '../core/types.js';
import { reasonsWanted, rememberWhy, sessionCookieName, whyNoUser } from './explain.js';
import { storedSessionID } from '../handshake/session-read.js';

/** Remembers why the socket has no user (when a reason is wanted), then calls `next`. */
export function explainNoUser(
  options: HandshakeOptions,
  socket: Socket,
  req: SessionRequest,
  res: ReadResponse,
  next: (err?: Error) => void,
): void {
  const { explain } = options;
  if (res.skipped) {
    // Kept even when no one asks for reasons: a warning named this setup mistake already (the
    // cookie path, or the skip itself), and requireAuth must not name another fix for it.
    rememberWhy(socket, 'session-skipped', explain);
    next();
    return;
  }
  if ((req as { user?: unknown }).user !== undefined || !reasonsWanted(explain)) {
    next();
    return;
  }
  whyNoUser(
    req as Parameters<typeof whyNoUser>[0],
    {
      stored: storedSessionID(req) !== undefined,
      hadUser: res.hadUser,
      passport: !!options.passport,
      cookie: { taken: res.cookieID, name: sessionCookieName(options.session) },
    },
    (reason) => {
      rememberWhy(socket, reason, explain);
      next();
    },
  );
}
