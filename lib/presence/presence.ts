// Public: presence, who is online among the users of a session namespace (or of a whole server),
// kept true by the package's own socket lifecycle: a logout, disconnectSession, disconnectUser, an
// expiry or a demotion ends the sockets, and the user's last one gone is their leave.
import type { Namespace, Server } from 'socket.io';
import { checkBoolean, checkOptions, toScope } from '../api/setup.js';
import { serverState } from '../core/state.js';
import { PresenceFeed } from './feed.js';
import { SharedPresence, type PresenceRedisClient } from './shared.js';
import { publishPresence } from './presence-diagnostics.js';
import { PresenceTracker, type PresenceEntry, type PresenceEvent } from './tracker.js';
import { warnIfUntracked } from './untracked.js';

/** Options for {@link presence}. */
export interface PresenceOptions {
  /**
   * How long a user whose last socket is gone stays online before their `leave`, in
   * milliseconds: a reload, or a reconnect after a dropped connection, within it gives neither a
   * leave nor a join. `0`: the leave at once.
   * @default 3000
   */
  graceMs?: number;
  /**
   * Tells the namespace's clients who is online: each socket receives `presence:state` (every
   * user online, as `PresenceFeedEntry`s) once connected, and the namespace
   * `presence:diff` (a `PresenceDiff`) after each change, coalesced. Every socket the
   * namespace lets in receives it: guard it with `requireAuth` to keep it to logged-in users.
   * Only for a namespace, not a whole server.
   * @default false
   */
  feed?: boolean | PresenceFeedOptions;
  /**
   * Several nodes: the app's node-redis (v4 or later) client. The nodes share who is online in
   * Redis, so a user on two nodes joins once and leaves once, `countShared()` and friends answer
   * for every node, and a node that dies has its users' leaves published by the others within
   * `expiryMs + heartbeatMs`. With `feed`, every node's clients see every node's users.
   */
  redis?: PresenceRedisClient;
  /**
   * With `redis`: the prefix of the Redis keys and channel; the scope (the namespace's name, or
   * `*`) is added in a `{…}` hash tag.
   * @default 'socket.io-session-auth:presence'
   */
  redisPrefix?: string;
  /**
   * With `redis`: how often this node tells Redis it is alive, in ms (real time, not the test
   * kit's clock: Redis's own clock judges the heartbeats).
   * @default 5000
   */
  heartbeatMs?: number;
  /**
   * With `redis`: a node whose heartbeat is older than this is dead, in ms: the next heartbeat of
   * any node reaps it and publishes its users' leaves. At least twice `heartbeatMs`.
   * @default 10000
   */
  expiryMs?: number;
}

/** Options of the client feed ({@link PresenceOptions.feed}). */
export interface PresenceFeedOptions {
  /**
   * At most one `presence:diff` per this many milliseconds: changes meanwhile go in the next one.
   * @default 1000
   */
  intervalMs?: number;
}

/** Who is online: made by {@link presence}. */
export interface Presence<Data = unknown> {
  /** Each user online once: their `userData` summary, connections, and since when. */
  list(): PresenceEntry<Data>[];
  /** How many users are online. */
  count(): number;
  /** Whether the user (by key: what serializeUser stored, as a string) is online. */
  isOnline(userKey: string): boolean;
  /**
   * `join`: a user's first socket in scope has connected. `leave`: their last one has been gone
   * for `graceMs`. Once per user each, in that order. A listener that throws does not stop the
   * others; its error is rethrown on its own (an uncaught exception, as an EventEmitter's).
   */
  on(event: 'join' | 'leave', listener: (entry: PresenceEntry<Data>) => void): Presence<Data>;
  off(event: 'join' | 'leave', listener: (entry: PresenceEntry<Data>) => void): Presence<Data>;
  /** Every node's count (one SCARD), with `redis`; this node's `count()` without. */
  countShared(): Promise<number>;
  /** Whether the user is online on any node (one SISMEMBER), with `redis`; else `isOnline`. */
  isOnlineShared(userKey: string): Promise<boolean>;
  /**
   * Each user online on any node once, `connections` summed over the nodes (two HGETALLs: one
   * round trip, its cost growing with the users); with `redis`, else `list()`.
   */
  listShared(): Promise<PresenceEntry<Data>[]>;
  /** With `redis`: settles once this node hears the shared events (none missed after, while its
   * subscription holds). */
  ready(): Promise<void>;
  /**
   * Stops tracking: no more events, the grace timers cleared, the feed stopped. With `redis`, this
   * node lets go of its users: their leaves are published where no other node holds them.
   */
  close(): void;
}

const helper = 'presence';
const MAX_MS = 2 ** 31 - 1;

function checkMs(name: string, value: unknown, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_MS) {
    throw new TypeError(
      `${helper}: ${name} must be a whole number of milliseconds between ${min} and ${MAX_MS}`,
    );
  }
  return value;
}

function checkFeed(value: unknown, nsp: Namespace | undefined): number | undefined {
  if (value === undefined || value === false) return undefined;
  if (value !== true) {
    if (typeof value !== 'object' || value === null) checkBoolean(helper, 'options.feed', value);
  }
  if (!nsp) throw new TypeError(`${helper}: options.feed needs a namespace, not a whole server`);
  const { intervalMs } = value === true ? {} : (value as PresenceFeedOptions);
  return checkMs('options.feed.intervalMs', intervalMs, 1) ?? 1000;
}

/**
 * Tracks who is online among the users of a session namespace (`sessionNamespace`,
 * `passportNamespace`; a parent namespace with its children), or of every such namespace of a
 * server: each user once, however many tabs and namespaces they have open. A user joins at their
 * first connected socket and leaves once their last one has been gone for `graceMs`, whatever
 * ended it: a closed tab, a logout, `disconnectSession`, `disconnectUser`, an expiry, a demotion
 * by `refreshUser`. On one node by itself; with `redis`, shared by every node: one join and one
 * leave per user across them.
 *
 * @example
 * ```ts
 * import { presence, requireAuth, sessionNamespace } from 'socket.io-session-auth';
 *
 * const chat = requireAuth(sessionNamespace(io.of('/chat'), sessionMiddleware, { passport }));
 * const online = presence(chat, { graceMs: 5000, feed: { intervalMs: 500 } });
 * online.on('join', ({ user }) => console.log('online:', user));
 * online.on('leave', ({ user }) => console.log('offline:', user));
 * app.get('/api/online', (req, res) => res.json({ count: online.count() }));
 * // In the page: socket.on('presence:state', …) then socket.on('presence:diff', …)
 * ```
 *
 * @throws TypeError naming `presence` for a target that is not a Server or Namespace, or an option
 * of the wrong type or range.
 */
export function presence<Data = unknown>(
  target: Server | Namespace,
  options?: PresenceOptions,
): Presence<Data> {
  const { io, nsp } = toScope(target, helper);
  const { graceMs, feed, ...shared } = checkOptions(helper, options);
  const tracker = new PresenceTracker(io, nsp, checkMs('options.graceMs', graceMs, 0) ?? 3000);
  const intervalMs = checkFeed(feed, nsp);
  tracker.shared = sharedOf(tracker, shared, nsp);
  if (nsp && intervalMs !== undefined) {
    tracker.feed = new PresenceFeed(nsp, intervalMs, {
      entries: () => tracker.feedEntries(),
      clock: () => tracker.clock(),
    });
  }
  // On the channel from the start: the users already connected join there too (a gauge counts them).
  publishPresence(tracker);
  const server = serverState(io);
  // The users already connected are online from now on (no join: nobody listens yet).
  for (const key of server.byUser.keys()) {
    for (const state of server.byUser.get(key)) {
      if (state.connected) tracker.arrived(state.socket, state);
    }
  }
  server.presence.add(tracker);
  tracker.unwatch = warnIfUntracked(tracker);
  return presenceOf<Data>(tracker);
}

function sharedOf(
  tracker: PresenceTracker,
  options: Omit<PresenceOptions, 'graceMs' | 'feed'>,
  nsp: Namespace | undefined,
): SharedPresence | undefined {
  const { redis, redisPrefix = 'socket.io-session-auth:presence' } = options;
  if (redis === undefined) return undefined;
  const client = redis as Partial<PresenceRedisClient> | null;
  if (typeof client?.sendCommand !== 'function' || typeof client.duplicate !== 'function') {
    throw new TypeError(`${helper}: options.redis must be a node-redis client (v4 or later)`);
  }
  if (typeof redisPrefix !== 'string' || redisPrefix === '') {
    throw new TypeError(`${helper}: options.redisPrefix must be a non-empty string`);
  }
  const heartbeatMs = checkMs('options.heartbeatMs', options.heartbeatMs, 1) ?? 5000;
  const expiryMs = checkMs('options.expiryMs', options.expiryMs, 2) ?? 10_000;
  if (expiryMs < 2 * heartbeatMs) {
    throw new TypeError(`${helper}: options.expiryMs must be at least twice options.heartbeatMs`);
  }
  return new SharedPresence(redis, `${redisPrefix}:{${nsp?.name ?? '*'}}`, {
    heartbeatMs,
    expiryMs,
    held: () => tracker.held(),
    holds: (userKey) => tracker.users.has(userKey),
    onEvent: (event) => {
      tracker.heard(event);
    },
    onSecret: (secret) => {
      tracker.secret = secret;
    },
  });
}

function presenceOf<Data>(tracker: PresenceTracker): Presence<Data> {
  type Listener = (entry: PresenceEntry<Data>) => void;
  const check = (event: unknown, listener: unknown): PresenceEvent => {
    if (event !== 'join' && event !== 'leave') {
      throw new TypeError(`${helper}: the event must be 'join' or 'leave'`);
    }
    if (typeof listener !== 'function')
      throw new TypeError(`${helper}: the listener must be a function`);
    return event;
  };
  const api: Presence<Data> = {
    list: () => tracker.entries() as PresenceEntry<Data>[],
    count: () => tracker.users.size,
    isOnline: (userKey) => tracker.users.has(userKey),
    countShared: async () => (tracker.shared ? tracker.shared.count() : tracker.users.size),
    isOnlineShared: async (userKey) =>
      tracker.shared ? tracker.shared.isOnline(userKey) : tracker.users.has(userKey),
    listShared: async () =>
      (tracker.shared ? await tracker.shared.list() : tracker.entries()) as PresenceEntry<Data>[],
    ready: async () => {
      await tracker.shared?.ready;
    },
    on(event, listener: Listener) {
      tracker.listeners[check(event, listener)].add(listener as (entry: PresenceEntry) => void);
      return api;
    },
    off(event, listener: Listener) {
      tracker.listeners[check(event, listener)].delete(listener as (entry: PresenceEntry) => void);
      return api;
    },
    close: () => {
      tracker.close();
    },
  };
  return api;
}
