// A server child: one variant (stock Socket.IO, the official Passport recipe, or this package) on
// Express + express-session + Passport, on loopback. The orchestrator reads its CPU and heap over
// IPC, in this process, around each batch the client child runs.
//
// Run by bench/run.ts as: node --import tsx --expose-gc --no-memory-reducer bench/servers.ts
//   <variant JSON> <run id> <package entry>
//
// The package entry is its tsc build by default (what users run), or `socket.io-session-auth`
// (lib/ through tsx) with --source.
import diagnosticsChannel from 'node:diagnostics_channel';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import session, { type Store } from 'express-session';
import { Passport } from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { Server, type ServerOptions, type Socket } from 'socket.io';
import { serve } from './ipc.js';
import { limitServer } from './limits-child.js';
import { presenceCommands } from './presence-server.js';
import { ExtractJwt, Strategy as JwtStrategy } from 'passport-jwt';
import {
  COOKIE_MAX_AGE_MS,
  ECHO_EVENT,
  JWT_SECRET,
  NSP,
  USER,
  USER_NAME_PATTERN,
  userKeyOf,
  userName,
  type ServerCommands,
  type ServerInfo,
  type Variant,
} from './variants.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface User {
      id: string;
      username: string;
    }
  }
}

type Next = (err?: unknown) => void;
type EngineRequest = IncomingMessage & { _query: Record<string, string | undefined> };
type EngineMiddleware = (req: EngineRequest, res: ServerResponse, next: Next) => void;

/** The official recipe's wrapper: run `mw` on the engine's first request of a connection only. */
const onlyForHandshake =
  (mw: EngineMiddleware): EngineMiddleware =>
  (req, res, next) => {
    if (req._query.sid === undefined) mw(req, res, next);
    else next();
  };

interface RedisParts {
  store: Store;
  adapter: ServerOptions['adapter'] | undefined;
  /** A connection of the app's own, for a variant with shared presence. */
  presence: PresenceRedisClient | undefined;
}

// Loaded only for Redis variants, so that the other children carry none of it.
async function redisParts(variant: Variant, runId: string): Promise<RedisParts> {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error(`variant ${variant.id} needs REDIS_URL`);
  const { createClient } = await import('redis');
  const { RedisStore } = await import('connect-redis');
  const client = createClient({ url });
  await client.connect();
  const store = new RedisStore({ client, prefix: `bench:${runId}:sess:` });
  const presence = variant.presence?.redis ? client.duplicate() : undefined;
  await presence?.connect();
  const parts = { store, presence: presence as PresenceRedisClient | undefined };
  if (variant.adapter !== 'redis') return { ...parts, adapter: undefined };
  const { createAdapter } = await import('@socket.io/redis-adapter');
  const pub = client.duplicate();
  const sub = client.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  return {
    ...parts,
    adapter: createAdapter(pub, sub, {
      key: `bench:${runId}:socket.io`,
    }) as ServerOptions['adapter'],
  };
}

function echo(socket: Socket): void {
  socket.on(ECHO_EVENT, (value: unknown, ack: (reply: unknown) => void) => {
    ack(value);
  });
}

// Cast: spec/support declares more fields on Express.User in the same type-check.
const THE_USER = { id: USER.id, username: USER.username } as Express.User;

type Package = typeof import('socket.io-session-auth');
type PresenceRedisClient = import('socket.io-session-auth').PresenceRedisClient;

/** Alice, or one of the many users presence counts (`user<N>`, id `u<N>`). */
function userNamed(username: string): Express.User | false {
  if (username === USER.username) return THE_USER;
  const n = USER_NAME_PATTERN.exec(username)?.[1];
  return n === undefined ? false : ({ id: userKeyOf(Number(n)), username } as Express.User);
}

async function start(variant: Variant, runId: string, entry: string): Promise<void> {
  if (variant.diagnostics) {
    const channels = [
      'socket.io-session-auth:handshake',
      'socket.io-session-auth:event-refused',
      'socket.io-session-auth:session-ended',
      'socket.io-session-auth:store-error',
      'socket.io-session-auth:broadcast',
    ];
    let messages = 0;
    for (const name of channels) {
      diagnosticsChannel.subscribe(name, () => {
        messages++;
      });
    }
    process.on('exit', () => {
      if (messages < 0) console.log(messages);
    });
  }
  const pkg = createRequire(__filename)(entry) as Package;
  const { disconnectOnLogout, passportNamespace, refreshUser, requireAuth, sessionNamespace } = pkg;
  const redis = variant.store === 'redis' ? await redisParts(variant, runId) : undefined;
  const app = express();
  // Store reads, by 100 ms bucket, for the revalidation figures.
  const readBuckets = new Map<number, number>();
  let reads = 0;
  const store = redis?.store ?? new session.MemoryStore();
  const get = store.get.bind(store);
  store.get = (sid, cb) => {
    reads++;
    const bucket = Math.floor(Date.now() / 100);
    readBuckets.set(bucket, (readBuckets.get(bucket) ?? 0) + 1);
    get(sid, cb);
  };
  const sessionMiddleware = session({
    secret: 'bench-secret',
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: COOKIE_MAX_AGE_MS },
    store,
  });
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
    done(null, id === USER.id ? THE_USER : userNamed(userName(Number(id.slice(1)))));
  });
  const passportSession = passport.session() as express.RequestHandler;
  app.use(sessionMiddleware, passportSession);

  const http = createServer(app);
  const io = new Server(http, redis?.adapter ? { adapter: redis.adapter } : {});
  if (variant.auth === 'package') app.use(disconnectOnLogout(io));
  app.post(
    '/login',
    express.urlencoded({ extended: false }),
    passport.authenticate('local') as express.RequestHandler,
    (_req, res) => {
      res.json({ ok: true });
    },
  );
  app.post('/logout', (req, res, next) => {
    req.logout((err) => {
      if (err) next(err);
      else res.json({ ok: true });
    });
  });

  const namespaces = [NSP.main, ...NSP.three, NSP.events];
  switch (variant.auth) {
    case 'stock':
      break;
    case 'recipe': {
      // socket.io docs, "How to use with Passport.js".
      const use = (mw: EngineMiddleware): void => {
        io.engine.use(onlyForHandshake(mw));
      };
      use(sessionMiddleware as unknown as EngineMiddleware);
      use(passportSession as unknown as EngineMiddleware);
      use((req, res, next) => {
        if (req.user) next();
        else res.writeHead(401).end();
      });
      // The recipe's way to see a logout on a live socket: reload the session at every event.
      io.of(NSP.events).on('connection', (socket) => {
        socket.use((_event, next) => {
          socket.request.session.reload(next);
        });
      });
      break;
    }
    case 'package':
      for (const name of [NSP.main, ...NSP.three]) {
        requireAuth(
          sessionNamespace(io.of(name), sessionMiddleware, {
            passport,
            app,
            ...(variant.revalidateMs !== undefined && {
              revalidateIntervalMs: variant.revalidateMs,
            }),
          }),
        );
      }
      requireAuth(sessionNamespace(io.of(NSP.events), sessionMiddleware, { passport, app }), {
        authorizeEvent: (user, event) => user.id === USER.id && event === ECHO_EVENT,
      });
      // An admin is a session not marked `demoted`; POST /demote marks it, then refreshUser.
      requireAuth(sessionNamespace(io.of(NSP.admin), sessionMiddleware, { passport, app }), {
        authorize: (_user, socket) =>
          (socket.request.session as { demoted?: boolean }).demoted !== true,
      });
      // Tokens: passport-jwt, the handshake's auth.token.
      passport.use(
        new JwtStrategy(
          { jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(), secretOrKey: JWT_SECRET },
          (payload: { sub?: unknown }, done: (err: unknown, user?: unknown) => void) => {
            done(null, payload.sub === USER.id ? THE_USER : false);
          },
        ),
      );
      requireAuth(passportNamespace(io.of(NSP.token), passport, ['jwt'], { app }));
      app.post('/demote', (req, res, next) => {
        (req.session as { demoted?: boolean }).demoted = true;
        req.session.save((err) => {
          if (err) {
            next(err);
            return;
          }
          refreshUser(io, USER.id).then(() => res.json({ ok: true }), next);
        });
      });
      break;
  }
  for (const name of namespaces) io.of(name).on('connection', echo);
  if (variant.limits) await limitServer(io, variant, pkg.rateLimit);
  const presence = await presenceCommands(pkg, entry, io, variant.presence, redis?.presence, runId);

  // Engine handshake attempts: requests and upgrades that do not name a session yet.
  let attempts = 0;
  const countAttempt = (req: IncomingMessage): void => {
    const url = req.url ?? '';
    if (url.startsWith('/socket.io/') && !url.includes('sid=')) attempts++;
  };
  http.on('request', countAttempt);
  http.on('upgrade', countAttempt);

  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;

  const waitConnections = async (count: number, timeoutMs: number): Promise<number> => {
    const until = Date.now() + timeoutMs;
    while (io.engine.clientsCount !== count) {
      if (Date.now() > until) {
        throw new Error(`${io.engine.clientsCount} engine connections, expected ${count}`);
      }
      await sleep(5);
    }
    await tick();
    return io.engine.clientsCount;
  };

  const gc = globalThis.gc;
  const info: ServerInfo = { port, pid: process.pid };
  serve<ServerCommands>(
    {
      async cpu({ settle }) {
        if (settle) await waitConnections(0, 30_000);
        const { user, system } = process.cpuUsage();
        return {
          cpuMicros: user + system,
          wallMicros: Number(process.hrtime.bigint() / 1000n),
        };
      },
      async heap() {
        if (!gc) throw new Error('server children run with --expose-gc');
        for (let i = 0; i < 4; i++) {
          gc();
          await tick();
        }
        const { heapUsed, external } = process.memoryUsage();
        return { heapUsed, external, sockets: io.engine.clientsCount };
      },
      waitConnections: ({ count, timeoutMs }) => waitConnections(count, timeoutMs),
      attempts({ reset }) {
        const seen = attempts;
        if (reset) attempts = 0;
        return seen;
      },
      ...presence,
      storeReads({ reset }) {
        const result = { reads, peakPer100ms: Math.max(0, ...readBuckets.values()) };
        if (reset) {
          reads = 0;
          readBuckets.clear();
        }
        return result;
      },
    },
    info,
  );
}

if (require.main === module) {
  const [variantJson = '', runId = String(process.pid), entry = 'socket.io-session-auth'] =
    process.argv.slice(2);
  start(JSON.parse(variantJson) as Variant, runId, entry).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
