// The kit's own small HTTP server, on 127.0.0.1, where it runs the app's real session middleware
// and Passport on real requests: to log a user in (`req.login(user)`: Passport's serializeUser,
// express-session's ID, cookie options, secret and store, the Set-Cookie header it writes), and
// to read an agent's session as the app would (its ID, its store, the session object). Nothing is
// forged: the kit needs neither the secret nor the cookie's name.
import { once } from 'node:events';
import {
  createServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { asError } from '../bounded.js';
import type { ExpressMiddleware, PassportAuthenticator } from '../../core/types.js';

type Next = (error?: unknown) => void;
type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => unknown;

/** What the kit uses of an express-session (or cookie-session) session object. */
export interface SessionLike {
  cookie?: { maxAge?: number | null; expires?: Date | null | boolean };
  passport?: { user?: unknown };
  save?(cb: (err?: unknown) => void): unknown;
  destroy?(cb: (err?: unknown) => void): unknown;
  regenerate?(cb: (err?: unknown) => void): unknown;
  isNew?: boolean;
}

/** An agent's session, read through the app's own session middleware. */
export interface SessionSeen {
  /** The session ID the cookie carries (express-session), if it carries a valid one. */
  sessionID: string | undefined;
  /** The session, when the store has it (or the cookie holds one: cookie-session). */
  session: SessionLike | undefined;
  /** Whether the session lives in a store (express-session) rather than in the cookie. */
  stored: boolean;
  /** The session middleware's store (`req.sessionStore`), when there is one. */
  store?: unknown;
}

const JOB_HEADER = 'x-socket-io-session-auth-test-kit';

type Job = (req: IncomingMessage, res: ServerResponse) => Promise<unknown>;

function run(middleware: Middleware, req: IncomingMessage, res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const ended = (): void => {
      reject(
        new Error(
          `the session middleware ended the response (${res.statusCode}) instead of calling next()`,
        ),
      );
    };
    res.once('finish', ended);
    try {
      void middleware(req, res, (error?: unknown) => {
        res.off('finish', ended);
        if (error) reject(asError(error));
        else resolve();
      });
    } catch (error) {
      res.off('finish', ended);
      reject(asError(error));
    }
  });
}

/**
 * What the app's deserializeUser gave for the key serializeUser stored: a user, false (Passport
 * gives false for false and null), or an error (Passport's own when it gave undefined).
 */
export type Deserialized =
  | { key: unknown; user: unknown }
  | { key: unknown; gave: false }
  | { key: unknown; gave: 'error'; error: Error };

function settle(call: ((cb: (err?: unknown) => void) => unknown) | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!call) {
      resolve();
      return;
    }
    call((err) => {
      if (err) reject(asError(err));
      else resolve();
    });
  });
}

/** `req.login(user)` through the app's Passport, on the session the session middleware made. */
async function passportLogin(
  passport: PassportAuthenticator,
  req: IncomingMessage,
  res: ServerResponse,
  session: SessionLike,
  user: unknown,
): Promise<void> {
  // cookie-session has no regenerate() or save(); Passport 0.6+ calls both. The usual shim.
  const methods = session as Record<string, unknown>;
  methods.regenerate ??= (cb: () => void) => {
    cb();
  };
  methods.save ??= (cb: () => void) => {
    cb();
  };
  await run(passport.initialize() as Middleware, req, res);
  const login = (req as IncomingMessage & { login?: unknown }).login;
  if (typeof login !== 'function') {
    throw new TypeError('loginAs: passport.initialize() did not add req.login()');
  }
  const done = login as (user: unknown, done: (err?: unknown) => void) => void;
  await settle((cb) => {
    done.call(req, user, cb);
  });
}

/**
 * Gives the key that serializeUser stored to Passport's deserializeUser, as `passport.session()`
 * does at each handshake: the app's own deserializers, run by Passport.
 */
function deserialize(passport: PassportAuthenticator, req: IncomingMessage): Promise<Deserialized> {
  const key = (req.session as SessionLike | undefined)?.passport?.user;
  const { deserializeUser } = passport as { deserializeUser?: unknown };
  if (typeof deserializeUser !== 'function') {
    throw new TypeError('loginAs: options.passport has no deserializeUser (is it Passport?)');
  }
  const call = deserializeUser as (
    key: unknown,
    req: IncomingMessage,
    done: (err: unknown, user?: unknown) => void,
  ) => void;
  return new Promise((resolve) => {
    try {
      call.call(passport, key, req, (err, user) => {
        if (err) resolve({ key, gave: 'error', error: asError(err) });
        else if (user) resolve({ key, user });
        else resolve({ key, gave: false });
      });
    } catch (error) {
      resolve({ key, gave: 'error', error: asError(error) });
    }
  });
}

export class Desk {
  private server: Promise<{ http: HttpServer; url: string }> | undefined;
  private readonly jobs = new Map<string, Job>();
  private nextJob = 0;

  private readonly session: Middleware;

  constructor(
    session: ExpressMiddleware,
    private readonly passport: PassportAuthenticator | undefined,
  ) {
    // Called as Express calls it: (req, res, next).
    this.session = session as unknown as Middleware;
  }

  /**
   * Logs `user` in as the app's login route would: a new session from the session middleware,
   * `req.login(user)` through Passport (which calls the app's serializeUser), `data` added; then
   * the key serializeUser stored is given to the app's deserializeUser, as each handshake will.
   * Returns the Set-Cookie headers the session middleware wrote, and what deserializeUser gave.
   */
  async login(
    user: unknown,
    data: Record<string, unknown> | undefined,
  ): Promise<{ setCookie: string[]; found: Deserialized }> {
    const passport = this.passport;
    if (!passport) throw new TypeError('loginAs: needs options.passport');
    let found: Deserialized | undefined;
    const setCookie = await this.run('', async (req, res) => {
      await run(this.session, req, res);
      const session = req.session as SessionLike | undefined;
      if (!session) {
        throw new Error(
          'loginAs: the session middleware made no session for a request to / (is its cookie ' +
            "path other than '/', or its store disconnected?)",
        );
      }
      await passportLogin(passport, req, res, session, user);
      if (data) {
        const current = req.session as unknown as SessionLike & Record<string, unknown>;
        Object.assign(current, data);
        await settle(current.save?.bind(current));
      }
      found = await deserialize(passport, req);
    });
    if (!found) throw new Error('the login did not run');
    return { setCookie, found };
  }

  /** Reads the session this cookie stands for, as the app's session middleware does. */
  async read(cookie: string): Promise<SessionSeen> {
    let seen: SessionSeen | undefined;
    await this.run(cookie, async (req, res) => {
      // express-session first sets req.sessionID to the ID the cookie carries, then replaces it
      // with a new one when the store has no such session.
      let fromCookie: unknown;
      let current: unknown;
      let assigned = false;
      Object.defineProperty(req, 'sessionID', {
        configurable: true,
        enumerable: true,
        get: () => current,
        set: (value: unknown) => {
          if (!assigned) fromCookie = value;
          assigned = true;
          current = value;
        },
      });
      await run(this.session, req, res);
      const { sessionStore } = req as IncomingMessage & { sessionStore?: unknown };
      const session = req.session as SessionLike | undefined;
      if (sessionStore !== undefined) {
        const sessionID = typeof fromCookie === 'string' ? fromCookie : undefined;
        const found = sessionID !== undefined && current === sessionID;
        seen = {
          sessionID,
          session: found ? session : undefined,
          stored: true,
          store: sessionStore,
        };
        // No cookie, no save, no touch on this response: the kit only looked.
        delete (req as { session?: unknown }).session;
      } else {
        seen = {
          sessionID: undefined,
          session: session && session.isNew !== true ? session : undefined,
          stored: false,
        };
      }
    });
    if (!seen) throw new Error('the session was not read');
    return seen;
  }

  async close(): Promise<void> {
    const started = this.server;
    this.server = undefined;
    if (!started) return;
    const { http } = await started;
    http.closeAllConnections();
    await new Promise<void>((resolve) => {
      http.close(() => {
        resolve();
      });
    });
  }

  /** Runs `job` on a real request that carries `cookie`; returns the response's Set-Cookie. */
  private async run(cookie: string, job: Job): Promise<string[]> {
    const { url } = await this.start();
    const id = String(++this.nextJob);
    let failed: unknown;
    this.jobs.set(id, async (req, res) => {
      try {
        await job(req, res);
      } catch (error) {
        failed = error;
      }
    });
    try {
      const res = await fetch(url, {
        headers: { [JOB_HEADER]: id, ...(cookie !== '' && { cookie }) },
      });
      await res.arrayBuffer();
      if (failed !== undefined) throw asError(failed);
      return res.headers.getSetCookie();
    } finally {
      this.jobs.delete(id);
    }
  }

  private start(): Promise<{ http: HttpServer; url: string }> {
    this.server ??= (async () => {
      const http = createServer((req, res) => {
        const id = req.headers[JOB_HEADER];
        const job = typeof id === 'string' ? this.jobs.get(id) : undefined;
        if (!job) {
          res.statusCode = 404;
          res.end();
          return;
        }
        void job(req, res).then(() => {
          if (!res.writableEnded) res.end();
        });
      });
      http.listen(0, '127.0.0.1');
      await once(http, 'listening');
      const { port } = http.address() as AddressInfo;
      return { http, url: `http://127.0.0.1:${port}/` };
    })();
    return this.server;
  }
}
