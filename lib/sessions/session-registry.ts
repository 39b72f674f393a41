// Public: sessionRegistry, which makes a server keep a list of each user's sessions, so that
// listSessions and endSessions know the sessions that have no socket open. The package hears of a
// session where it already watches the store (store-logouts.ts: its set, touch and destroy) and at
// each tracked handshake.
import type { Server } from 'socket.io';
import { checkBoolean, checkOptions, toServer } from '../api/setup.js';
import { debug } from '../diagnostics/debug.js';
import { serverState, sessionDigest } from '../core/state.js';
import { sessionUserKey } from '../core/user.js';
import {
  MemoryBackend,
  RedisBackend,
  type RegistryBackend,
  type SessionRegistryRedisClient,
} from './registry-backends.js';

export type { SessionRegistryRedisClient } from './registry-backends.js';

/** Options for {@link sessionRegistry}. */
export interface SessionRegistryOptions {
  /**
   * Several nodes: the app's node-redis (v4 or later) client. Each user's sessions are one Redis
   * hash, named by a digest of the user key (never the key in clear), one field per session. The
   * registry is the only place the package keeps a session ID outside the store: `endSessions`
   * needs it to destroy a session that has no socket open. Without `redis`: this process's
   * memory, which is right for one node only.
   * @default undefined (this process's memory)
   */
  redis?: SessionRegistryRedisClient;
  /**
   * With `redis`: the prefix of its keys.
   * @default 'sio-sessions:'
   */
  prefix?: string;
  /**
   * No registry: `listSessions` reads every session of the store (`store.all()`, which
   * memorystore and connect-redis have) and keeps the user's. That costs O(all sessions of the
   * store) per call, and nothing per request. Nothing is written.
   * @default false
   */
  scan?: boolean;
  /**
   * How long an entry of a session without a cookie expiry (`cookie.maxAge` unset) is kept after
   * it was last seen, in ms (connect-redis keeps such sessions a day by default).
   * @default 86400000 (a day)
   */
  keepMs?: number;
}

/**
 * sessionRegistry's record of each user's sessions (`ServerState.registry`), told by the wrapped
 * store's writes and destroys (sessions/store-logouts.ts) and by tracked handshakes.
 */
export interface SessionRecorder {
  /** A session was written, touched or read: `session`, with its request if known. */
  seen(sessionID: string, session: unknown, req: unknown): void;
  /** A session was destroyed in the store. */
  gone(sessionID: string): void;
}

/** The registry of one server. */
export interface Registry extends SessionRecorder {
  /** Undefined with `scan`. */
  readonly backend: RegistryBackend | undefined;
  readonly scan: boolean;
  /** Forgets the last write of a session (it was removed meanwhile). */
  unmemo(digest: string): void;
}

const helper = 'sessionRegistry';
/** lastSeenAt is written at most this often per session. */
const SEEN_EVERY_MS = 60_000;
/** The memo of last writes is bounded: the oldest go first. */
const MEMO_SIZE = 10_000;

/**
 * Opts `io` into a registry of each user's sessions, so that {@link listSessions} and
 * {@link endSessions} see the sessions that have no socket open as well ("sign out other
 * devices"). A session is written when it is saved or touched through the store the package
 * watches (a login, then at most once a minute of activity) and leaves when it is destroyed
 * through that store, when a read finds it expired, or when `listSessions` finds it gone from the
 * store. With `scan`, nothing is written: `listSessions` reads the whole store.
 *
 * @example
 * ```ts
 * sessionRegistry(io, { redis: redisClient }); // several nodes
 * app.get('/account/sessions', async (req, res) => {
 *   res.json(await listSessions(io, String(req.user.id)));
 * });
 * ```
 */
export function sessionRegistry(io: Server, options?: SessionRegistryOptions): void {
  const server = serverState(toServer(io, helper));
  const {
    redis,
    prefix = 'sio-sessions:',
    scan = false,
    keepMs = 86_400_000,
  } = checkOptions(helper, options);
  checkBoolean(helper, 'options.scan', scan);
  if (redis !== undefined && typeof (redis as Partial<typeof redis>).sendCommand !== 'function') {
    throw new TypeError(`${helper}: options.redis must be a node-redis client (sendCommand)`);
  }
  if (typeof prefix !== 'string') throw new TypeError(`${helper}: options.prefix must be a string`);
  if (typeof keepMs !== 'number' || !(keepMs > 0)) {
    throw new TypeError(`${helper}: options.keepMs must be a positive number of milliseconds`);
  }
  if (scan && redis)
    throw new TypeError(`${helper}: options.scan and options.redis exclude each other`);
  if (server.registry) throw new TypeError(`${helper}: already called for this server`);
  const backend = scan ? undefined : redis ? new RedisBackend(redis, prefix) : new MemoryBackend();
  // Real time, as the stores keep their expiries.
  server.registry = makeRegistry(backend, scan, keepMs);
}

function makeRegistry(
  backend: RegistryBackend | undefined,
  scan: boolean,
  keepMs: number,
): Registry {
  // Each session's last write: its user, and until when another write is not needed.
  const memo = new Map<string, { userKey: string; until: number }>();
  const failed = (error: unknown): void => {
    debug('session registry write failed: %O', error);
  };
  return {
    backend,
    scan,
    unmemo: (digest) => memo.delete(digest),
    seen(sessionID, session, req) {
      if (!backend) return;
      const digest = sessionDigest(sessionID);
      const userKey = sessionUserKey(session);
      const at = Date.now();
      const last = memo.get(digest);
      if (userKey === undefined) {
        // No user (any more: a logout saves the session without its user first).
        memo.delete(digest);
        backend.forget(digest).catch(failed);
        return;
      }
      if (last?.userKey === userKey && at < last.until) return;
      const expiresAt = expiryOf(session);
      // At most once a minute; sooner for a session that has less than two minutes left, so that
      // the entry never expires long before the session it stands for.
      const every = Math.min(SEEN_EVERY_MS, ((expiresAt ?? Infinity) - at) / 2);
      memo.delete(digest);
      memo.set(digest, { userKey, until: at + every });
      if (memo.size > MEMO_SIZE) memo.delete(memo.keys().next().value as string);
      const entry = { sid: sessionID, createdAt: at, lastSeenAt: at, ...client(req) };
      backend
        .write(digest, userKey, expiresAt ? { ...entry, expiresAt } : entry, keepMs)
        .catch(failed);
    },
    gone(sessionID) {
      if (!backend) return;
      const digest = sessionDigest(sessionID);
      memo.delete(digest);
      backend.forget(digest).catch(failed);
    },
  };
}

/** The registry of `io`, if the app opted in. */
export function registryOf(io: Server): Registry | undefined {
  return serverState(io).registry as Registry | undefined;
}

/**
 * The session store the server's sockets and requests use: the first it watches (an app with
 * several stores on one server has its registry's sessions read and destroyed in that one).
 */
export function storeOf(io: Server): object | undefined {
  return serverState(io).watchedStores.values().next().value;
}

/** When the session's cookie expires (ms since epoch), if it does. */
export function expiryOf(session: unknown): number | undefined {
  const expires = (session as { cookie?: { expires?: unknown } } | null | undefined)?.cookie
    ?.expires;
  if (!(expires instanceof Date) && typeof expires !== 'string') return undefined;
  const ms = new Date(expires).getTime();
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * The device as the request shows it: its user agent, and its address as the app's `trust proxy`
 * sees it (Express's `req.ip`; else the connection's own).
 */
export function client(req: unknown): { userAgent?: string; ip?: string } {
  if (req === null || typeof req !== 'object') return {};
  const { headers, ip, socket } = req as {
    headers?: Record<string, unknown>;
    ip?: unknown;
    socket?: { remoteAddress?: unknown };
  };
  const agent = headers?.['user-agent'];
  const address = typeof ip === 'string' && ip !== '' ? ip : socket?.remoteAddress;
  return {
    ...(typeof agent === 'string' && { userAgent: agent }),
    ...(typeof address === 'string' && { ip: address }),
  };
}
