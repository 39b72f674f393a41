import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext as NodeTestContext } from 'node:test';
import express5 from 'express';
import express4 from 'express4';
import session from 'express-session';
import { Strategy as LocalStrategy } from 'passport-local';
import type { Namespace, ServerOptions } from 'socket.io';
import {
  io as ioClient,
  type Socket as ClientSocket,
  type ManagerOptions,
  type SocketOptions,
} from 'socket.io-client';
import { type CountedStore } from './counting-store.js';
import { Server, Passport, createSessionStore, expressVersion, sessionDefaults } from './stack.js';
import { pendingHandshakes } from './pending.js';

export { CountingStore, type CountedStore, type StoreCounts } from './counting-store.js';

export interface TestUser {
  id: string;
  username: string;
  password: string;
  role: 'admin' | 'member';
  tenants: string[];
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface User {
      id: string;
      username: string;
      role: 'admin' | 'member';
      tenants: string[];
    }
  }
}

export const users: readonly TestUser[] = [
  { id: '1', username: 'alice', password: 'alice-pw', role: 'admin', tenants: ['acme'] },
  { id: '2', username: 'bob', password: 'bob-pw', role: 'member', tenants: ['globex'] },
];

export type ExpressFlavour = 'express4' | 'express5';

/** The Express of createTestServer when a test names none: the run's EXPRESS. */
export const defaultExpressFlavour: ExpressFlavour =
  expressVersion === '4' ? 'express4' : 'express5';
export type ExpressAppOf = ReturnType<typeof express5>;

export interface TestContext {
  io: Server;
  app: ExpressAppOf;
  session: ReturnType<typeof session>;
  passport: InstanceType<typeof Passport>;
  /** The run's session store (STORE), counting; a store given in sessionOptions replaces it. */
  store: CountedStore;
  /** How many times deserializeUser ran. */
  deserializeCount: () => number;
}

export interface TestServer extends TestContext {
  url: string;
  port: number;
  http: HttpServer;
  /** Logs in over HTTP (POST /login) and returns the Cookie header to reuse. */
  login(username: string, password?: string): Promise<string>;
  /** Logs out over HTTP (POST /logout) with that cookie. */
  logout(cookie: string): Promise<void>;
  /** A real socket.io-client socket, closed by cleanup(). Reconnection is off unless asked for. */
  connect(
    nsp: string,
    options?: Partial<ManagerOptions & SocketOptions> & { cookie?: string },
  ): ClientSocket;
  cleanup(): Promise<void>;
}

export interface CreateTestServerOptions {
  /** The Express of the app; by default the run's (EXPRESS, see stack.ts). */
  express?: ExpressFlavour;
  serverOptions?: Partial<ServerOptions>;
  sessionOptions?: Partial<session.SessionOptions>;
  /** Routes added before the login routes, e.g. to set app settings. */
  configureApp?: (app: ExpressAppOf) => void;
  /** Middleware installed after passport.session() and before the login and logout routes. */
  afterSession?: (io: Server) => express5.RequestHandler[];
}

/**
 * Starts a real HTTP server on a free port with Express, express-session (a counting store),
 * Passport with passport-local, and Socket.IO. `setup` wires the namespaces under test. What the
 * test does not choose in `options` comes from the run's stack (stack.ts): the Express major, the
 * express-session options and the session store.
 */
export async function createTestServer(
  setup: (ctx: TestContext) => void,
  options: CreateTestServerOptions = {},
): Promise<TestServer> {
  const flavour = options.express ?? defaultExpressFlavour;
  const app = flavour === 'express4' ? express4() : express5();
  options.configureApp?.(app);
  const { store, close: closeStore } = await createSessionStore();
  const sessionMiddleware = session({
    secret: 'spec-secret',
    ...sessionDefaults,
    store,
    ...options.sessionOptions,
  });
  let deserialized = 0;
  const passport = usersPassport(() => {
    deserialized++;
  });

  app.use(sessionMiddleware);
  app.use(passport.session());
  const http = createServer(app);
  const io = new Server(http, options.serverOptions);
  for (const middleware of options.afterSession?.(io) ?? []) app.use(middleware);
  loginRoutes(app, passport);

  const ctx: TestContext = {
    io,
    app,
    session: sessionMiddleware,
    passport,
    store,
    deserializeCount: () => deserialized,
  };
  setup(ctx);
  const url = await listen(http);
  const port = (http.address() as AddressInfo).port;
  const clients = new Set<ClientSocket>();

  return {
    ...ctx,
    url,
    port,
    http,
    async login(username, password) {
      const user = users.find((u) => u.username === username);
      const res = await fetch(`${url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username, password: password ?? user?.password ?? '' }),
        redirect: 'manual',
      });
      if (res.status !== 200) throw new Error(`login as ${username} failed: ${res.status}`);
      return cookieOf(res);
    },
    async logout(cookie) {
      const res = await fetch(`${url}/logout`, { method: 'POST', headers: { cookie } });
      if (res.status !== 200) throw new Error(`logout failed: ${res.status}`);
      await res.arrayBuffer();
    },
    connect(nsp, { cookie, ...clientOptions } = {}) {
      const socket = ioClient(`${url}${nsp}`, {
        forceNew: true,
        reconnection: false,
        ...(cookie !== undefined && { extraHeaders: { cookie } }),
        ...clientOptions,
      });
      clients.add(socket);
      return socket;
    },
    async cleanup() {
      for (const socket of clients) socket.disconnect();
      clients.clear();
      await io.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => {
        http.close(() => {
          resolve();
        });
      });
      await closeStore();
    },
  };
}

/**
 * Makes an HTTP server listen on a free loopback port and resolves with its base URL
 * (`http://127.0.0.1:<port>`): the one server start of the specs, under createTestServer and for
 * the apps a spec builds itself.
 */
export async function listen(http: HttpServer): Promise<string> {
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
}

/** createTestServer, with the server cleaned up after the test `tc`. */
export async function start(
  tc: NodeTestContext,
  setup: (ctx: TestContext) => void,
  options?: CreateTestServerOptions,
): Promise<TestServer> {
  const t = await createTestServer(setup, options);
  tc.after(() => t.cleanup());
  return t;
}

function publicUser({ id, username, role, tenants }: TestUser): Express.User {
  return { id, username, role, tenants };
}

/**
 * A Passport (the leg's version) that logs the spec `users` in with passport-local and keeps
 * their id in the session: what every spec app, node and cookie-session app logs in with.
 * `onDeserialize` runs at each deserializeUser, for specs that count them.
 */
/**
 * `POST /login` (passport-local, form fields) and `POST /logout` (`req.logout`), each answering
 * `{ ok: true }`: the routes of every spec app that logs in over HTTP.
 */
export function loginRoutes(app: express5.Express, passport: InstanceType<typeof Passport>): void {
  app.use(express5.urlencoded({ extended: false }));
  app.post('/login', passport.authenticate('local') as express5.RequestHandler, (_req, res) => {
    res.json({ ok: true });
  });
  app.post('/logout', (req, res, next) => {
    req.logout((err) => {
      if (err) {
        next(err);
        return;
      }
      res.json({ ok: true });
    });
  });
}

export function usersPassport(onDeserialize?: () => void): InstanceType<typeof Passport> {
  const passport = new Passport();
  passport.use(
    new LocalStrategy((username, password, done) => {
      const user = users.find((u) => u.username === username && u.password === password);
      done(null, user ? publicUser(user) : false);
    }),
  );
  passport.serializeUser((user, done) => {
    done(null, user.id);
  });
  passport.deserializeUser((id: string, done) => {
    onDeserialize?.();
    const user = users.find((u) => u.id === id);
    done(null, user ? publicUser(user) : false);
  });
  return passport;
}

/** The `name=value` pairs of a response's Set-Cookie headers, as a Cookie header. */
export function cookieOf(res: Response): string {
  const cookies = res.headers.getSetCookie().map((c) => c.split(';')[0] ?? '');
  if (cookies.length === 0) throw new Error('the response set no cookie');
  return cookies.join('; ');
}

/** The decoded value of the `connect.sid` cookie in a Cookie header (it must have one). */
function sidCookieValue(cookie: string): string {
  const raw = /(?:^|;\s*)connect\.sid=([^;]+)/.exec(cookie)?.[1];
  assert.ok(raw !== undefined, `no connect.sid in ${cookie}`);
  return decodeURIComponent(raw);
}

/** The session ID inside an express-session cookie (`connect.sid=s:<id>.<signature>`). */
export function sidOf(cookie: string): string {
  const value = sidCookieValue(cookie);
  return value.slice(2, value.lastIndexOf('.'));
}

/** Like {@link sidOf}, but also asserts that the cookie is signed (`s:`). */
export function signedSidOf(cookie: string): string {
  const value = sidCookieValue(cookie);
  assert.ok(value.startsWith('s:'), `unsigned cookie ${value}`);
  return value.slice(2, value.lastIndexOf('.'));
}

/**
 * How many sockets of the namespace are still in their handshake (Socket.IO's pending sockets), on
 * every Socket.IO version the specs run on: see spec/support/pending.ts.
 */
export function pendingOf(nsp: Namespace): number {
  return pendingHandshakes(nsp);
}
