// The account page and "sign out everywhere", on socket.io-session-auth's session registry
// (createApp calls sessionRegistry; with `redis`, every copy shares it):
// - GET /account: the signed-in user's devices (listSessions), this one marked (sessionHandle);
// - POST /account/sign-out { handle }: ends that device's session (endSessions `only`); this
//   device's is a logout, as POST /logout;
// - POST /account/sign-out-others: every session of the user but this one (endSessions `except`);
// - `sign-out-everywhere` on /admin: every session of a user, with sockets or not (endSessions).
// A device is named by its handle, never by its session ID. The forms post with the session
// cookie, which is SameSite=Lax (app.ts): another site's form posts without it, as a stranger.
import express, { type Express, type Request, type Response } from 'express';
import type { Namespace, Server } from 'socket.io';
import { endSessions, listSessions, sessionHandle } from 'socket.io-session-auth';
import { accountPage } from './account-page.js';
import { findUserById } from './users.js';

// A handle as the package makes them (a digest in base64url): anything else is not one.
const HANDLE = /^[\w-]{1,128}$/;

/** The signed-in user and the handle of this request's session, or a redirect to the login. */
function signedIn(
  req: Request,
  res: Response,
): { user: Express.User; current: string } | undefined {
  const current = sessionHandle(req);
  if (req.user && current !== undefined) return { user: req.user, current };
  res.redirect(303, '/login');
  return undefined;
}

/** How many devices the last button signed out, from `?signed-out=`. */
function countOf(value: unknown): number | undefined {
  const count = typeof value === 'string' && /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  return Number.isInteger(count) ? count : undefined;
}

/** Adds the account page and its two actions to `app`. */
export function useAccount(app: Express, io: Server): void {
  const form = express.urlencoded({ extended: false, limit: '1kb' });

  app.get('/account', (req, res, next) => {
    const me = signedIn(req, res);
    if (!me) return;
    listSessions(io, me.user.id).then((devices) => {
      // The page lists devices and their addresses: no cache keeps it.
      res.set('cache-control', 'no-store');
      res.type('html').send(
        accountPage({
          username: me.user.username,
          devices,
          current: me.current,
          signedOut: countOf(req.query['signed-out']),
        }),
      );
    }, next);
  });

  app.post('/account/sign-out', form, (req, res, next) => {
    const me = signedIn(req, res);
    if (!me) return;
    const handle = (req.body as { handle?: unknown } | undefined)?.handle;
    if (typeof handle !== 'string' || !HANDLE.test(handle)) {
      res.status(400).json({ error: 'Bad Request' });
      return;
    }
    if (handle === me.current) {
      // This browser: a logout, as POST /logout (disconnectOnLogout ends this session's sockets).
      req.logout((err) => {
        if (err) next(err);
        else res.redirect(303, '/login');
      });
      return;
    }
    // `only` within this user's sessions: another user's handle ends nothing.
    endSessions(io, me.user.id, { only: handle }).then(({ sessions }) => {
      res.redirect(303, `/account?signed-out=${sessions}`);
    }, next);
  });

  app.post('/account/sign-out-others', (req, res, next) => {
    const me = signedIn(req, res);
    if (!me) return;
    endSessions(io, me.user.id, { except: me.current }).then(({ sessions }) => {
      res.redirect(303, `/account?signed-out=${sessions}`);
    }, next);
  });
}

/** What `sign-out-everywhere` acks. */
export type SignOutReply = { ok: true; sessions: number; sockets: number } | { error: string };

/**
 * Adds `sign-out-everywhere` (a user ID, an ack) to the admin namespace: every session of that
 * user is destroyed in the store and its sockets end (`session:ended`, ERR_SESSION_REVOKED), on
 * every copy, with sockets or not: each of their browsers is signed out.
 */
export function signOutEverywhere(io: Server, admin: Namespace): void {
  admin.on('connection', (socket) => {
    socket.on('sign-out-everywhere', (userId: unknown, ack?: unknown) => {
      const reply = (value: SignOutReply): void => {
        if (typeof ack === 'function') (ack as (value: SignOutReply) => void)(value);
      };
      if (typeof userId !== 'string' || !findUserById(userId)) {
        reply({ error: 'No such user' });
        return;
      }
      if (userId === socket.request.user?.id) {
        reply({ error: 'Sign yourself out from your account page' });
        return;
      }
      endSessions(io, userId).then(
        ({ sessions, sockets }) => {
          reply({ ok: true, sessions, sockets });
        },
        (error: unknown) => {
          console.error('sign out everywhere:', error);
          reply({ error: 'Could not sign the user out' });
        },
      );
    });
  });
}
