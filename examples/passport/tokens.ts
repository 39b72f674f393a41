// Bearer tokens for clients that are not browsers (a mobile app, a script, another service): a
// short-lived JWT from POST /api/token, accepted by /chat beside the cookie session.
import express, { type Express, type RequestHandler } from 'express';
import jwt from 'jsonwebtoken';
import type { Passport } from 'passport';
import { ExtractJwt, Strategy as JwtStrategy } from 'passport-jwt';
import { findUserById } from './users.js';

/** How long a token lasts: clients ask for a fresh one before then (see client.ts). */
export const TOKEN_LIFETIME_S = 15 * 60;

/** What POST /api/token answers. */
export interface TokenReply {
  token: string;
  /** When the token expires, in ms since the epoch. */
  expires: number;
}

/**
 * Adds the `jwt` strategy to `passport` and POST /api/token to `app`: a token for a username and
 * password (JSON or a form), or a fresh one for a client that shows a valid token (renewal).
 */
export function useTokens(
  app: Express,
  passport: InstanceType<typeof Passport>,
  secret: string,
  lifetimeS = TOKEN_LIFETIME_S,
): void {
  passport.use(
    new JwtStrategy(
      {
        jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
        secretOrKey: secret,
        algorithms: ['HS256'],
      },
      (payload: { sub?: unknown }, done: (err: unknown, user?: Express.User | false) => void) => {
        done(null, (typeof payload.sub === 'string' && findUserById(payload.sub)) || false);
      },
    ),
  );

  app.post(
    '/api/token',
    express.json({ limit: '2kb' }),
    express.urlencoded({ extended: false, limit: '2kb' }),
    // A valid token first (renewal), else the form's username and password. No session: a token
    // client has no cookie, and this route must not give it one.
    passport.authenticate(['jwt', 'local'], {
      session: false,
      failWithError: true,
    }) as RequestHandler,
    ((req, res) => {
      const user = req.user as Express.User;
      const token = jwt.sign({ sub: user.id }, secret, {
        algorithm: 'HS256',
        expiresIn: lifetimeS,
      });
      const { exp } = jwt.decode(token) as { exp: number };
      const reply: TokenReply = { token, expires: exp * 1000 };
      res.json(reply);
    }) as RequestHandler,
    // Passport's refusals (failWithError): 401 for wrong credentials or a bad token, 400 for a
    // form without them. Anything else is a real error.
    ((err, _req, res, next) => {
      const { name, status } = err as { name?: unknown; status?: unknown };
      if (name !== 'AuthenticationError' || (status !== 400 && status !== 401)) {
        next(err);
        return;
      }
      res.status(status).json({ error: status === 400 ? 'Bad Request' : 'Unauthorized' });
    }) as express.ErrorRequestHandler,
  );
}
