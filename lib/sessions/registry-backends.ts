// Where sessionRegistry keeps each user's sessions: this process's memory (one node), or Redis
// (every node): one hash per user, keyed by a digest of the user key, one field per session
// digest, and per session a small key naming its user's hash, so that a destroy (which knows only
// the session) finds its entry. Everything expires with the sessions; expired fields are pruned
// when written or read.
import { digestOf, type SessionDigest } from '../core/state.js';

/** One session as the registry keeps it: the only place its ID is kept outside the store. */
export interface RegistryEntry {
  sid: string;
  createdAt: number;
  lastSeenAt: number;
  userAgent?: string | undefined;
  ip?: string | undefined;
  expiresAt?: number | undefined;
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
  /** The session is gone, or has no user any more. */
  forget(digest: SessionDigest): Promise<void>;
  /** The user's sessions by digest, the expired ones pruned. */
  list(userKey: string, now: number): Promise<Map<SessionDigest, RegistryEntry>>;
}

const expired = (entry: RegistryEntry, now: number): boolean =>
  entry.expiresAt !== undefined && entry.expiresAt <= now;

/** One node: a map per user, and the user of each session. */
export class MemoryBackend implements RegistryBackend {
  private readonly byUser = new Map<string, Map<SessionDigest, RegistryEntry>>();
  /** Each session's user, in the order they were last written: the oldest are swept first. */
  private readonly userOf = new Map<SessionDigest, { userKey: string; until: number }>();

  /** How many sessions it holds, over every user (the specs' check that it stays bounded). */
  get size(): number {
    return this.userOf.size;
  }

  write(digest: SessionDigest, userKey: string, entry: RegistryEntry, keepMs: number) {
    const now = entry.lastSeenAt;
    const before = this.userOf.get(digest);
    if (before && before.userKey !== userKey) this.drop(digest);
    let sessions = this.byUser.get(userKey);
    if (!sessions) this.byUser.set(userKey, (sessions = new Map<SessionDigest, RegistryEntry>()));
    const old = sessions.get(digest);
    sessions.set(digest, { ...entry, createdAt: old?.createdAt ?? entry.createdAt });
    this.userOf.delete(digest);
    this.userOf.set(digest, { userKey, until: entry.expiresAt ?? now + keepMs });
    this.sweep(now);
    return Promise.resolve();
  }

  forget(digest: SessionDigest) {
    this.drop(digest);
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

  /** The few oldest writes whose time has passed go: amortised, so every write stays O(1). */
  private sweep(now: number): void {
    let checked = 0;
    for (const [digest, { until }] of this.userOf) {
      if (until > now || ++checked > 2) break;
      this.drop(digest);
    }
  }

  private drop(digest: SessionDigest): void {
    const mine = this.userOf.get(digest);
    if (!mine) return;
    this.userOf.delete(digest);
    const sessions = this.byUser.get(mine.userKey);
    sessions?.delete(digest);
    if (sessions?.size === 0) this.byUser.delete(mine.userKey);
  }
}

// KEYS: the user's hash, the session's key. ARGV: digest, entry (JSON), now, keepMs. The entry
// keeps its createdAt; the other user's hash (a session that changed users) loses it; the hash
// lives as long as its longest session.
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
  if e.expiresAt and e.expiresAt <= now then redis.call('HDEL', KEYS[1], all[i]) end
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
    const keep = Math.max(1, Math.ceil(entry.expiresAt ?? entry.lastSeenAt + keepMs) - Date.now());
    await this.client.sendCommand([
      'EVAL',
      WRITE_SCRIPT,
      '2',
      this.userHash(userKey),
      this.sessionKey(digest),
      digest,
      JSON.stringify(entry),
      String(Date.now()),
      String(keep),
    ]);
  }

  async forget(digest: SessionDigest) {
    await this.client.sendCommand(['EVAL', FORGET_SCRIPT, '1', this.sessionKey(digest), digest]);
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
