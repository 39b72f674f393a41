import { createServer, type Server as HttpServer } from 'node:http';
import path from 'node:path';
import express, { type Express, type RequestHandler } from 'express';
import session from 'express-session';
import createMemoryStore from 'memorystore';
import { Passport } from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { Server, type Namespace, type ServerOptions, type Socket } from 'socket.io';
import {
  disconnectOnLogout,
  disconnectUser,
  requireAuth,
  sessionNamespace,
} from 'socket.io-session-auth';
import { authenticate, demoAccounts, findUserById } from './users.js';

/** Options for {@link createApp}. */
export interface CreateAppOptions {
  /** Signs the session cookie. Keep it secret, and the same across restarts and servers. */
  sessionSecret: string;
  /**
   * Where sessions live. Pass a shared store (connect-redis, …) in production.
   * @default a `memorystore` MemoryStore, in this process, pruned every 15 minutes
   */
  store?: session.Store;
  /**
   * How long a session lasts, in milliseconds.
   * @default 86_400_000 (one day)
   */
  sessionMaxAgeMs?: number;
  /**
   * Sets the cookie's `Secure` flag: turn it on when the app is served over HTTPS.
   * @default false
   */
  secureCookie?: boolean;
  /**
   * A Socket.IO adapter that spans processes (`createAdapter(pub, sub)` from
   * `@socket.io/redis-adapter`), so several copies of the app behave as one.
   * @default Socket.IO's in-memory adapter (one process)
   */
  adapter?: ServerOptions['adapter'];
}

/** What {@link createApp} builds. Nothing listens until you call `httpServer.listen()`. */
export interface ExampleApp {
  app: Express;
  httpServer: HttpServer;
  io: Server;
  /** The session middleware: what the namespaces read sessions with (and a test kit too). */
  session: RequestHandler;
  /** The app's own Passport authenticator, with its strategy and its serializeUser. */
  passport: InstanceType<typeof Passport>;
  /**
   * Disconnects every socket, closes the HTTP server and its connections, waits for the who's
   * online lists under way, and stops the own store.
   */
  close(): Promise<void>;
}

/** A user as every node can see them: `socket.data.user`, which `fetchSockets()` returns. */
export interface OnlineUser {
  id: string;
  username: string;
  role: Express.User['role'];
}

/** An entry of the who's-online lists: one per user, however many tabs they have open. */
export interface Presence extends OnlineUser {
  /** How many sockets (tabs) the user has in the namespace. */
  connections: number;
}

/** What `said` carries. `from` always comes from the session, never from the client. */
export interface ChatMessage {
  from: string;
  text: string;
  at: number;
}

const MemoryStore = createMemoryStore(session);
const PUBLIC_DIR = path.join(__dirname, 'public');
const TENANT_PREFIX = '/tenant-';
const MAX_TEXT_LENGTH = 500;

/**
 * Builds the demo: Express 5 with express-session and passport-local, and Socket.IO with three
 * kinds of namespaces guarded by socket.io-session-auth: `/chat` for every logged-in user,
 * `/admin` for admins, and `/tenant-<name>` for the members of each tenant.
 */
export function createApp(options: CreateAppOptions): ExampleApp {
  const { sessionSecret, sessionMaxAgeMs = 86_400_000, secureCookie = false } = options;
  if (typeof sessionSecret !== 'string' || sessionSecret === '') {
    throw new TypeError('createApp: options.sessionSecret must be a non-empty string');
  }
  const ownStore = options.store ? undefined : new MemoryStore({ checkPeriod: 15 * 60_000 });
  const store = options.store ?? ownStore;

  const app = express();
  const httpServer = createServer(app);
  const io = new Server(httpServer, {
    // A tenant's namespace goes once its last member leaves. (Children nobody got into, such as a
    // stranger's guesses, go at once either way: socket.io-session-auth removes them.)
    cleanupEmptyChildNamespaces: true,
    ...(options.adapter && { adapter: options.adapter }),
  });

  // --- HTTP: sessions, Passport, login and logout ------------------------------------------

  const sessionMiddleware = session({
    secret: sessionSecret,
    store,
    resave: false,
    // No session (and no store write) for strangers: only a login creates one.
    saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: 'lax', secure: secureCookie, maxAge: sessionMaxAgeMs },
  });

  const passport = new Passport();
  passport.use(
    new LocalStrategy((username, password, done) => {
      authenticate(username, password).then(
        (user) => {
          done(null, user ?? false);
        },
        (error: unknown) => {
          done(error);
        },
      );
    }),
  );
  passport.serializeUser((user, done) => {
    done(null, user.id);
  });
  passport.deserializeUser((id: string, done) => {
    done(null, findUserById(id) ?? false);
  });

  // Static files need no session: serve them before the session is read.
  app.use(express.static(PUBLIC_DIR, { index: false }));
  // Once, after passport.session(): every logout (and login, and session destroy) in the app
  // from now on ends the old session's sockets, in every namespace and every tab.
  app.use(sessionMiddleware, passport.session() as RequestHandler, disconnectOnLogout(io));

  app.get('/login', (req, res) => {
    res.type('html').send(loginPage(req.query.error !== undefined));
  });
  app.post(
    '/login',
    express.urlencoded({ extended: false }),
    passport.authenticate('local', {
      successRedirect: '/',
      failureRedirect: '/login?error=1',
    }) as RequestHandler,
  );
  app.post('/logout', (req, res, next) => {
    req.logout((err) => {
      if (err) {
        next(err);
        return;
      }
      res.redirect(303, '/login');
    });
  });
  app.get('/api/me', (req, res) => {
    if (!req.user) {
      res.status(401).json({ error: 'Unauthorized' });
      return;
    }
    res.json(req.user);
  });
  app.get('/', (req, res) => {
    if (!req.user) {
      res.redirect(303, '/login');
      return;
    }
    res.sendFile(path.join(PUBLIC_DIR, 'index.html'));
  });

  // --- Socket.IO: one session-aware, guarded namespace per audience ------------------------

  const guard = (
    nsp: Namespace,
    authorize?: (user: Express.User, socket: Socket) => boolean,
  ): Namespace =>
    requireAuth(
      sessionNamespace(nsp, sessionMiddleware, { passport, app, userData: onlineUser }),
      authorize && { authorize },
    );

  const chat = guard(io.of('/chat'));
  const admin = guard(io.of('/admin'), (user) => user.role === 'admin');
  const tenants = guard(io.of(/^\/tenant-[\w-]+$/), (user, socket) =>
    user.tenants.includes(socket.nsp.name.slice(TENANT_PREFIX.length)),
  );

  // Who is online, from fetchSockets(), which asks every node. close() waits for the lists under
  // way, and none starts once it has been called: a node shutting down asks nobody.
  let closing = false;
  const lookups = new Set<Promise<void>>();
  const withOnline = (nsp: Namespace, send: (online: Presence[]) => void): void => {
    if (closing) return;
    const lookup = whoIsOnline(nsp).then(send, (error: unknown) => {
      console.error('who is online:', error);
    });
    lookups.add(lookup);
    void lookup.finally(() => lookups.delete(lookup));
  };

  // Everyone with a socket in /chat (every tab of the app opens one).
  const publishPresence = (): void => {
    withOnline(chat, (online) => {
      chat.emit('online', online);
      admin.emit('users', online);
    });
  };

  chat.on('connection', (socket) => {
    publishPresence();
    socket.on('say', (message: unknown, ack?: unknown) => {
      say(socket, chat, message, ack);
    });
    socket.on('disconnect', publishPresence);
  });

  admin.on('connection', (socket) => {
    withOnline(chat, (online) => socket.emit('users', online));
    socket.on('kick', (userId: unknown, ack?: unknown) => {
      if (typeof userId !== 'string' || !findUserById(userId)) {
        reply(ack, { error: 'No such user' });
        return;
      }
      if (userId === socket.request.user?.id) {
        reply(ack, { error: 'You cannot disconnect yourself' });
        return;
      }
      // Every socket of that user, in every namespace, in every tab: each first receives
      // 'session:ended' with ERR_SESSION_REVOKED.
      disconnectUser(io, userId).then(
        () => {
          reply(ack, { ok: true });
        },
        (error: unknown) => {
          console.error('kick:', error);
          reply(ack, { error: 'Could not disconnect the user' });
        },
      );
    });
  });

  // Each /tenant-<name> is its own namespace: broadcasts never leave it.
  tenants.on('connection', (socket) => {
    const room = socket.nsp;
    const publish = (): void => {
      withOnline(room, (online) => room.emit('online', online));
    };
    publish();
    socket.on('say', (message: unknown, ack?: unknown) => {
      say(socket, room, message, ack);
    });
    socket.on('disconnect', publish);
  });

  return {
    app,
    httpServer,
    io,
    session: sessionMiddleware,
    passport,
    async close() {
      closing = true;
      const closed = io.close(); // disconnects every socket, then closes httpServer
      httpServer.closeAllConnections(); // idle keep-alive connections would hold it open
      await closed;
      await Promise.all(lookups);
      ownStore?.stopInterval();
    },
  };
}

/** What goes into `socket.data.user`: small, serialisable, no secrets. */
function onlineUser(user: Express.User): OnlineUser {
  return { id: user.id, username: user.username, role: user.role };
}

function isOnlineUser(value: unknown): value is OnlineUser {
  const user = value as Partial<OnlineUser> | undefined;
  return typeof user?.id === 'string' && typeof user.username === 'string';
}

/** One entry per user with a socket in `nsp`, from `fetchSockets()` (which works across nodes). */
async function whoIsOnline(nsp: Namespace): Promise<Presence[]> {
  const byId = new Map<string, Presence>();
  for (const socket of await nsp.fetchSockets()) {
    const { user } = socket.data as { user?: unknown };
    if (!isOnlineUser(user)) continue;
    const seen = byId.get(user.id);
    if (seen) seen.connections++;
    else byId.set(user.id, { ...user, connections: 1 });
  }
  return [...byId.values()].sort((a, b) => a.username.localeCompare(b.username));
}

/** Broadcasts a chat message. The sender's name is the session's user, whatever the client sent. */
function say(socket: Socket, nsp: Namespace, message: unknown, ack: unknown): void {
  const { text } = (message ?? {}) as { text?: unknown };
  const user = socket.request.user;
  if (!user || typeof text !== 'string' || text.trim() === '') {
    reply(ack, { error: 'A message is { text: string }' });
    return;
  }
  const said: ChatMessage = {
    from: user.username,
    text: text.trim().slice(0, MAX_TEXT_LENGTH),
    at: Date.now(),
  };
  nsp.emit('said', said);
  reply(ack, { ok: true });
}

function reply(ack: unknown, value: { ok: true } | { error: string }): void {
  if (typeof ack === 'function') (ack as (value: unknown) => void)(value);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The login form, with the demo accounts and, after a failed attempt, an error. */
function loginPage(failed: boolean): string {
  const accounts = demoAccounts
    .map(
      (a) =>
        `<tr><td><code>${escapeHtml(a.username)}</code></td>` +
        `<td><code>${escapeHtml(a.password)}</code></td>` +
        `<td>${escapeHtml(a.role)}</td><td>${escapeHtml(a.tenants.join(', '))}</td></tr>`,
    )
    .join('\n');
  const error = failed
    ? '<p id="login-error" class="error" role="alert">Wrong username or password.</p>'
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · socket.io-session-auth demo</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/style.css">
</head>
<body class="login">
<main class="card">
<h1>Sign in</h1>
${error}
<form method="post" action="/login">
<label>Username <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>
<h2>Demo accounts</h2>
<table id="demo-accounts">
<thead><tr><th>username</th><th>password</th><th>role</th><th>tenants</th></tr></thead>
<tbody>
${accounts}
</tbody>
</table>
</main>
</body>
</html>
`;
}
