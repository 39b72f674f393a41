// One node of the cluster spec, run as its own process:
//   node --import tsx spec/support/cluster-node.ts   (forked with an IPC channel)
// Express 5 + express-session on a connect-redis store + Passport (passport-local) + Socket.IO on
// @socket.io/redis-adapter, set up as an app of this package's users would set it up; with
// ENGINE=postgres, on a connect-pg-simple store and @socket.io/postgres-adapter instead.
//
// Configuration, from the environment:
//   PORT              the port to listen on (required: a restarted node comes back on the same one)
//   ENGINE            `redis` (default) or `postgres`: the session store and the adapter
//   REDIS_URL         redis://host:port (required with ENGINE=redis)
//   DATABASE_URL      postgres://user@host:port/db (required with ENGINE=postgres; the tables of
//                     spec/support/postgres.ts exist)
//   PG_ERROR_GUARD    `off`: no 'error' listener on each pg client (the README's guard), to show
//                     that a Postgres restart then crashes the process
//   NODE_NAME         a name for logs and `whoami` answers (default `node-<pid>`)
//   MAX_AGE           the session cookie's maxAge in ms (default 10 minutes)
//   REVALIDATE_MS     sessionNamespace's revalidateIntervalMs: a number, `off` (false), or unset
//                     (the package's default)
//   ADAPTER_KEY       the adapter's channel prefix (Redis `key`, Postgres `channelPrefix`): nodes
//                     with one key form one cluster
//   REQUESTS_TIMEOUT  the Redis adapter's requestsTimeout in ms (its default is 5000)
//   PRESENCE          `on`: presence() on /chat, shared over the adapter's Redis (ENGINE=redis)
//   PRESENCE_GRACE_MS, PRESENCE_HEARTBEAT_MS, PRESENCE_EXPIRY_MS: its graceMs, heartbeatMs,
//                     expiryMs (unset: the package's defaults)
//   PRESENCE_FEED_MS  the client feed on, with this intervalMs (unset: no feed)
//   LIMITS            JSON of rateLimit's options: rateLimit(io, { ...LIMITS, redis }) with the
//                     adapter's Redis client (ENGINE=redis)
//   SESSION_REGISTRY  `redis`: sessionRegistry(io, { redis }) with the adapter's Redis client
//   STORE_EVENTS      `on`: storeEvents on every namespace: redisStoreEvents({ client }) with the
//                     adapter's Redis client, or (ENGINE=postgres) pgStoreEvents({ pool,
//                     createTrigger: true }) on the app's pool
//   LOGIN_DELAY_MS    POST /login answers this long after Passport's login (an app's slow work
//                     after req.login: the rotation's end is sent after the response)
//   REVALIDATE_WITH_EVENTS_MS  sessionNamespace's revalidateWithEventsMs: a number, `off`
//                     (false), or unset (the package's default)
//
// It tells its parent `{ ready: { port, name } }` once it listens, then answers `{ id, cmd, args }`
// messages with `{ id, ok, result }` or `{ id, ok: false, error }`. It exits on SIGTERM and as soon
// as its parent is gone.
import diagnosticsChannel from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import { createAdapter as createPostgresAdapter } from '@socket.io/postgres-adapter';
import { createAdapter } from '@socket.io/redis-adapter';
import connectPgSimple from 'connect-pg-simple';
import { RedisStore } from 'connect-redis';
import express from 'express';
import session from 'express-session';
import pg from 'pg';
import { createClient } from 'redis';
import type { ServerOptions } from 'socket.io';
import {
  DIAGNOSTICS_CHANNELS,
  disconnectOnLogout,
  disconnectSession,
  disconnectUser,
  endSessions,
  listSessions,
  pgStoreEvents,
  presence,
  rateLimit,
  redisStoreEvents,
  refreshUser,
  requireAuth,
  sessionNamespace,
  sessionRegistry,
  type EndSessionsResult,
  type PresenceRedisClient,
  type SessionInfo,
  type RedisStoreEventsClient,
  type SessionEndedMessage,
  type StoreEventsMessage,
} from '../../lib/index.js';
import { users, usersPassport } from './server.js';
import { Server } from './stack.js';
import { reporting, type Who } from './whoami.js';

/** What a node answers to `whoami` (the shared handler, on `/`, `/chat` and `/admin`). */
export interface NodeWho extends Who {
  /** NODE_NAME: which node the socket is on. */
  node: string;
}

/** What `fetchSockets` returns for one socket (of any node of the cluster). */
export interface FetchedSocket {
  id: string;
  data: unknown;
  rooms: string[];
}

/** What `stats` returns. */
export interface NodeStats {
  /** Connected sockets of this node, by namespace. */
  sockets: Record<string, number>;
  /** Every store.get of this node's session store since it started. */
  storeGets: number;
}

/** One store.get of this node's session store: the session ID and when it was asked for. */
export interface StoreRead {
  sid: string;
  at: number;
}

/** A join or leave this node's presence emitted, in order. */
export interface PresenceSeen {
  type: 'join' | 'leave';
  userKey: string;
  user: unknown;
}

/** What `presence` answers: this node's view and the shared one. */
export interface PresenceView {
  count: number;
  countShared: number;
  /** Per asked user key: [isOnline, isOnlineShared]. */
  online: Record<string, [boolean, boolean]>;
  /** listShared's user keys and connections, sorted by key. */
  listShared: { userKey: string; connections: number }[];
}

/** The commands a node answers over IPC: their arguments and results. */
export interface NodeCommands {
  /** With PRESENCE=on: the joins and leaves it emitted, from the `from`-th on. */
  presenceEvents: { args: { from: number }; result: PresenceSeen[] };
  presence: { args: { keys: string[] }; result: PresenceView };
  /** This node's store reads from the `from`-th on (its own clock, in order). */
  storeReads: { args: { from: number }; result: StoreRead[] };
  /** `io.of(nsp).fetchSockets()`: every node's sockets of that namespace. */
  fetchSockets: { args: { nsp: string }; result: FetchedSocket[] };
  disconnectUser: { args: { key: string }; result: null };
  disconnectSession: { args: { sid: string }; result: null };
  stats: { args: null; result: NodeStats };
  /** Gives a user another role in this node's user list (each node is its own "database"). */
  setRole: { args: { username: string; role: 'admin' | 'member' }; result: null };
  refreshUser: { args: { key: string }; result: null };
  /**
   * Stops hearing other nodes' revocation and refresh broadcasts (the package's internal events);
   * with `only: 'refresh'`, the refreshes alone.
   */
  deafen: { args: null | { only: 'refresh' }; result: null };
  /** Hears them again. */
  hear: { args: null; result: null };
  listSessions: { args: { key: string }; result: SessionInfo[] };
  endSessions: { args: { key: string; except?: string }; result: EndSessionsResult };
  /** What the `store-events` diagnostics channel said, from the `from`-th message on. */
  storeEvents: { args: { from: number }; result: StoreEventsMessage[] };
  /** What the `session-ended` channel said (code and how), from the `from`-th message on. */
  sessionsEnded: {
    args: { from: number };
    result: Pick<SessionEndedMessage, 'namespace' | 'code' | 'how'>[];
  };
}

export interface NodeReady {
  port: number;
  name: string;
}

export type NodeCall = {
  [K in keyof NodeCommands]: { id: number; cmd: K; args: NodeCommands[K]['args'] };
}[keyof NodeCommands];

export type NodeReply =
  { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

// The event through which one node tells the others to end a session's sockets. It is internal to
// the package (lib/live/revocation.ts): `deafen` uses it to make this node miss broadcasts.
const END_EVENT = 'socket.io-session-auth:end';
const REFRESH_EVENT = 'socket.io-session-auth:refresh';

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`cluster-node: ${name} is required`);
  return value;
}

function revalidateOption(name = 'REVALIDATE_MS'): number | false | undefined {
  const value = process.env[name];
  if (value === undefined || value === '') return undefined;
  if (value === 'off') return false;
  return Number(value);
}

/** A connect-redis store that counts its reads. */
class CountingRedisStore extends RedisStore {
  gets = 0;
  readonly reads: StoreRead[] = [];
  override get(sid: string, cb?: Parameters<RedisStore['get']>[1]): Promise<unknown> {
    this.gets++;
    this.reads.push({ sid, at: Date.now() });
    return super.get(sid, cb);
  }
}

/** A connect-pg-simple store that counts its reads. */
const PgStore = connectPgSimple(session);
class CountingPgStore extends PgStore {
  gets = 0;
  readonly reads: StoreRead[] = [];
  override get(sid: string, cb: Parameters<InstanceType<typeof PgStore>['get']>[1]): void {
    this.gets++;
    this.reads.push({ sid, at: Date.now() });
    super.get(sid, cb);
  }
}

interface Engine {
  store: CountingRedisStore | CountingPgStore;
  /** The app's own client, as presence's `redis` option takes it. */
  redis?: PresenceRedisClient;
  /** The same client, as redisStoreEvents takes it. */
  feedClient?: RedisStoreEventsClient;
  adapter: ServerOptions['adapter'];
  close(): Promise<unknown>;
  storeEvents?: ReturnType<typeof pgStoreEvents>;
}

async function redisEngine(key: string, requestsTimeout: number, log: LogError): Promise<Engine> {
  const url = required('REDIS_URL');
  const pub = createClient({ url });
  const sub = pub.duplicate();
  pub.on('error', log('redis pub'));
  sub.on('error', log('redis sub'));
  await Promise.all([pub.connect(), sub.connect()]);
  return {
    store: new CountingRedisStore({ client: pub, prefix: 'sess:' }),
    redis: pub,
    feedClient: pub,
    adapter: createAdapter(pub, sub, { key, requestsTimeout }) as ServerOptions['adapter'],
    close: () => Promise.allSettled([pub.quit(), sub.quit()]),
  };
}

// The Postgres adapter has no requestsTimeout: its acknowledged requests wait 5 s.
function postgresEngine(key: string, log: LogError): Engine {
  const pool = new pg.Pool({ connectionString: required('DATABASE_URL') });
  // Idle clients that fail (the server went away) are reported here.
  pool.on('error', log('pg pool'));
  // A checked-out client has no listener of the pool's: the adapter keeps one checked out for
  // LISTEN and listens for 'notification' and 'end' only, so without this a Postgres restart is an
  // unhandled 'error' event that ends the process (the README's guard).
  if (process.env.PG_ERROR_GUARD !== 'off') {
    pool.on('connect', (client) => {
      client.on('error', log('pg client'));
    });
  }
  return {
    store: new CountingPgStore({ pool, pruneSessionInterval: false, errorLog: log('pg store') }),
    adapter: createPostgresAdapter(pool, {
      channelPrefix: key,
      errorHandler: log('pg adapter'),
    }) as ServerOptions['adapter'],
    close: () => pool.end(),
    ...(process.env.STORE_EVENTS === 'on' && {
      storeEvents: pgStoreEvents({ pool, createTrigger: true }),
    }),
  };
}

type LogError = (what: string) => (error: unknown) => void;

function envMs(name: string): number | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : Number(value);
}

/** PRESENCE=on: presence on /chat, shared over the adapter's Redis client, its events kept. */
async function presenceOn(
  io: InstanceType<typeof Server>,
  engine: Engine,
): Promise<{ api: ReturnType<typeof presence>; seen: PresenceSeen[] } | undefined> {
  if (process.env.PRESENCE !== 'on') return undefined;
  if (!engine.redis) throw new Error('cluster-node: PRESENCE=on needs ENGINE=redis');
  const graceMs = envMs('PRESENCE_GRACE_MS');
  const heartbeatMs = envMs('PRESENCE_HEARTBEAT_MS');
  const expiryMs = envMs('PRESENCE_EXPIRY_MS');
  const feedMs = envMs('PRESENCE_FEED_MS');
  const api = presence(io.of('/chat'), {
    redis: engine.redis,
    ...(feedMs !== undefined && { feed: { intervalMs: feedMs } }),
    ...(graceMs !== undefined && { graceMs }),
    ...(heartbeatMs !== undefined && { heartbeatMs }),
    ...(expiryMs !== undefined && { expiryMs }),
  });
  const seen: PresenceSeen[] = [];
  api.on('join', ({ userKey, user }) => seen.push({ type: 'join', userKey, user }));
  api.on('leave', ({ userKey, user }) => seen.push({ type: 'leave', userKey, user }));
  // Ready only once it hears the shared events: the spec's first join must not be missed.
  await api.ready();
  return { api, seen };
}

async function main(): Promise<void> {
  const send = process.send?.bind(process);
  if (!send) throw new Error('cluster-node: run me with an IPC channel (child_process.fork)');
  // Never outlive the spec: a crashed or killed parent takes its nodes with it.
  process.on('disconnect', () => process.exit(0));

  const port = Number(required('PORT'));
  const engineName = process.env.ENGINE ?? 'redis';
  const name = process.env.NODE_NAME ?? `node-${process.pid}`;
  const maxAge = Number(process.env.MAX_AGE ?? 10 * 60 * 1000);
  const revalidateIntervalMs = revalidateOption();
  const requestsTimeout = Number(process.env.REQUESTS_TIMEOUT ?? 5000);
  const key = process.env.ADAPTER_KEY ?? 'socket.io';

  // One line per error: a store outage makes many.
  const logError: LogError = (what) => (error) => {
    const { code, message } = (error ?? {}) as { code?: string; message?: string };
    console.error(`[${name}] ${what}: ${code ?? ''} ${message ?? 'error'}`);
  };
  if (engineName !== 'redis' && engineName !== 'postgres') {
    throw new Error(`cluster-node: ENGINE must be redis or postgres, not ${engineName}`);
  }
  const engine =
    engineName === 'redis'
      ? await redisEngine(key, requestsTimeout, logError)
      : postgresEngine(key, logError);
  const { store } = engine;
  const sessionMiddleware = session({
    secret: 'cluster-spec-secret',
    resave: false,
    saveUninitialized: false,
    store,
    cookie: { maxAge },
  });
  const passport = usersPassport();

  const app = express();
  const http = createServer(app);
  const io = new Server(http, {
    adapter: engine.adapter,
  });
  app.use(sessionMiddleware);
  app.use(passport.session());
  app.use(disconnectOnLogout(io));
  app.use(express.urlencoded({ extended: false }));
  const loginDelayMs = Number(process.env.LOGIN_DELAY_MS ?? 0);
  app.post('/login', passport.authenticate('local') as express.RequestHandler, (_req, res) => {
    setTimeout(() => res.json({ ok: true, node: name }), loginDelayMs);
  });
  app.post('/logout', (req, res, next) => {
    req.logout((err) => {
      if (err) {
        next(err);
        return;
      }
      res.json({ ok: true, node: name });
    });
  });

  const storeEvents: StoreEventsMessage[] = [];
  diagnosticsChannel.subscribe(DIAGNOSTICS_CHANNELS.storeEvents, (message) => {
    storeEvents.push(message as StoreEventsMessage);
  });
  const ended: Pick<SessionEndedMessage, 'namespace' | 'code' | 'how'>[] = [];
  diagnosticsChannel.subscribe(DIAGNOSTICS_CHANNELS.sessionEnded, (message) => {
    const { namespace, code, how } = message as SessionEndedMessage;
    ended.push({ namespace, code, how });
  });
  const revalidateWithEventsMs = revalidateOption('REVALIDATE_WITH_EVENTS_MS');

  const options = {
    passport,
    app,
    ...(revalidateIntervalMs !== undefined && { revalidateIntervalMs }),
    ...(revalidateWithEventsMs !== undefined && { revalidateWithEventsMs }),
    // One feed object for the three namespaces: one subscription.
    ...(process.env.STORE_EVENTS === 'on' &&
      engine.feedClient && {
        storeEvents: redisStoreEvents({ client: engine.feedClient, prefix: 'sess:' }),
      }),
    ...(engine.storeEvents && { storeEvents: engine.storeEvents }),
  };
  for (const nsp of [
    sessionNamespace(io, sessionMiddleware, options),
    requireAuth(sessionNamespace(io.of('/chat'), sessionMiddleware, options)),
    requireAuth(sessionNamespace(io.of('/admin'), sessionMiddleware, options), {
      authorize: (user) => user.role === 'admin',
    }),
  ]) {
    reporting(nsp, { more: () => ({ node: name }) });
  }
  const online = await presenceOn(io, engine);
  if (process.env.SESSION_REGISTRY === 'redis') sessionRegistry(io, { redis: engine.redis });
  if (process.env.LIMITS) {
    rateLimit(io, { ...(JSON.parse(process.env.LIMITS) as object), redis: engine.redis });
  }

  let deafened: [string, (...args: unknown[]) => void][] = [];
  const optional = (): NonNullable<typeof online> => {
    if (!online) throw new Error('PRESENCE=on is not set');
    return online;
  };
  const handlers: {
    [K in keyof NodeCommands]: (
      args: NodeCommands[K]['args'],
    ) => Promise<NodeCommands[K]['result']> | NodeCommands[K]['result'];
  } = {
    async fetchSockets({ nsp }) {
      const sockets = await io.of(nsp).fetchSockets();
      return sockets.map((socket) => ({
        id: socket.id,
        data: socket.data as unknown,
        rooms: [...socket.rooms],
      }));
    },
    async disconnectUser({ key: userKey }) {
      await disconnectUser(io, userKey);
      return null;
    },
    async disconnectSession({ sid }) {
      await disconnectSession(io, sid);
      return null;
    },
    presenceEvents({ from }) {
      return optional().seen.slice(from);
    },
    async presence({ keys }) {
      const { api } = optional();
      const entries: [string, [boolean, boolean]][] = await Promise.all(
        keys.map(async (k) => [k, [api.isOnline(k), await api.isOnlineShared(k)]] as const),
      );
      const listed = await api.listShared();
      return {
        count: api.count(),
        countShared: await api.countShared(),
        online: Object.fromEntries(entries),
        listShared: listed
          .map(({ userKey, connections }) => ({ userKey, connections }))
          .sort((a, b) => a.userKey.localeCompare(b.userKey)),
      };
    },
    storeReads({ from }) {
      return store.reads.slice(from);
    },
    stats() {
      const sockets: Record<string, number> = {};
      for (const [nspName, nsp] of io._nsps) {
        // /admin only when used: the specs written before it compare the other two exactly.
        if (nspName !== '/admin' || nsp.sockets.size > 0) sockets[nspName] = nsp.sockets.size;
      }
      return { sockets, storeGets: store.gets };
    },
    setRole({ username, role }) {
      const user = users.find((u) => u.username === username);
      if (!user) throw new Error(`no user ${username}`);
      (user as { role: 'admin' | 'member' }).role = role;
      return null;
    },
    async refreshUser({ key: userKey }) {
      await refreshUser(io, userKey);
      return null;
    },
    deafen(args) {
      const events = args?.only === 'refresh' ? [REFRESH_EVENT] : [END_EVENT, REFRESH_EVENT];
      for (const event of events) {
        for (const listener of io.sockets.listeners(event) as ((...a: unknown[]) => void)[]) {
          deafened.push([event, listener]);
        }
        io.sockets.removeAllListeners(event);
      }
      return null;
    },
    hear() {
      for (const [event, listener] of deafened) io.sockets.on(event, listener);
      deafened = [];
      return null;
    },
    listSessions: ({ key: userKey }) => listSessions(io, userKey),
    endSessions: ({ key: userKey, except }) =>
      endSessions(io, userKey, except === undefined ? {} : { except }),
    storeEvents({ from }) {
      return storeEvents.slice(from);
    },
    sessionsEnded({ from }) {
      return ended.slice(from);
    },
  };

  process.on('message', (message: NodeCall) => {
    const reply = (answer: NodeReply): void => {
      if (process.connected) send(answer);
    };
    const handler = handlers[message.cmd] as ((args: unknown) => unknown) | undefined;
    if (!handler) {
      reply({ id: message.id, ok: false, error: `unknown command ${message.cmd as string}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(message.args))
      .then(
        (result) => {
          reply({ id: message.id, ok: true, result });
        },
        (error: unknown) => {
          reply({
            id: message.id,
            ok: false,
            error: error instanceof Error ? (error.stack ?? error.message) : String(error),
          });
        },
      );
  });

  process.once('SIGTERM', () => {
    // A clean shutdown: clients are told the server is going, store connections are closed.
    void io.close().finally(() => {
      http.closeAllConnections();
      void engine.close().finally(() => process.exit(0));
    });
    setTimeout(() => process.exit(0), 2000).unref();
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, '127.0.0.1', resolve);
  });
  const ready: NodeReady = { port, name };
  send({ ready });
}

main().catch((error: unknown) => {
  console.error('cluster-node failed to start:', error);
  process.exit(1);
});
