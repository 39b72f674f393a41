// What the bench compares, and what its processes say to each other. Pure data and types: the
// orchestrator, the server children and the client child all import it.
import type { LimitsClientCommands } from './limits-child.js';
import type { StoreEventsClientCommands } from './store-events-clients.js';

/** How a server variant guards its namespaces. */
export type Auth = 'stock' | 'recipe' | 'package';

/** One server variant, run in its own child process. */
export interface Variant {
  /** Unique key, used in results JSON. */
  id: string;
  /** Which column of the table it fills. */
  auth: Auth;
  /** The session store: express-session's MemoryStore, or connect-redis at `REDIS_URL`. */
  store: 'memory' | 'redis';
  /** The Socket.IO adapter: in-memory (one node), or @socket.io/redis-adapter (several nodes). */
  adapter: 'memory' | 'redis';
  /** sessionNamespace's revalidateIntervalMs, when not the default. */
  revalidateMs?: number;
  /** One subscriber (doing nothing) on every diagnostics channel of the package. */
  diagnostics?: boolean;
  /** `presence(io.of(NSP.main), …)` on the package (bench/presence-server.ts). */
  presence?: PresenceSetup;
  /** The package with rateLimit's event limits, in memory or in Redis (bench/limits-child.ts). */
  limits?: 'memory' | 'redis';
}

/** How a variant runs presence: one node, or shared over Redis (`REDIS_URL`). */
export interface PresenceSetup {
  graceMs: number;
  redis?: { heartbeatMs: number; expiryMs: number };
}

export const STOCK: Variant = { id: 'stock', auth: 'stock', store: 'memory', adapter: 'memory' };
export const RECIPE: Variant = { id: 'recipe', auth: 'recipe', store: 'memory', adapter: 'memory' };
export const PACKAGE: Variant = {
  id: 'package',
  auth: 'package',
  store: 'memory',
  adapter: 'memory',
};
/** The package with a subscriber on every diagnostics channel. */
export const PACKAGE_DIAGNOSTICS: Variant = {
  ...PACKAGE,
  id: 'package-diagnostics',
  diagnostics: true,
};
export const RECIPE_REDIS: Variant = { ...RECIPE, id: 'recipe-redis', store: 'redis' };
export const PACKAGE_REDIS: Variant = { ...PACKAGE, id: 'package-redis', store: 'redis' };
/** The package with presence on its main namespace, one node: the leave at once (graceMs 0). */
export const PACKAGE_PRESENCE: Variant = {
  ...PACKAGE,
  id: 'package-presence',
  presence: { graceMs: 0 },
};
/** Two nodes of one cluster: a shared Redis store and the Redis adapter. */
export const NODE_A: Variant = { ...PACKAGE, id: 'node-a', store: 'redis', adapter: 'redis' };
export const NODE_B: Variant = { ...NODE_A, id: 'node-b' };
/** A node of a cluster whose revalidation rounds come often, to measure what one costs. */
export const REVALIDATION_MS = 2000;
export const NODE_REVAL: Variant = {
  ...NODE_A,
  id: 'node-revalidation',
  revalidateMs: REVALIDATION_MS,
};

/** Namespaces every server variant has. */
export const NSP = {
  /** Guarded (recipe: at the engine; package: sessionNamespace + requireAuth). */
  main: '/',
  /** Three guarded namespaces a client opens on one connection. */
  three: ['/a', '/b', '/c'],
  /**
   * Per-event features: package with `authorizeEvent`; recipe with a session reload per event.
   * Every namespace answers `echo` with an ack.
   */
  events: '/events',
  /** Package only: admins (a session not marked `demoted`), for the refreshUser latency. */
  admin: '/admin',
  /** Package only: passportNamespace with passport-jwt, for the token handshake. */
  token: '/token',
} as const;

export const ECHO_EVENT = 'echo';

/** The one user every client logs in as. */
export const USER = { id: '1', username: 'alice', password: 'alice-pw' } as const;

/** Many distinct users, for presence: `user<N>` (id `u<N>`), with alice's password. */
export const userName = (n: number): string => `user${n}`;
export const USER_NAME_PATTERN = /^user(\d+)$/;
export const userKeyOf = (n: number): string => `u${n}`;
/** The first of the users seeded into the shared state (bench/presence-server.ts). */
export const SEEDED_FROM = 1_000_000;

/** The session cookie's maxAge: it arms the package's expiry timer on every socket. */
export const COOKIE_MAX_AGE_MS = 60 * 60 * 1000;

/** What the bench's JWTs are signed with. */
export const JWT_SECRET = 'bench-jwt-secret';

export interface CpuSnapshot {
  /** User + system CPU time of the process, microseconds. */
  cpuMicros: number;
  /** `process.hrtime.bigint()` in microseconds, for the wall time of the window. */
  wallMicros: number;
}

export interface HeapSnapshot {
  heapUsed: number;
  external: number;
  sockets: number;
}

export interface ServerInfo {
  port: number;
  pid: number;
}

/** Commands a server child answers. `args` and `result` must survive JSON over IPC. */
export interface ServerCommands {
  /** CPU used so far; with `settle`, first waits until no engine connection is left. */
  cpu: { args: { settle: boolean }; result: CpuSnapshot };
  /** Forces full GCs, then reads the heap. */
  heap: { args: null; result: HeapSnapshot };
  /** Waits until the engine has this many connections. */
  waitConnections: { args: { count: number; timeoutMs: number }; result: number };
  /** Engine handshake attempts (HTTP requests and upgrades without `sid`) since the last reset. */
  attempts: { args: { reset: boolean }; result: number };
  /** Session store reads since the last reset: how many, and the most in any 100 ms. */
  storeReads: { args: { reset: boolean }; result: { reads: number; peakPer100ms: number } };
  /** Variants with presence only (bench/presence-server.ts). */
  presenceWait: { args: PresenceWaitArgs; result: number[] };
  presenceCosts: { args: PresenceCostArgs; result: PresenceCosts };
  presenceSeed: { args: { users: number }; result: number };
  /** Closes the seeded scope (`seeded`), or every presence of the node. */
  presenceClose: { args: { seeded: boolean }; result: null };
}

/**
 * Waits until this node has heard the join (or leave) of each user, or (two nodes) has seen a
 * socket of theirs connect (or disconnect) on its main namespace; their times, epoch ms.
 */
export interface PresenceWaitArgs {
  type: 'join' | 'leave' | 'connection' | 'disconnect';
  userKeys: string[];
  timeoutMs: number;
}

/** `calls` calls of each accessor; the shared ones on the seeded scope when `seeded`. */
export interface PresenceCostArgs {
  calls: number;
  sharedCalls: number;
  userKeys: string[];
  seeded: boolean;
}

/** Per call: CPU µs of this process, wall µs, and Redis commands sent. */
export interface PresenceCosts {
  users: { local: number; shared: number };
  count: number;
  isOnline: number;
  countShared: { cpu: number; wall: number; commands: number };
  isOnlineShared: { cpu: number; wall: number; commands: number };
}

export interface HandshakeArgs {
  url: string;
  cookie: string | undefined;
  /** Instead of `cookie`: handshake i sends cookies[i % length] (distinct users). */
  cookies?: string[];
  /** A bearer token for the handshake's auth (passportNamespace), instead of a cookie. */
  token?: string;
  transports: ('polling' | 'websocket')[];
  namespaces: readonly string[];
  count: number;
  concurrency: number;
}

export interface RefusedArgs {
  urls: string[];
  clients: number;
  durationMs: number;
}

export interface OpenArgs {
  url: string;
  nsp: string;
  /** Socket i sends cookies[i % length]; empty: no cookie. */
  cookies: string[];
  count: number;
  concurrency: number;
}

export interface LatencyArgs {
  /** What ends the socket: a logout (POST /logout), or a demotion then refreshUser (POST /demote). */
  action: 'logout' | 'demote';
  /** Where to log in and out (node A). */
  httpBase: string;
  /** Where the socket connects (node A, or node B for the two-node row). */
  socketBase: string;
  nsp: string;
  samples: number;
}

/** Commands the client child answers. */
export interface ClientCommands extends LimitsClientCommands, StoreEventsClientCommands {
  /**
   * Logs in over HTTP `count` times (one session each) and returns the Cookie headers: as alice,
   * or with `from`, as distinct users `userName(from + i)`, cookie i for user from + i.
   */
  login: {
    args: { base: string; count: number; concurrency: number; from?: number };
    result: string[];
  };
  /** One connection attempt without reconnection: `connected`, or the connect_error. */
  probe: { args: { url: string; cookie: string | undefined }; result: string };
  /** Opens and closes `count` connections, `concurrency` at a time. */
  handshakes: { args: HandshakeArgs; result: { ms: number } };
  /** Unauthenticated clients with default reconnection, against each URL, for a while. */
  refused: { args: RefusedArgs; result: { connectErrors: number[] } };
  /** Opens websocket-only sockets and keeps them; returns the group's handle. */
  open: { args: OpenArgs; result: number };
  /** Sends `count` events with acks on the group's first socket, `inflight` at a time. */
  acks: { args: { group: number; count: number; inflight: number }; result: { ms: number } };
  /** Closes every socket of a group. */
  close: { args: { group: number }; result: null };
  /** Per logout, ms from the response (negative: the disconnect came first) and the request. */
  latency: { args: LatencyArgs; result: { afterResponse: number[]; afterRequest: number[] } };
  /** Closes a random socket of the group and opens one with its cookie, `perSecond` times a second. */
  churnStart: {
    args: { group: number; url: string; nsp: string; perSecond: number };
    result: null;
  };
  /** Connects and refusals of the churn, its sockets still not answered after 30 s, its time. */
  churnStop: {
    args: { group: number };
    result: { connects: number; failures: number; unanswered: number; ms: number };
  };
  /** Opens one socket and returns its handle and when it connected (epoch ms, sub-ms). */
  sampleConnect: { args: { url: string; cookie: string }; result: { id: number; at: number } };
  /** Closes it and returns when `disconnect()` was called. */
  sampleDisconnect: { args: { id: number }; result: number };
}
