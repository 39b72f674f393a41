// Where sessionRegistry keeps each user's sessions: this process's memory (one node), or Redis
// (every node): one hash per user, keyed by a digest of the user key, one field per session
// digest, and per session a small key naming its user's hash, so that a destroy (which knows only
// the session) finds its entry. Every entry has a prune time (its session's expiry, or keepMs after
// it was last seen): past it, the entry goes at the next write or read, and the keys expire with it.
import { digestOf, type SessionDigest } from '../core/state.js';

/** One session as the registry keeps it: the only place its ID is kept outside the store. */
export interface RegistryEntry {
  sid: string;
  createdAt: number;
  lastSeenAt: number;
  userAgent?: string | undefined;
  ip?: string | undefined;
  expiresAt?: number | undefined;
  /** When the entry goes: `expiresAt`, or keepMs after `lastSeenAt` (set by the backend). */
  pruneAt?: number | undefined;
}

/** What sessionRegistry needs of a node-redis (v4 and later) client: the app's own. */
export interface SessionRegistryRedisClient {
  sendCommand(args: string[]): Promise<unknown>;
}

export interface RegistryBackend {
  /** The session belongs to `userKey` now (out of any other user's list); createdAt kept. */
  write(
    digest: SessionDigest,
    userKey: string,
    entry: RegistryEntry,
    keepMs: number,
  ): Promise<void>;
  /** The session is gone, or has no user any more; with `userKey`, out of that user's list only. */
  forget(digest: SessionDigest, userKey?: string): Promise<void>;
  /** The user's sessions by digest, those past their prune time pruned. */
  list(userKey: string, now: number): Promise<Map<SessionDigest, RegistryEntry>>;
}

const pruneAt = (entry: RegistryEntry, keepMs: number): number =>
  entry.expiresAt ?? entry.lastSeenAt + keepMs;
const expired = (entry: RegistryEntry, now: number): boolean => {
  const until = entry.pruneAt ?? entry.expiresAt;
  return until !== undefined && until <= now;
};

/** The memory registry sweeps by the minute: whole minutes of prune times at once. */
const BUCKET_MS = 60_000;

/** One node: a map per user, the user of each session, and the sessions by prune minute. */
export class MemoryBackend implements RegistryBackend {
  private readonly byUser = new Map<string, Map<SessionDigest, RegistryEntry>>();
  /** Each session's user and the minute (bucket) of its prune time. */
  private readonly userOf = new Map<SessionDigest, { userKey: string; bucket: number }>();
  /** The sessions by the minute of their prune time, in any order. */
  private readonly buckets = new Map<number, Set<SessionDigest>>();
  /** Every bucket before this one is swept; undefined before the first write. */
  private sweptTo: number | undefined;

  /** How many sessions it holds, over every user (the specs' check that it stays bounded). */
  get size(): number {
    return this.userOf.size;
  }

  write(digest: SessionDigest, userKey: string, entry: RegistryEntry, keepMs: number) {
    const now = entry.lastSeenAt;
    this.sweep(now);
    const old = this.byUser.get(userKey)?.get(digest);
    this.drop(digest);
    let sessions = this.byUser.get(userKey);
    if (!sessions) this.byUser.set(userKey, (sessions = new Map<SessionDigest, RegistryEntry>()));
    const until = pruneAt(entry, keepMs);
    sessions.set(digest, {
      ...entry,
      createdAt: old?.createdAt ?? entry.createdAt,
      pruneAt: until,
    });
    // Never a bucket already swept (a prune time past, a clock gone back): the next one swept.
    const bucket = Math.max(Math.floor(until / BUCKET_MS), this.sweptTo ?? -Infinity);
    this.userOf.set(digest, { userKey, bucket });
    let inBucket = this.buckets.get(bucket);
    if (!inBucket) this.buckets.set(bucket, (inBucket = new Set<SessionDigest>()));
    inBucket.add(digest);
    return Promise.resolve();
  }

  forget(digest: SessionDigest, userKey?: string) {
    if (userKey === undefined || this.userOf.get(digest)?.userKey === userKey) this.drop(digest);
    return Promise.resolve();
  }

  list(userKey: string, now: number) {
    const sessions = this.byUser.get(userKey);
    const live = new Map<SessionDigest, RegistryEntry>();
    for (const [digest, entry] of sessions ?? []) {
      if (expired(entry, now)) this.drop(digest);
      else live.set(digest, entry);
    }
    return Promise.resolve(live);
  }

  /**
   * Every whole minute of prune times now past goes, whatever the order of the writes: each entry
   * is dropped once, and the minutes are stepped through (or, after a long idle, the buckets), so
   * writes stay O(1) amortised.
   */
  private sweep(now: number): void {
    const current = Math.floor(now / BUCKET_MS);
    const from = this.sweptTo ?? current;
    if (current <= from) {
      this.sweptTo = from;
      return;
    }
    const past =
      current - from > this.buckets.size
        ? [...this.buckets.keys()].filter((bucket) => bucket < current)
        : Array.from({ length: current - from }, (_, i) => from + i);
    for (const bucket of past) {
      for (const digest of this.buckets.get(bucket) ?? []) this.drop(digest);
    }
    this.sweptTo = current;
  }

  private drop(digest: SessionDigest): void {
    const mine = this.userOf.get(digest);
    if (!mine) return;
    this.userOf.delete(digest);
    const inBucket = this.buckets.get(mine.bucket);
    inBucket?.delete(digest);
    if (inBucket?.size === 0) this.buckets.delete(mine.bucket);
    const sessions = this.byUser.get(mine.userKey);
    sessions?.delete(digest);
    if (sessions?.size === 0) this.byUser.delete(mine.userKey);
  }
}

// KEYS: the user's hash, the session's key. ARGV: digest, entry (JSON, with its pruneAt), now,
// keep (ms to its pruneAt). The entry keeps its createdAt; the other user's hash (a session that
// changed users) loses it; the user's entries past their pruneAt go (so the hash holds the user's
// live sessions only, and each write reads that many); the hash lives as long as its longest entry.
const WRITE_SCRIPT = `
local old = redis.call('GET', KEYS[2])
if old and old ~= KEYS[1] then redis.call('HDEL', old, ARGV[1]) end
local entry = cjson.decode(ARGV[2])
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev then
  local p = cjson.decode(prev)
  if p.createdAt then entry.createdAt = p.createdAt end
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
local keep = tonumber(ARGV[4])
redis.call('SET', KEYS[2], KEYS[1], 'PX', keep)
local now = tonumber(ARGV[3])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local e = cjson.decode(all[i + 1])
  local due = e.pruneAt or e.expiresAt
  if due and due <= now then redis.call('HDEL', KEYS[1], all[i]) end
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl >= 0 and ttl < keep then redis.call('PEXPIRE', KEYS[1], keep) end
if ttl == -1 then redis.call('PEXPIRE', KEYS[1], keep) end
return 1`;

// KEYS: the session's key. ARGV: digest.
const FORGET_SCRIPT = `
local user = redis.call('GET', KEYS[1])
if user then redis.call('HDEL', user, ARGV[1]) end
redis.call('DEL', KEYS[1])
return 1`;

// KEYS: one user's hash, the session's key. ARGV: digest. Out of that user's hash only.
const FORGET_FOR_SCRIPT = `
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == KEYS[1] then redis.call('DEL', KEYS[2]) end
return 1`;

/** Several nodes: the registry in Redis, shared. */
export class RedisBackend implements RegistryBackend {
  constructor(
    private readonly client: SessionRegistryRedisClient,
    private readonly prefix: string,
  ) {}

  /** The user's hash: the user key digested, never in clear. */
  private userHash(userKey: string): string {
    return `${this.prefix}u:${digestOf(userKey)}`;
  }

  private sessionKey(digest: SessionDigest): string {
    return `${this.prefix}s:${digest}`;
  }

  async write(digest: SessionDigest, userKey: string, entry: RegistryEntry, keepMs: number) {
    const until = pruneAt(entry, keepMs);
    const keep = Math.max(1, Math.ceil(until) - Date.now());
    await this.client.sendCommand([
      'EVAL',
      WRITE_SCRIPT,
      '2',
      this.userHash(userKey),
      this.sessionKey(digest),
      digest,
      JSON.stringify({ ...entry, pruneAt: until }),
      String(Date.now()),
      String(keep),
    ]);
  }

  async forget(digest: SessionDigest, userKey?: string) {
    const session = this.sessionKey(digest);
    await this.client.sendCommand(
      userKey === undefined
        ? ['EVAL', FORGET_SCRIPT, '1', session, digest]
        : ['EVAL', FORGET_FOR_SCRIPT, '2', this.userHash(userKey), session, digest],
    );
  }

  async list(userKey: string, now: number) {
    const hash = this.userHash(userKey);
    const raw = await this.client.sendCommand(['HGETALL', hash]);
    const fields = toPairs(raw);
    const live = new Map<SessionDigest, RegistryEntry>();
    const stale: string[] = [];
    for (const [digest, json] of fields) {
      const entry = parseEntry(json);
      if (!entry || expired(entry, now)) stale.push(digest);
      else live.set(digest as SessionDigest, entry);
    }
    if (stale.length > 0) await this.client.sendCommand(['HDEL', hash, ...stale]);
    return live;
  }
}

/** HGETALL's answer, as node-redis gives it for sendCommand (a flat array) or as an object. */
function toPairs(raw: unknown): [string, string][] {
  if (Array.isArray(raw)) {
    const pairs: [string, string][] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([String(raw[i]), String(raw[i + 1])]);
    return pairs;
  }
  if (raw !== null && typeof raw === 'object') {
    return Object.entries(raw as Record<string, unknown>).map(([k, v]) => [k, String(v)]);
  }
  return [];
}

function parseEntry(json: string): RegistryEntry | undefined {
  try {
    const entry = JSON.parse(json) as Partial<RegistryEntry> | null;
    if (typeof entry?.sid !== 'string' || typeof entry.lastSeenAt !== 'number') return undefined;
    return { createdAt: entry.lastSeenAt, ...entry } as RegistryEntry;
  } catch {
    return undefined;
  }
}
