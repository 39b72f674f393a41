// Shared presence: the state of every node in Redis, so that a user online on two nodes is one
// user, joins once and leaves once. Each node writes only its own fields (scripts.ts), beats a
// heartbeat, and reaps the nodes whose heartbeat stopped; join and leave come back to every node,
// itself included, on one channel.
import { randomBytes } from 'node:crypto';
import { warnOnce } from '../diagnostics/diagnostics.js';
import {
  CLOSE_SCRIPT,
  HEARTBEAT_SCRIPT,
  JOIN_SCRIPT,
  LEAVE_SCRIPT,
  REAP_SCRIPT,
} from './scripts.js';

/** What shared presence needs of a node-redis (v4 and later) client: the app's own. */
export interface PresenceRedisClient {
  sendCommand(args: string[]): Promise<unknown>;
  /** A second connection, for the channel (a subscribed connection runs no other command). */
  duplicate(): PresenceRedisSubscriber;
}

/** The subscribing connection `duplicate()` gives. */
export interface PresenceRedisSubscriber {
  connect(): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** A join or a leave, as the channel carries it. */
export interface SharedEvent {
  type: 'join' | 'leave';
  userKey: string;
  user: unknown;
  since: number;
}

/** One user online anywhere, as `LIST_SCRIPT` tells. */
export interface SharedEntry {
  userKey: string;
  user: unknown;
  since: number;
  connections: number;
}

export interface SharedOptions {
  heartbeatMs: number;
  expiryMs: number;
  /** The users this node holds, with their connections: written again after a reap or data loss. */
  held(): Iterable<{ userKey: string; connections: number; user: unknown; since: number }>;
  /** Whether this node holds the user now. */
  holds(userKey: string): boolean;
  onEvent(event: SharedEvent): void;
  /** The scope's secret, the same on every node: the client feed's IDs are made with it. */
  onSecret(secret: Buffer): void;
}

const WARNING = 'SOCKET_IO_SESSION_AUTH_PRESENCE_REDIS';

export class SharedPresence {
  /** Fresh per tracker: a node that comes back is a new node, its old counts reaped, never reused. */
  readonly node = randomBytes(12).toString('base64url');
  readonly ready: Promise<void>;
  private readonly heartbeat: NodeJS.Timeout;
  private beaten = false;
  /** A write of this node failed, or a join found it reaped: sync at the next beat. */
  private dirty = false;
  private subscriber: PresenceRedisSubscriber | undefined;
  private closed = false;

  constructor(
    private readonly client: PresenceRedisClient,
    /** The scope's prefix: its namespace (or `*`, a whole server) in a hash tag. */
    readonly prefix: string,
    private readonly options: SharedOptions,
  ) {
    // Real time, not the server's Clock: heartbeats are judged on Redis's clock (TIME), which a
    // test clock cannot move, and a node whose clock stood still would be reaped alive.
    this.heartbeat = setInterval(() => {
      this.beat();
    }, options.heartbeatMs);
    this.heartbeat.unref();
    // At once, before any join of this node: a node that dies before its first interval is known,
    // so it is reaped.
    this.beat();
    this.ready = this.subscribe();
    // Handled here too: an app that never awaits ready() gets a warning, not a crash.
    this.ready.catch(this.warn);
  }

  joined(userKey: string, connections: number, user: unknown, since: number): void {
    const summary = JSON.stringify({ user: user ?? null, since });
    this.eval(JOIN_SCRIPT, [this.node, userKey, String(connections), summary]).then((added) => {
      // Reaped while alive, and put back by this join (JOIN_SCRIPT): the heartbeat will not find
      // it gone, so the join says so, and the next beat writes the users the reap let go.
      if (Number(added) === 1) this.dirty = true;
    }, this.fail);
  }

  left(userKey: string): void {
    this.run(LEAVE_SCRIPT, [this.node, userKey]);
  }

  async count(): Promise<number> {
    return Number(await this.client.sendCommand(['SCARD', `${this.prefix}:online`]));
  }

  async isOnline(userKey: string): Promise<boolean> {
    const reply = await this.client.sendCommand(['SISMEMBER', `${this.prefix}:online`, userKey]);
    return Number(reply) === 1;
  }

  async list(): Promise<SharedEntry[]> {
    // Two native HGETALLs, sent together: one round trip, and no script that holds Redis while
    // it copies every user into Lua. Not atomic: a user who joins or leaves between the two has
    // their connections counted as of the second.
    const [summaries, totals] = await Promise.all([
      this.client.sendCommand(['HGETALL', `${this.prefix}:summary`]),
      this.client.sendCommand(['HGETALL', `${this.prefix}:total`]),
    ]);
    const connections = new Map(pairsOf(totals));
    const entries: SharedEntry[] = [];
    for (const [userKey, summary] of pairsOf(summaries)) {
      const { user, since } = summaryOf(summary);
      entries.push({ userKey, user, since, connections: Number(connections.get(userKey) ?? 0) });
    }
    return entries;
  }

  /** Lets go of this node's users (their leaves published where no other node holds them). */
  close(): void {
    // Twice is once: a second close (or one after a failed subscribe) lets go of nothing more.
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.run(CLOSE_SCRIPT, [this.node]);
    const subscriber = this.subscriber as
      { destroy?: () => void; disconnect?: () => unknown } | undefined;
    this.subscriber = undefined;
    if (subscriber === undefined) return;
    // node-redis 5 and later: destroy; 4: disconnect.
    if (typeof subscriber.destroy === 'function') subscriber.destroy();
    else if (typeof subscriber.disconnect === 'function') void subscriber.disconnect();
  }

  private async subscribe(): Promise<void> {
    // The secret first: no event is heard (and no feed ID made) before this node has it. The
    // first node of the scope sets it; the others, and a node that comes back, read that one.
    const key = `${this.prefix}:secret`;
    const [, secret] = await Promise.all([
      this.client.sendCommand(['SET', key, randomBytes(32).toString('base64url'), 'NX']),
      this.client.sendCommand(['GET', key]),
    ]);
    if (typeof secret !== 'string' || secret === '') throw new Error(`no secret at ${key}`);
    this.options.onSecret(Buffer.from(secret));
    const subscriber = this.client.duplicate();
    this.subscriber = subscriber;
    subscriber.on('error', (error) => {
      this.warn(error);
    });
    await subscriber.connect();
    await subscriber.subscribe(`${this.prefix}:events`, (message) => {
      const event = eventOf(message);
      if (event) this.options.onEvent(event);
    });
  }

  /** The heartbeat, then a reap of the nodes whose heartbeat has stopped. */
  private beat(): void {
    const first = !this.beaten;
    this.beaten = true;
    this.eval(HEARTBEAT_SCRIPT, [this.node]).then((added) => {
      // Not there and not the first: reaped (Redis away longer than the expiry) or Redis lost its
      // data. Or one of this node's writes failed, or a join found it reaped. The writes are
      // idempotent: this node writes its own fields again.
      if ((Number(added) === 1 && !first) || this.dirty) this.sync();
    }, this.warn);
    this.run(REAP_SCRIPT, [String(this.options.expiryMs)]);
  }

  /** Writes this node's users again, and lets go of those Redis has that it no longer holds. */
  private sync(): void {
    this.dirty = false;
    for (const { userKey, connections, user, since } of this.options.held()) {
      this.joined(userKey, connections, user, since);
    }
    this.client.sendCommand(['SMEMBERS', `${this.prefix}:node:${this.node}`]).then((keys) => {
      // Read now, after the reply: a user held again since was written after the SMEMBERS, and
      // one let go since has had its own leave (a second one finds nothing to drop).
      for (const key of Array.isArray(keys) ? keys.map(String) : []) {
        if (!this.options.holds(key)) this.left(key);
      }
    }, this.fail);
  }

  private eval(script: string, args: string[]): Promise<unknown> {
    return this.client.sendCommand(['EVAL', script, '0', this.prefix, ...args]);
  }

  private run(script: string, args: string[]): void {
    this.eval(script, args).catch(this.fail);
  }

  private readonly fail = (error: unknown): void => {
    this.dirty = true;
    this.warn(error);
  };

  private readonly warn = (error: unknown): void => {
    const message = error instanceof Error ? error.message : String(error);
    warnOnce(
      WARNING,
      `presence: a Redis command failed (${message}); this node writes its users again at its next heartbeat.`,
    );
  };
}

/** An HGETALL reply as [field, value] pairs: a flat array (RESP2), or a map (RESP3). */
function pairsOf(reply: unknown): [string, unknown][] {
  if (Array.isArray(reply)) {
    const pairs: [string, unknown][] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([String(reply[i]), reply[i + 1]]);
    return pairs;
  }
  if (reply instanceof Map) return [...reply].map(([k, v]) => [String(k), v]);
  if (reply !== null && typeof reply === 'object') return Object.entries(reply);
  return [];
}

function summaryOf(value: unknown): { user: unknown; since: number } {
  try {
    const parsed = JSON.parse(String(value)) as { user?: unknown; since?: unknown } | null;
    return { user: parsed?.user ?? null, since: Number(parsed?.since ?? 0) };
  } catch {
    return { user: null, since: 0 };
  }
}

function eventOf(message: string): SharedEvent | undefined {
  try {
    const [type, userKey, summary] = JSON.parse(message) as unknown[];
    if ((type !== 'join' && type !== 'leave') || typeof userKey !== 'string') return undefined;
    return { type, userKey, ...summaryOf(summary) };
  } catch {
    return undefined;
  }
}
