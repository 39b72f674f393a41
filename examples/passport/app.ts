import { createHmac } from 'node:crypto';
import { STATUS_CODES, createServer, type Server as HttpServer } from 'node:http';
import path from 'node:path';
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import session from 'express-session';
import createMemoryStore from 'memorystore';
import { Passport } from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { Server, type Namespace, type ServerOptions, type Socket } from 'socket.io';
import type {
  Presence as PresenceOf,
  PresenceOptions,
  StoreEventFeed,
} from 'socket.io-session-auth';
import {
  disconnectOnLogout,
  refreshCookieRoute,
  disconnectUser,
  passportNamespace,
  presence,
  refreshUser,
  requireAuth,
  sessionNamespace,
  sessionRegistry,
} from 'socket.io-session-auth';
import { signOutEverywhere, useAccount } from './account.js';
import { documentsOf, mayOpen } from './documents.js';
import { limitUsers, type LimitOptions } from './limits.js';
import { loginPage } from './login-page.js';
import { createMetrics } from './metrics.js';
import { useTokens } from './tokens.js';
import { authenticate, findUserById, isAccess, setAccess } from './users.js';

/** Options for {@link createApp}, the limits' among them (`limits.ts`). */
export interface CreateAppOptions extends LimitOptions {
  /** Signs the session cookie. Keep it secret, and the same across restarts and servers. */
  sessionSecret: string;
  /**
   * Where sessions live. Pass a shared store (connect-redis, …) in production.
   * @default a `memorystore` MemoryStore, in this process, pruned every 15 minutes
   */
  store?: session.Store;
  /**
   * The store's change feed (`redisStoreEvents` with connect-redis): a session deleted or expired
   * in the store, by anyone, ends its sockets on every copy at once.
   * @default none: such a session is found by revalidation (every 30 s with several copies)
   */
  storeEvents?: StoreEventFeed;
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
  /**
   * The app's node-redis client, with several copies of the app: who is online is then shared by
   * them (presence's `redis` option), so every copy lists every copy's users, and so are the
   * limits' budgets and counts (rateLimit's `redis` option), and each user's sessions, for the
   * account page (sessionRegistry's `redis` option).
   * @default none: each copy lists its own users and sessions and keeps its own limits
   */
  redis?: PresenceOptions['redis'];
  /**
   * Signs the bearer tokens of POST /api/token (for clients that are not browsers).
   * @default derived from `sessionSecret`
   */
  tokenSecret?: string;
  /**
   * How long a bearer token lasts, in seconds.
   * @default 900 (15 minutes)
   */
  tokenLifetimeS?: number;
  /**
   * How long a user whose last tab is gone stays in the online lists: a reload does not flicker.
   * @default 3000
   */
  presenceGraceMs?: number;
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
  /** Who is online in `/chat` (every tab of the app opens it); with `redis`, on every copy. */
  online: PresenceOf<OnlineUser>;
  /** Disconnects every socket, closes the HTTP server and its connections, and the own store. */
  close(): Promise<void>;
}

/** A user as every node can see them: `socket.data.user`, which `fetchSockets()` returns. */
export interface OnlineUser {
  id: string;
  username: string;
  role: Express.User['role'];
  tenants: string[];
}

/** An entry of the admin panel's list: one per user, however many tabs they have open. */
export interface Presence extends OnlineUser {
  /** How many sockets (tabs) the user has in /chat; 0 while in the grace after their last. */
  connections: number;
}

/** What `said` carries. `from` always comes from the session, never from the client. */
export interface ChatMessage {
  from: string;
  text: string;
  at: number;
}

/** What `documents` answers on a tenant namespace: each document, and whether you may open it. */
export interface DocEntry {
  id: string;
  title: string;
  audience: 'members' | 'admins';
  allowed: boolean;
}

/** What `note` broadcasts to a document's room. */
export interface DocNote extends ChatMessage {
  doc: string;
}

const MemoryStore = createMemoryStore(session);
const PUBLIC_DIR = path.join(__dirname, 'public');
const TENANT_PREFIX = '/tenant-';
const MAX_TEXT_LENGTH = 500;
// The pages' online lists get at most one change every quarter second, however busy the room.
const FEED = { intervalMs: 250 };

/**
 * Builds the demo: Express 5 with express-session and passport-local, and Socket.IO with three
 * kinds of namespaces guarded by socket.io-session-auth: `/chat` for every logged-in user,
 * `/admin` for admins, and `/tenant-<name>` for the members of each tenant.
 */
export function createApp(options: CreateAppOptions): ExampleApp {
  const { sessionSecret, sessionMaxAgeMs = 86_400_000, secureCookie = false } = options;
  const graceMs = options.presenceGraceMs ?? 3000;
  if (typeof sessionSecret !== 'string' || sessionSecret === '') {
    throw new TypeError('createApp: options.sessionSecret must be a non-empty string');
  }
  const ownStore = options.store ? undefined : new MemoryStore({ checkPeriod: 15 * 60_000 });
  const store = options.store ?? ownStore;

  const tokenSecret =
    options.tokenSecret ?? createHmac('sha256', sessionSecret).update('demo tokens').digest('hex');
  // Prometheus metrics, fed by the package's diagnostics channels. Every tenant shares one label.
  const metrics = createMetrics((name) => (name.startsWith(TENANT_PREFIX) ? '/tenant-*' : name));

  const app = express();
  const httpServer = createServer(app);
  const io = new Server(httpServer, {
    // A tenant's namespace goes once its last member leaves. (Children nobody got into, such as a
    // stranger's guesses, go at once either way: socket.io-session-auth removes them.)
    cleanupEmptyChildNamespaces: true,
    ...(options.adapter && { adapter: options.adapter }),
  });
  // Each user's sessions, for account.ts. With `redis`, shared by the copies (as presence, limits).
  const shared = options.redis === undefined ? {} : { redis: options.redis };
  sessionRegistry(io, shared);

  // --- HTTP: sessions, Passport, login and logout ------------------------------------------

  const sessionMiddleware = session({
    secret: sessionSecret,
    store,
    resave: false,
    // No session (and no store write) for strangers: only a login creates one.
    saveUninitialized: false,
    // A session lasts maxAge after the user's last activity: every response re-sends the cookie,
    // and a user active on the sockets alone has the page refresh it (POST /session/refresh).
    rolling: true,
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
  // Tokens for clients that are not browsers (`npm run example:client`): they chat on /chat.
  useTokens(app, passport, tokenSecret, options.tokenLifetimeS);
  useAccount(app, io); // GET /account: the user's devices, each with its sign-out button
  // In production, serve this on an internal port (or behind the proxy's access rules).
  app.get('/metrics', (_req, res, next) => {
    metrics.registry.metrics().then((text) => {
      res.type(metrics.registry.contentType).send(text);
    }, next);
  });
  // The page posts here when a socket is told its cookie nears its end (session:cookie-expiring).
  app.post('/session/refresh', refreshCookieRoute(io));
  app.get('/api/me', (req, res) => {
    if (!req.user) {
      res.status(401).json({ error: 'Unauthorized' });
      return;
    }
    res.json(req.user);
  });
  // The page's own question, "am I still signed in?": a stranger is an answer here, not an error
  // (a 401 would show in red in the browser's console of every signed-out tab).
  app.get('/api/session', (req, res) => {
    res.json({ user: req.user ?? null });
  });
  app.get('/', (req, res) => {
    if (!req.user) {
      res.redirect(303, '/login');
      return;
    }
    res.sendFile(path.join(PUBLIC_DIR, 'index.html'));
  });
  // Last: errors get their status and a short message, never a stack trace (Express's own
  // handler shows one unless NODE_ENV=production). Bad bodies are 4xx; the rest is logged.
  app.use(((err, _req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      res.status(status).json({ error: STATUS_CODES[status] ?? 'Bad Request' });
      return;
    }
    console.error(err);
    res.status(500).json({ error: 'Internal Server Error' });
  }) as ErrorRequestHandler);

  // --- Socket.IO: one session-aware, guarded namespace per audience ------------------------

  // An active socket keeps its session alive, touching it at most once a minute.
  const layer = {
    app,
    userData: onlineUser,
    touchIntervalMs: Math.min(60_000, Math.ceil(sessionMaxAgeMs / 10)),
    ...(options.storeEvents && { storeEvents: options.storeEvents }),
  };
  // /chat takes browsers (the cookie session) and token clients (a JWT in `auth.token`).
  const chat = requireAuth(
    passportNamespace(io.of('/chat'), passport, ['session', 'jwt'], {
      session: sessionMiddleware,
      ...layer,
    }),
  );
  const admin = requireAuth(
    sessionNamespace(io.of('/admin'), sessionMiddleware, { passport, ...layer }),
    {
      authorize: (user) => user.role === 'admin',
    },
  );
  signOutEverywhere(io, admin); // its `sign-out-everywhere` event
  const tenantOf = (socket: Socket): string => socket.nsp.name.slice(TENANT_PREFIX.length);
  const tenants = requireAuth(
    sessionNamespace(io.of(/^\/tenant-[\w-]+$/), sessionMiddleware, { passport, ...layer }),
    {
      authorize: (user, socket) => user.tenants.includes(tenantOf(socket)),
      // Each document is a room; joins are checked here, and again when refreshUser runs.
      rooms: {
        'doc:*': (user, room, socket) => mayOpen(user, tenantOf(socket), room.slice('doc:'.length)),
      },
    },
  );

  // Limits: `say` per user, tabs per user, connects per address (limits.ts). With `redis`, one
  // budget for all copies.
  limitUsers(io, chat, options);

  // Who is online: presence() counts each user once, however many tabs, and keeps it true through
  // logouts, kicks and expiries; its feed sends each page the list, then the changes. With
  // `redis`, the copies share it: each lists every copy's users.
  const online = presence<OnlineUser>(chat, { graceMs, feed: FEED, ...shared });
  // The admin panel's list, with each user's tabs, to this copy's admins. A read of Redis with
  // several copies: close() waits for those under way, and none starts once it has been called.
  let closing = false;
  const reads = new Set<Promise<void>>();
  const sendUsers = (to: { emit: Namespace['emit'] } = admin.local): void => {
    if (closing) return;
    const read = online.listShared().then(
      (entries) => {
        const users = entries.map(({ user, connections }) => ({ ...user, connections }));
        to.emit(
          'users',
          users.sort((a, b) => a.username.localeCompare(b.username)),
        );
      },
      (error: unknown) => {
        console.error('who is online:', error);
      },
    );
    reads.add(read);
    void read.finally(() => reads.delete(read));
  };
  // A join or a leave on any copy, as presence tells it.
  online.on('join', () => {
    sendUsers();
  });
  online.on('leave', () => {
    sendUsers();
  });

  chat.on('connection', (socket) => {
    sendUsers();
    socket.on('say', (message: unknown, ack?: unknown) => {
      say(socket, chat, message, ack);
    });
    socket.on('disconnect', () => {
      sendUsers();
    });
  });

  admin.on('connection', (socket) => {
    sendUsers(socket);
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
    socket.on('set-access', (userId: unknown, access: unknown, ack?: unknown) => {
      if (typeof userId !== 'string' || !findUserById(userId) || !isAccess(access)) {
        reply(ack, { error: 'set-access takes a user ID and { role, tenants }' });
        return;
      }
      if (userId === socket.request.user?.id) {
        reply(ack, { error: 'You cannot change your own access' });
        return;
      }
      // The database first, then every live socket of that user, on every node: sockets whose
      // namespace now refuses them end with ERR_FORBIDDEN, documents they may no longer read
      // are left (session:rooms-left), the rest see the new user.
      setAccess(userId, access);
      refreshUser(io, userId).then(
        () => {
          tellAccessChanged(userId);
          sendUsers();
          reply(ack, { ok: true });
        },
        (error: unknown) => {
          console.error('set-access:', error);
          reply(ack, { error: 'Could not apply the change to live sockets' });
        },
      );
    });
  });

  // The user's pages learn their new role and tenants (their /chat sockets, on every node).
  const tellAccessChanged = (userId: string): void => {
    const user = findUserById(userId);
    if (!user) return;
    chat.fetchSockets().then(
      (sockets) => {
        for (const socket of sockets) {
          if ((socket.data as { user?: OnlineUser }).user?.id === userId) socket.emit('me', user);
        }
      },
      (error: unknown) => {
        console.error('access changed:', error);
      },
    );
  };

  // Each /tenant-<name> is its own namespace: broadcasts never leave it, and it has its own
  // online list. A tenant's namespace goes once empty (cleanupEmptyChildNamespaces), and a new one
  // is made at the next connect: its presence goes once its own last user has left.
  const tenantPresence = new Map<Namespace, PresenceOf<OnlineUser>>();
  const presenceOf = (room: Namespace): void => {
    if (tenantPresence.has(room)) return;
    const inRoom = presence<OnlineUser>(room, { graceMs, feed: FEED, ...shared });
    tenantPresence.set(room, inRoom);
    inRoom.on('leave', () => {
      if (inRoom.count() > 0 || room.sockets.size > 0) return;
      inRoom.close();
      tenantPresence.delete(room);
    });
  };
  tenants.on('connection', (socket) => {
    const room = socket.nsp;
    // Made at the room's first connect, it counts this socket and sends it the list.
    presenceOf(room);
    socket.on('say', (message: unknown, ack?: unknown) => {
      say(socket, room, message, ack);
    });

    // Documents: a room each (`doc:<id>`), behind the namespace's room policy.
    socket.on('documents', (ack?: unknown) => {
      const user = socket.request.user;
      if (!user || typeof ack !== 'function') return;
      const tenant = tenantOf(socket);
      const entries: DocEntry[] = documentsOf(tenant).map((doc) => ({
        ...doc,
        allowed: mayOpen(user, tenant, doc.id),
      }));
      (ack as (entries: DocEntry[]) => void)(entries);
    });
    socket.on('open-doc', (id: unknown, ack?: unknown) => {
      if (typeof id !== 'string') {
        reply(ack, { error: 'open-doc takes a document ID' });
        return;
      }
      // The policy decides: a document this user may not read is never joined.
      Promise.resolve(socket.join(`doc:${id}`)).then(
        () => {
          reply(ack, { ok: true });
        },
        (error: unknown) => {
          const code = (error as { data?: { code?: unknown } }).data?.code;
          reply(ack, { error: typeof code === 'string' ? code : 'Could not open the document' });
        },
      );
    });
    socket.on('note', (message: unknown, ack?: unknown) => {
      const { doc, text } = (message ?? {}) as { doc?: unknown; text?: unknown };
      const user = socket.request.user;
      if (!user || typeof doc !== 'string' || typeof text !== 'string' || text.trim() === '') {
        reply(ack, { error: 'A note is { doc: string, text: string }' });
        return;
      }
      // Only to a document the socket is in (and so was allowed to join).
      if (!socket.rooms.has(`doc:${doc}`)) {
        reply(ack, { error: 'Open the document first' });
        return;
      }
      const note: DocNote = {
        doc,
        from: user.username,
        text: text.trim().slice(0, MAX_TEXT_LENGTH),
        at: Date.now(),
      };
      room.to(`doc:${doc}`).emit('doc-note', note);
      reply(ack, { ok: true });
    });
  });

  return {
    app,
    httpServer,
    io,
    session: sessionMiddleware,
    passport,
    online,
    async close() {
      closing = true;
      const closed = io.close(); // disconnects every socket, then closes httpServer
      httpServer.closeAllConnections(); // idle keep-alive connections would hold it open
      await closed;
      await Promise.all(reads);
      // The users still in their grace: no leave to wait for.
      online.close();
      for (const inRoom of tenantPresence.values()) inRoom.close();
      metrics.close();
      ownStore?.stopInterval();
    },
  };
}

/** What goes into `socket.data.user`: small, serialisable, no secrets. */
function onlineUser(user: Express.User): OnlineUser {
  return { id: user.id, username: user.username, role: user.role, tenants: [...user.tenants] };
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
