// The Passport user a session holds, read from a session of any shape, and what the app's
// `userData` makes of the user in `socket.data.user`: one way each, wherever a user arrives
// (the handshake, a token, a refresh).
import type { Socket } from 'socket.io';
import { report } from './errors.js';
import { type HandshakeOptions, userKeyOf } from './state.js';

/**
 * What serializeUser stored in the session (`session.passport.user`), or undefined: never throws,
 * whatever the session is (null, a string, a passport field of another shape).
 */
export function sessionUserOf(session: unknown): unknown {
  if (session === null || typeof session !== 'object') return undefined;
  const { passport } = session as { passport?: unknown };
  return passport !== null && typeof passport === 'object'
    ? (passport as { user?: unknown }).user
    : undefined;
}

/** The user key of a session of any shape (see `userKeyOf`), or undefined. */
export function sessionUserKey(session: unknown): string | undefined {
  return userKeyOf(sessionUserOf(session));
}

/** The default `userData`: the user's usual identifying fields, nothing else. */
export function defaultUserData(user: Express.User): Record<string, unknown> {
  const summary: Record<string, unknown> = {};
  for (const key of ['id', 'username', 'name', 'displayName']) {
    const value = (user as unknown as Record<string, unknown>)[key];
    if (typeof value === 'string' || typeof value === 'number') summary[key] = value;
  }
  return summary;
}

/**
 * Puts what the namespace's `userData` makes of `user` in `socket.data.user` (which
 * `fetchSockets()` returns on every node). A `userData` that throws is reported, never a refusal.
 */
export function giveUserData(socket: Socket, options: HandshakeOptions, user: unknown): void {
  if (!user || !options.userData) return;
  try {
    (socket.data as Record<string, unknown>).user = options.userData(user as Express.User);
  } catch (error) {
    report(options.onError, error, socket);
  }
}
