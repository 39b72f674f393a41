// Public: listSessions and sessionHandle. A user's sessions are the union, by handle (the
// session's digest), of every node's live sockets of the user and of the registry (or a scan of the
// store): what an account page shows, never a session ID.
import type { IncomingMessage } from 'node:http';
import type { Server, Socket } from 'socket.io';
import { toServer } from '../api/setup.js';
import { debug } from '../diagnostics/debug.js';
import { serverState, sessionDigest, socketState, userKeyOf } from '../core/state.js';
import type { SessionStoreLike } from '../core/types.js';
import { sessionUserKey } from '../core/user.js';
import type { RegistryEntry } from './registry-backends.js';
import { expiryOf, registryOf, storeOf, type Registry } from './session-registry.js';
import { localSessions, otherNodesSessions, type LiveSession } from './sessions-across-nodes.js';

/** One session of a user, as {@link listSessions} gives it. */
export interface SessionInfo {
  /** Opaque (a digest of the session ID, which it does not reveal): pass it back to endSessions. */
  handle: string;
  /** Never set: compare `handle` with `sessionHandle(req)` to mark the current session. */
  current?: never;
  /** When the registry first saw it (ms since epoch); unknown for a session known only by sockets. */
  createdAt?: number;
  /** When it was last seen: a request (to the minute), or a socket's handshake. */
  lastSeenAt?: number;
  /** The `User-Agent` of the request (registry) or socket that last showed it. */
  userAgent?: string;
  /** As the app's `trust proxy` sees it (Express's `req.ip`). */
  ip?: string;
  /** When the session's cookie expires (ms since epoch), if it does. */
  expiresAt?: number;
  /** Its live sockets, over every node. */
  sockets: number;
}

/** A session found, with its ID where the registry or the scan gave it (never returned). */
export interface Found {
  info: SessionInfo;
  sid: string | undefined;
}

/** A session the registry or the scan holds: its ID (never returned) and what is known of it. */
type Listed = Partial<Omit<RegistryEntry, 'sid'>> & { sid: string };

const USER_KEY_ERROR = 'userKey must be what serializeUser stored, not empty';

/** The user key as the package keeps it; throws a TypeError naming `helper`. */
export function toUserKey(helper: string, userKey: unknown): string {
  const key = userKeyOf(userKey);
  if (key === undefined || key === '') throw new TypeError(`${helper}: ${USER_KEY_ERROR}`);
  return key;
}

/**
 * Every session of one user that the package knows of: those with a live socket on any node
 * and, with {@link sessionRegistry}, those without one. Most recently seen first. `userKey` is
 * what Passport's `serializeUser` stored (as `disconnectUser` takes it). No session ID in it:
 * each session's `handle` is opaque, for {@link endSessions}.
 *
 * @example
 * ```ts
 * app.get('/account/sessions', async (req, res) => {
 *   const mine = sessionHandle(req);
 *   const sessions = await listSessions(io, String(req.user.id));
 *   res.json(sessions.map((s) => ({ ...s, current: s.handle === mine })));
 * });
 * ```
 */
export function listSessions(io: Server, userKey: string): Promise<SessionInfo[]> {
  // Mistakes throw at once (not a rejection), as disconnectUser's do.
  const server = toServer(io, 'listSessions');
  const key = toUserKey('listSessions', userKey);
  return findSessions(server, key).then((found) => [...found.values()].map(({ info }) => info));
}

/** The user's sessions by handle, sorted, with the IDs the registry or scan holds. */
export async function findSessions(io: Server, userKey: string): Promise<Map<string, Found>> {
  const registry = registryOf(io);
  const [live, listed] = await Promise.all([
    otherNodesSessions(io, userKey).then((others) => [
      ...localSessions(serverState(io), userKey),
      ...others,
    ]),
    registry ? fromRegistry(registry, storeOf(io), userKey) : new Map<string, Listed>(),
  ]);
  const found = new Map<string, Found>();
  for (const [handle, entry] of listed) {
    const { sid, createdAt, lastSeenAt, userAgent, ip, expiresAt } = entry;
    found.set(handle, {
      sid,
      info: { handle, createdAt, lastSeenAt, userAgent, ip, expiresAt, sockets: 0 },
    });
  }
  for (const session of live) addLive(found, session);
  const sorted = [...found.entries()].sort(
    ([, a], [, b]) => (b.info.lastSeenAt ?? 0) - (a.info.lastSeenAt ?? 0),
  );
  return new Map(sorted.map(([handle, { sid, info }]) => [handle, { sid, info: defined(info) }]));
}

function addLive(found: Map<string, Found>, session: LiveSession): void {
  const known = found.get(session.handle);
  if (!known) {
    const { handle, sockets, userAgent, ip, lastSeenAt, expiresAt } = session;
    found.set(handle, {
      sid: undefined,
      info: { handle, lastSeenAt, userAgent, ip, expiresAt, sockets },
    });
    return;
  }
  const { info } = known;
  info.sockets += session.sockets;
  info.lastSeenAt = Math.max(info.lastSeenAt ?? 0, session.lastSeenAt);
  info.userAgent ??= session.userAgent;
  info.ip ??= session.ip;
  info.expiresAt ??= session.expiresAt;
}

/** The fields that are known: an account page's JSON gets no `undefined`s. */
function defined(info: SessionInfo): SessionInfo {
  return Object.fromEntries(
    Object.entries(info).filter(([, value]) => value !== undefined),
  ) as unknown as SessionInfo;
}

/**
 * The registry's entries of the user, each checked in the store: one gone from it (destroyed
 * behind the package's back, expired), or that holds another user (or none) now, leaves the answer
 * and the user's list: never another user's device listed or ended. With `scan`, the store's
 * sessions of the user.
 */
async function fromRegistry(
  registry: Registry,
  store: object | undefined,
  userKey: string,
): Promise<Map<string, Listed>> {
  if (registry.scan) return store ? scanStore(store, userKey) : new Map();
  const { backend } = registry;
  if (!backend) return new Map();
  const entries = await backend.list(userKey, Date.now());
  if (!store) return entries;
  await Promise.all(
    [...entries].map(async ([digest, entry]) => {
      const stored = await readSession(store as SessionStoreLike, entry.sid);
      // A failed read keeps the entry: the store may still hold it.
      if (stored === undefined || (stored !== null && sessionUserKey(stored) === userKey)) return;
      entries.delete(digest);
      registry.unmemo(digest);
      await backend.forget(digest, stored === null ? undefined : userKey);
    }),
  );
  return entries;
}

/** The stored session, null when the store says it is gone, undefined when the read failed. */
function readSession(store: SessionStoreLike, sid: string): Promise<unknown> {
  return new Promise((resolve) => {
    try {
      store.get(sid, (err, session) => {
        if (err) debug('listSessions: store.get failed: %O', err);
        resolve(err ? undefined : (session ?? null));
      });
    } catch (error) {
      debug('listSessions: store.get failed: %O', error);
      resolve(undefined);
    }
  });
}

/** Every session of the store (`all()`), the user's kept: O(all sessions of the store). */
async function scanStore(store: object, userKey: string): Promise<Map<string, Listed>> {
  const { all } = store as { all?: (cb: (err: unknown, sessions?: unknown) => void) => unknown };
  const found = new Map<string, Listed>();
  if (typeof all !== 'function') return found;
  const sessions = await new Promise<unknown>((resolve) => {
    all.call(store, (err, result) => {
      if (err) debug('listSessions: store.all failed: %O', err);
      resolve(err ? undefined : result);
    });
  });
  // express-session's MemoryStore and memorystore: { sid: session }; connect-redis: [{ id, … }].
  const pairs: [unknown, unknown][] = Array.isArray(sessions)
    ? sessions.map((s: unknown) => [(s as { id?: unknown } | null)?.id, s])
    : Object.entries((sessions ?? {}) as Record<string, unknown>);
  const now = Date.now();
  for (const [sid, session] of pairs) {
    if (typeof sid !== 'string' || sessionUserKey(session) !== userKey) continue;
    const expiresAt = expiryOf(session);
    if (expiresAt !== undefined && expiresAt <= now) continue;
    found.set(sessionDigest(sid), { sid, expiresAt });
  }
  return found;
}

/**
 * The handle of the session of an HTTP request (after the session middleware) or of a socket,
 * as {@link listSessions} gives it; undefined without a session ID.
 *
 * @example
 * ```ts
 * await endSessions(io, String(req.user.id), { except: sessionHandle(req) }); // other devices
 * ```
 */
export function sessionHandle(from: IncomingMessage | Socket): string | undefined {
  const value: unknown = from;
  if (value === null || typeof value !== 'object') return undefined;
  const socket = from as Partial<Socket>;
  if (socket.nsp !== undefined && socket.handshake !== undefined) {
    const digest = socketState(from as Socket)?.sessionDigest;
    if (digest !== undefined) return digest;
    return handleOf((socket.request as { sessionID?: unknown } | undefined)?.sessionID);
  }
  return handleOf((from as { sessionID?: unknown }).sessionID);
}

const handleOf = (sid: unknown): string | undefined =>
  typeof sid === 'string' && sid !== '' ? sessionDigest(sid) : undefined;
