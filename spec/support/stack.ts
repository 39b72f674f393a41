// The versions and settings of the stack a spec run uses, chosen by the environment, so that one
// suite runs on every combination the package supports (see the README's Compatibility table and
// `npm run spec:legs`, which runs the legs CI runs). Unset or empty means the default.
//   SOCKET_IO  4.6 | 4.7 | 4.8 (default): socket.io itself, installed under the npm aliases
//              socket.io46 and socket.io47 beside the newest 4.8
//   EXPRESS    4 | 5 (default): the Express of createTestServer when a test names none (tests
//              that name one, to run both, keep theirs); Express 4 is the alias express4
//   PASSPORT   0.6 | 0.7 (default): passport, 0.6 under the alias passport06
//   SESSION    default: express-session with resave: false, saveUninitialized: false
//              save-uninitialized: resave: true, saveUninitialized: true
//              rolling: rolling: true, with the default resave and saveUninitialized
//              (options a test passes to createTestServer win over these)
//   STORE      memory (default): express-session's MemoryStore
//              memorystore: the memorystore package (no checkPeriod: no timer of its own)
//              redis: connect-redis on a real redis-server this process starts (it fails, never
//              skips, when redis-server is missing: a Redis leg that ran without Redis would lie)
//              each wrapped in the same counting wrapper (spec/support/counting-store.ts); tests
//              that bring their own store (to hold or fail reads and writes) keep it
// The package under test never imports socket.io, express or passport at run time: it works on
// whatever instances the app gives it, which is what lets one suite drive every version.
import { RedisStore } from 'connect-redis';
import session from 'express-session';
import createMemorystore from 'memorystore';
import { createClient } from 'redis';
import type * as SocketIo from 'socket.io';
import type * as PassportModule from 'passport';
import { counting, type CountedStore } from './counting-store.js';
import { choose, installedVersion, packages, sessionOptions } from './matrix.js';
import { hasRedis, startRedis, type RedisServer } from './redis.js';

/** The Socket.IO minor this run uses. */
export const socketIoVersion = choose('SOCKET_IO', process.env);
/** The Express major of createTestServer when a test names none. */
export const expressVersion = choose('EXPRESS', process.env);
/** The Passport minor this run uses. */
export const passportVersion = choose('PASSPORT', process.env);
/** The express-session options this run uses, by name. */
export const sessionVariant = choose('SESSION', process.env);
/** The session store this run uses. */
export const storeKind = choose('STORE', process.env);
/**
 * Whether this run's store keeps time itself (memorystore's and connect-redis's TTLs, the latter
 * in whole seconds) rather than by the session's stored expiry (MemoryStore): at a socket's
 * expiry such a store may still hold the session for a moment, and the package asks it once more
 * (lib/live/expiry.ts).
 */
export const storeKeepsTime = storeKind !== 'memory';

// Loaded with require so the package name can be chosen at run time. The older versions are typed
// as the newest: what the specs use of them has the same shape.
/** The socket.io module of the version this run uses. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const socketIo = require(packages.SOCKET_IO[socketIoVersion]) as typeof SocketIo;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const passport = require(packages.PASSPORT[passportVersion]) as typeof PassportModule;

/** Socket.IO's `Server` class, of the version this run uses. */
export const Server = socketIo.Server;
export type Server = SocketIo.Server;

/** Passport's `Passport` (Authenticator) class, of the version this run uses. */
export const Passport = passport.Passport;
export type Passport = InstanceType<typeof PassportModule.Passport>;

/** The express-session options of this run's SESSION, under the options a test passes. */
export const sessionDefaults: Partial<session.SessionOptions> = sessionOptions[sessionVariant];

// ---------------------------------------------------------------------------------------------
// The session store
// ---------------------------------------------------------------------------------------------

const CountingExpressMemoryStore = counting(session.MemoryStore);
const CountingMemorystore = counting(createMemorystore(session));
const CountingRedisStore = counting(RedisStore);

let redisServer: Promise<RedisServer> | undefined;
let redisPrefixes = 0;

/** One redis-server for this process, started on first use and killed when the process exits. */
function processRedis(): Promise<RedisServer> {
  redisServer ??= (async () => {
    if (!hasRedis()) {
      throw new Error(
        'STORE=redis needs redis-server (apt-get install redis-server, or run bash .ci/run)',
      );
    }
    // Unref'd, so it does not keep a finished test file's process alive; killed at its exit.
    const server = await startRedis({ unref: true });
    process.once('exit', () => {
      void server.stop();
    });
    return server;
  })();
  return redisServer;
}

export interface SessionStore {
  store: CountedStore;
  /** Lets go of what the store holds open (the Redis client); the server stays for others. */
  close: () => Promise<void>;
}

/** A fresh, empty, counting session store of this run's STORE. */
export async function createSessionStore(): Promise<SessionStore> {
  switch (storeKind) {
    case 'memory':
      return { store: new CountingExpressMemoryStore(), close: () => Promise.resolve() };
    case 'memorystore':
      // No checkPeriod: expired sessions go when read, as with MemoryStore, and no interval timer
      // is left running (specs count the process's timers).
      return { store: new CountingMemorystore({}), close: () => Promise.resolve() };
    case 'redis': {
      const redis = await processRedis();
      const client = createClient({ url: redis.url });
      // node-redis emits 'error' on a broken connection; without a listener the process crashes.
      client.on('error', (error: unknown) => {
        console.error('STORE=redis client error:', error);
      });
      await client.connect();
      // Each test server has its own prefix: one Redis serves every server of the process.
      const prefix = `sess:${process.pid}:${++redisPrefixes}:`;
      return {
        store: new CountingRedisStore({ client, prefix }),
        // Graceful: a write still under way (a late touch) completes before the client goes.
        close: () => client.close(),
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------------------------

/** What this run uses, with the installed versions, for test names and failure messages. */
export const versions = {
  socketIo: installedVersion(packages.SOCKET_IO[socketIoVersion]),
  express: installedVersion(packages.EXPRESS[expressVersion]),
  passport: installedVersion(packages.PASSPORT[passportVersion]),
  session: sessionVariant,
  store: `${storeKind} (${packages.STORE[storeKind]} ${installedVersion(packages.STORE[storeKind])})`,
};
