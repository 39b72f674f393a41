// A node of the `store-events` figure (bench/store-events.ts): Express + express-session + Passport
// + Socket.IO, on connect-redis and @socket.io/redis-adapter, or on connect-pg-simple and
// @socket.io/postgres-adapter; the package on `/` with a store feed (`storeEvents`) or polling, and
// optionally the sessions registry. The orchestrator reads its CPU and store reads over IPC.
//
// Run by bench/store-events.ts as: node --import tsx --no-memory-reducer bench/store-events-node.ts
//   <node JSON> <package entry>
import diagnosticsChannel from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import session, { type Store } from 'express-session';
import { Passport } from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { Server, type ServerOptions } from 'socket.io';
import { serve } from './ipc.js';
import { COOKIE_MAX_AGE_MS, USER, USER_NAME_PATTERN, userKeyOf } from './variants.js';

/** What one node runs: its store and adapter, and how it learns of sessions ended in the store. */
export interface FeedNode {
  id: string;
  engine: 'redis' | 'postgres';
  /** `storeEvents` on (redisStoreEvents or pgStoreEvents), or polling (revalidateIntervalMs). */
  feed: boolean;
  /** sessionRegistry(io, { redis }) (Redis only). */
  registry: boolean;
  /** connect-redis's prefix (Redis), and the adapter's channel key: nodes with one key are a cluster. */
  prefix: string;
  adapterKey: string;
  /** The Redis database of the store (the adapter's pub/sub spans databases). */
  database: number;
  /** revalidateIntervalMs, when not the default. */
  revalidateMs?: number | false;
  /** Engine.IO's pingInterval, when not its default (25 s). */
  pingIntervalMs?: number;
  /** Postgres's URL (engine 'postgres'). */
  databaseUrl?: string;
}

/** Commands a node answers; `args` and `result` survive JSON over IPC. */
export interface FeedNodeCommands {
  /** User + system CPU time of the process so far, µs. */
  cpu: { args: null; result: number };
  /** Session store reads since the last reset. */
  storeReads: { args: { reset: boolean }; result: number };
  /** Waits until the engine has this many connections. */
  waitConnections: { args: { count: number; timeoutMs: number }; result: number };
  /** Waits until the feed's last state on the diagnostics channel is `up`; the states seen. */
  feedUp: { args: { timeoutMs: number }; result: string[] };
  /** endSessions(io, userKey) on this node: when it was called and resolved (epoch ms), and what it said. */
  endSessions: {
    args: { userKey: string };
    result: { calledAt: number; resolvedAt: number; sessions: number; sockets: number };
  };
}

export interface FeedNodeInfo {
  port: number;
}

type Package = typeof import('socket.io-session-auth');
type RedisClient = import('redis').RedisClientType;

/** Epoch ms with sub-ms precision: comparable across the bench's processes on one machine. */
const now = (): number => performance.timeOrigin + performance.now();

interface Engine {
  store: Store;
  adapter: ServerOptions['adapter'];
  /** The app's Redis client (Redis), or its pg pool (Postgres). */
  redis?: RedisClient;
  pool?: import('pg').Pool;
}

// Loaded per engine, so that a Redis node carries no pg and the other way round.
async function engineOf(node: FeedNode): Promise<Engine> {
  const fail = (what: string) => (error: unknown) => {
    console.error(`[${node.id}] ${what}:`, error);
  };
  if (node.engine === 'redis') {
    const url = process.env.REDIS_URL;
    if (!url) throw new Error(`node ${node.id} needs REDIS_URL`);
    const { createClient } = await import('redis');
    const client = createClient({ url, database: node.database }) as RedisClient;
    const pub = createClient({ url }) as RedisClient;
    const sub = pub.duplicate();
    for (const [name, c] of [
      ['redis', client],
      ['pub', pub],
      ['sub', sub],
    ] as const) {
      c.on('error', fail(name));
    }
    await Promise.all([client.connect(), pub.connect(), sub.connect()]);
    const { RedisStore } = await import('connect-redis');
    const { createAdapter } = await import('@socket.io/redis-adapter');
    return {
      store: new RedisStore({ client, prefix: node.prefix }),
      adapter: createAdapter(pub, sub, { key: node.adapterKey }) as ServerOptions['adapter'],
      redis: client,
    };
  }
  const { default: pg } = await import('pg');
  const { default: connectPgSimple } = await import('connect-pg-simple');
  const { createAdapter } = await import('@socket.io/postgres-adapter');
  const pool = new pg.Pool({ connectionString: node.databaseUrl });
  pool.on('error', fail('pg pool'));
  // The README's guard: a checked-out client (the adapter's LISTEN) has no error listener.
  pool.on('connect', (client) => {
    client.on('error', fail('pg client'));
  });
  const PgStore = connectPgSimple(session);
  return {
    store: new PgStore({ pool, pruneSessionInterval: false, errorLog: fail('pg store') }),
    adapter: createAdapter(pool, { channelPrefix: node.adapterKey }) as ServerOptions['adapter'],
    pool,
  };
}

/** Alice, or `user<N>` (id `u<N>`): the users bench/clients.ts logs in as. */
function userNamed(username: string): Express.User | false {
  if (username === USER.username) return { id: USER.id, username } as Express.User;
  const n = USER_NAME_PATTERN.exec(username)?.[1];
  return n === undefined ? false : ({ id: userKeyOf(Number(n)), username } as Express.User);
}

function passportOf(): InstanceType<typeof Passport> {
  const passport = new Passport();
  passport.use(
    new LocalStrategy((username, password, done) => {
      done(null, password === USER.password ? userNamed(username) : false);
    }),
  );
  passport.serializeUser((user, done) => {
    done(null, user.id);
  });
  passport.deserializeUser((id: string, done) => {
    done(null, id === USER.id ? userNamed(USER.username) : userNamed(`user${id.slice(1)}`));
  });
  return passport;
}

/** The feed of this node's store, from the package. */
function feedOf(pkg: Package, node: FeedNode, engine: Engine) {
  if (engine.redis) {
    return pkg.redisStoreEvents({
      client: engine.redis,
      prefix: node.prefix,
      database: node.database,
    });
  }
  if (!engine.pool) throw new Error(`node ${node.id}: no pool`);
  return pkg.pgStoreEvents({ pool: engine.pool, createTrigger: true });
}

async function start(node: FeedNode, entry: string): Promise<void> {
  const pkg = createRequire(__filename)(entry) as Package;
  const engine = await engineOf(node);
  let reads = 0;
  const get = engine.store.get.bind(engine.store);
  engine.store.get = (sid, cb) => {
    reads++;
    get(sid, cb);
  };
  const sessionMiddleware = session({
    secret: 'bench-secret',
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: COOKIE_MAX_AGE_MS },
    store: engine.store,
  });
  const passport = passportOf();
  const app = express();
  app.use(sessionMiddleware, passport.session() as express.RequestHandler);
  const http = createServer(app);
  const io = new Server(http, {
    adapter: engine.adapter,
    ...(node.pingIntervalMs !== undefined && { pingInterval: node.pingIntervalMs }),
  });
  app.post(
    '/login',
    express.urlencoded({ extended: false }),
    passport.authenticate('local') as express.RequestHandler,
    (_req, res) => {
      res.json({ ok: true });
    },
  );
  // The feed's states (never a session ID): the orchestrator waits for `up` before timing.
  const states: string[] = [];
  diagnosticsChannel.subscribe('socket.io-session-auth:store-events', (message) => {
    states.push((message as { state: string }).state);
  });
  if (node.registry) {
    if (!engine.redis) throw new Error(`node ${node.id}: the registry is in Redis`);
    pkg.sessionRegistry(io, { redis: engine.redis, prefix: `${node.adapterKey}:registry:` });
  }
  pkg.requireAuth(
    pkg.sessionNamespace(io, sessionMiddleware, {
      passport,
      app,
      ...(node.feed && { storeEvents: feedOf(pkg, node, engine) }),
      ...(node.revalidateMs !== undefined && { revalidateIntervalMs: node.revalidateMs }),
    }),
  );
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;

  const until = async (what: string, timeoutMs: number, done: () => boolean): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`${node.id}: ${what} within ${timeoutMs} ms`);
      await sleep(5);
    }
    await tick();
  };
  const info: FeedNodeInfo = { port };
  serve<FeedNodeCommands>(
    {
      cpu() {
        const { user, system } = process.cpuUsage();
        return user + system;
      },
      storeReads({ reset }) {
        const seen = reads;
        if (reset) reads = 0;
        return seen;
      },
      async waitConnections({ count, timeoutMs }) {
        const what = () => `${io.engine.clientsCount} engine connections, expected ${count}`;
        await until(what(), timeoutMs, () => io.engine.clientsCount === count);
        return io.engine.clientsCount;
      },
      async feedUp({ timeoutMs }) {
        await until(`no feed up (${states.join(',')})`, timeoutMs, () => states.at(-1) === 'up');
        return states;
      },
      async endSessions({ userKey }) {
        const calledAt = now();
        const { sessions, sockets } = await pkg.endSessions(io, userKey);
        return { calledAt, resolvedAt: now(), sessions, sockets };
      },
    },
    info,
  );
}

if (require.main === module) {
  const [nodeJson = '', entry = 'socket.io-session-auth'] = process.argv.slice(2);
  start(JSON.parse(nodeJson) as FeedNode, entry).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
