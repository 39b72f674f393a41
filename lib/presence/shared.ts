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
  LIST_SCRIPT,
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
  onEvent(event: SharedEvent): void;
}

const WARNING = 'SOCKET_IO_SESSION_AUTH_PRESENCE_REDIS';

export class SharedPresence {
  /** Fresh per tracker: a node that comes back is a new node, its old counts reaped, never reused. */
  readonly node = randomBytes(12).toString('base64url');
  readonly ready: Promise<void>;
  private readonly heartbeat: NodeJS.Timeout;
  private beaten = false;
  private subscriber: PresenceRedisSubscriber | undefined;

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
    this.run(JOIN_SCRIPT, [this.node, userKey, String(connections), summary]);
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
    const reply = (await this.eval(LIST_SCRIPT, [])) as unknown[];
    const entries: SharedEntry[] = [];
    for (let i = 0; i + 2 < reply.length; i += 3) {
      const { user, since } = summaryOf(reply[i + 1]);
      entries.push({ userKey: String(reply[i]), user, since, connections: Number(reply[i + 2]) });
    }
    return entries;
  }

  /** Lets go of this node's users (their leaves published where no other node holds them). */
  close(): void {
    clearInterval(this.heartbeat);
    this.run(CLOSE_SCRIPT, [this.node]);
    const subscriber = this.subscriber as { destroy?: () => void; disconnect?: () => unknown };
    this.subscriber = undefined;
    // node-redis 5 and later: destroy; 4: disconnect.
    if (typeof subscriber.destroy === 'function') subscriber.destroy();
    else if (typeof subscriber.disconnect === 'function') void subscriber.disconnect();
  }

  private async subscribe(): Promise<void> {
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
      // data. HSET is idempotent: this node writes its own fields again.
      if (Number(added) === 1 && !first) {
        for (const { userKey, connections, user, since } of this.options.held()) {
          this.joined(userKey, connections, user, since);
        }
      }
    }, this.warn);
    this.run(REAP_SCRIPT, [String(this.options.expiryMs)]);
  }

  private eval(script: string, args: string[]): Promise<unknown> {
    return this.client.sendCommand(['EVAL', script, '0', this.prefix, ...args]);
  }

  private run(script: string, args: string[]): void {
    this.eval(script, args).catch(this.warn);
  }

  private readonly warn = (error: unknown): void => {
    const message = error instanceof Error ? error.message : String(error);
    warnOnce(
      WARNING,
      `presence: a Redis command failed (${message}); the shared view may miss a change until this node writes its users again (after a reap or a data loss).`,
    );
  };
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
