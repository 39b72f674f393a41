// The connect-redis feed: Redis's keyevent notifications of deleted, expired and evicted keys, on
// one subscribed duplicate of the app's node-redis client per feed object, shared by every server
// (sink) of the process that was given that feed. Redis publishes them only when its
// `notify-keyspace-events` setting says so: checked at start and after every reconnection (a
// restarted Redis lost a CONFIG SET), and set when allowed.
import type { StoreEventFeed, StoreEventSink } from '../live/store-events.js';

/** What the feed needs of a node-redis (v4 and later) client: the app's own. */
export interface RedisStoreEventsClient {
  sendCommand(args: string[]): Promise<unknown>;
  /** A second connection, for the subscription (a subscribed connection runs no other command). */
  duplicate(): RedisStoreEventsSubscriber;
  /** node-redis keeps its options here: the database the client selected. */
  readonly options?: { readonly database?: number } | undefined;
}

/** The subscribing connection `duplicate()` gives. */
export interface RedisStoreEventsSubscriber {
  connect(): Promise<unknown>;
  subscribe(
    channels: string[],
    listener: (message: string, channel: string) => void,
  ): Promise<unknown>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end' | 'reconnecting' | 'ready', listener: () => void): unknown;
}

/** Options for {@link redisStoreEvents}. */
export interface RedisStoreEventsOptions {
  /** The app's node-redis client (v4 and later), connected: the one connect-redis uses. */
  client: RedisStoreEventsClient;
  /**
   * connect-redis's `prefix`: keys that start with it are sessions.
   * @default 'sess:'
   */
  prefix?: string;
  /**
   * The Redis database the sessions are in.
   * @default the client's own (`database` of createClient's options), else 0
   */
  database?: number;
  /**
   * Turn on the keyspace events the feed needs (`CONFIG SET notify-keyspace-events`, the flags
   * already set kept) when Redis has them off. With `false`, or on a Redis that refuses
   * `CONFIG SET`, a setting without them leaves the feed unavailable (a warning; revalidation
   * goes on as without it). On a Redis that refuses `CONFIG` altogether (most managed ones), set
   * them in its own settings and pass `false`: the feed then trusts the setting it cannot read.
   * @default true
   */
  configure?: boolean;
}

/** The keyevent channels heard, and what each says of the session. */
const EVENTS: Readonly<Record<string, 'deleted' | 'expired' | 'evicted'>> = {
  del: 'deleted',
  unlink: 'deleted',
  expired: 'expired',
  evicted: 'evicted',
};
/** keyevent notifications (E), of generic commands (g: del, unlink), expiries (x), evictions (e). */
const NEEDED = ['E', 'g', 'x', 'e'];
/** The classes `A` stands for. */
const ALL_CLASSES = 'g$lshzxetd';

/**
 * A {@link StoreEventFeed} for connect-redis: the sockets of a session deleted (`DEL`, `UNLINK`),
 * expired (its TTL) or evicted (`maxmemory`) in Redis end at once, on every node, whoever deleted
 * it. Needs keyevent notifications of generic commands, expiries and evictions
 * (`notify-keyspace-events` with `E`, `g`, `x` and `e`): turned on at start unless `configure` is
 * false. Costs one pub/sub message per deleted or expired key of the database, per node.
 *
 * @example
 * ```ts
 * const client = createClient({ url: process.env.REDIS_URL });
 * await client.connect();
 * app.use(session({ store: new RedisStore({ client }), secret, resave: false, saveUninitialized: false }));
 * sessionNamespace(io, sessionMiddleware, { passport, storeEvents: redisStoreEvents({ client }) });
 * ```
 */
export function redisStoreEvents(options: RedisStoreEventsOptions): StoreEventFeed {
  const helper = 'redisStoreEvents';
  const value: unknown = options;
  if (value === null || typeof value !== 'object') {
    throw new TypeError(`${helper}: options must be an object with the node-redis client`);
  }
  const { client, prefix = 'sess:', configure = true } = options;
  const { sendCommand, duplicate } = (client as Partial<RedisStoreEventsClient> | undefined) ?? {};
  if (typeof sendCommand !== 'function' || typeof duplicate !== 'function') {
    throw new TypeError(`${helper}: options.client must be a node-redis client (v4 or later)`);
  }
  if (typeof prefix !== 'string') throw new TypeError(`${helper}: options.prefix must be a string`);
  if (typeof configure !== 'boolean') {
    throw new TypeError(`${helper}: options.configure must be a boolean`);
  }
  const database = options.database ?? client.options?.database ?? 0;
  if (!Number.isInteger(database) || database < 0) {
    throw new TypeError(`${helper}: options.database must be a database number`);
  }
  return new RedisFeed(client, prefix, database, configure);
}

type State = 'closed' | 'starting' | 'up' | 'down' | 'unavailable';

class RedisFeed implements StoreEventFeed {
  readonly name = 'redis';
  private readonly sinks = new Set<StoreEventSink>();
  private subscriber: RedisStoreEventsSubscriber | undefined;
  private state: State = 'closed';
  private message = '';

  constructor(
    private readonly client: RedisStoreEventsClient,
    private readonly prefix: string,
    private readonly database: number,
    private readonly configure: boolean,
  ) {}

  start(sink: StoreEventSink): () => Promise<void> {
    this.sinks.add(sink);
    if (this.state === 'closed') void this.open();
    else if (this.state === 'up') sink.up();
    else if (this.state === 'unavailable') sink.unavailable(this.message);
    return async () => {
      if (!this.sinks.delete(sink) || this.sinks.size > 0) return;
      await this.close();
    };
  }

  /** The first sink: the settings checked, then one subscription for every sink. */
  private async open(): Promise<void> {
    this.state = 'starting';
    if (!(await this.checkSettings())) return;
    const subscriber = this.client.duplicate();
    this.subscriber = subscriber;
    // Every drop is a 'down' (events may be missed), every connection after one a check of the
    // settings then an 'up' (one full revalidation round). node-redis resubscribes by itself.
    subscriber.on('error', (error) => {
      this.down(`the Redis subscription failed: ${error.message}`);
    });
    subscriber.on('end', () => {
      this.down('the Redis subscription ended');
    });
    subscriber.on('reconnecting', () => {
      this.down('the Redis subscription is reconnecting');
    });
    subscriber.on('ready', () => {
      if (this.state === 'down') void this.again();
    });
    try {
      await subscriber.connect();
      const db = `__keyevent@${this.database}__:`;
      await subscriber.subscribe(
        Object.keys(EVENTS).map((event) => db + event),
        (key, channel) => {
          this.heard(key, channel.slice(db.length));
        },
      );
    } catch (error) {
      if (this.subscriber !== subscriber) return;
      // Never subscribed: nothing would resubscribe it. Polling goes on as without a feed.
      this.unavailable(`the Redis subscription failed: ${messageOf(error)}`);
      void this.close(false);
      return;
    }
    // (A drop meanwhile made it 'down': its 'ready' brings the 'up'.)
    if (this.subscriber === subscriber && (this.state as State) === 'starting') this.up();
  }

  private heard(key: string, event: string): void {
    if (!key.startsWith(this.prefix)) return;
    const reason = Object.hasOwn(EVENTS, event) ? EVENTS[event] : undefined;
    if (reason === undefined) return;
    const id = key.slice(this.prefix.length);
    for (const sink of this.sinks) sink.ended({ id }, reason);
  }

  /** Connected again after a drop: Redis may have restarted without the settings. */
  private async again(): Promise<void> {
    this.state = 'starting';
    if (await this.checkSettings()) this.up();
  }

  private up(): void {
    if (this.state === 'closed') return;
    this.state = 'up';
    for (const sink of this.sinks) sink.up();
  }

  private down(reason: string): void {
    if (this.state !== 'up' && this.state !== 'starting') return;
    this.state = 'down';
    for (const sink of this.sinks) sink.down(reason);
  }

  /** Whether Redis sends the events; if not, tries to turn them on, else says why not. */
  private async checkSettings(): Promise<boolean> {
    let flags: string;
    try {
      flags = settingOf(await this.client.sendCommand(['CONFIG', 'GET', 'notify-keyspace-events']));
    } catch (error) {
      // A managed Redis that refuses CONFIG: with configure false, the setting is the operator's.
      if (!this.configure) return this.state !== 'closed';
      return this.unavailable(
        `CONFIG GET notify-keyspace-events was refused (${messageOf(error)}), so whether Redis ` +
          `sends the keyspace events the feed needs is unknown: once notify-keyspace-events ` +
          `includes ${NEEDED.join('')} in your Redis's settings, pass configure: false`,
      );
    }
    const missing = missingFlags(flags);
    if (missing === '') return this.state !== 'closed';
    const wanted = `notify-keyspace-events must include ${NEEDED.join('')} (it is '${flags}', missing ${missing})`;
    if (!this.configure) return this.unavailable(`${wanted}, and configure is false`);
    try {
      await this.client.sendCommand(['CONFIG', 'SET', 'notify-keyspace-events', flags + missing]);
    } catch (error) {
      return this.unavailable(
        `${wanted}, and CONFIG SET was refused (${messageOf(error)}): set it in ` +
          "your Redis's settings (on a managed Redis, its parameter group)",
      );
    }
    return this.state !== 'closed';
  }

  private unavailable(message: string): false {
    if (this.state === 'closed') return false;
    this.state = 'unavailable';
    this.message = message;
    for (const sink of this.sinks) sink.unavailable(message);
    return false;
  }

  /** Closes the subscription; `forget`: the feed is stopped (else it stays as it is). */
  private async close(forget = true): Promise<void> {
    if (forget) this.state = 'closed';
    const subscriber = this.subscriber as
      { destroy?: () => void; disconnect?: () => Promise<unknown> } | undefined;
    this.subscriber = undefined;
    // node-redis 5 and later: destroy; 4: disconnect.
    if (typeof subscriber?.destroy === 'function') subscriber.destroy();
    else if (typeof subscriber?.disconnect === 'function') await subscriber.disconnect();
  }
}

/** The value of a CONFIG GET reply: [name, value] (RESP2), or a map or object (RESP3). */
function settingOf(reply: unknown): string {
  if (Array.isArray(reply)) return String(reply[1] ?? '');
  if (reply instanceof Map) return String([...reply.values()][0] ?? '');
  if (reply !== null && typeof reply === 'object') return String(Object.values(reply)[0] ?? '');
  return '';
}

/** The flags of {@link NEEDED} that `flags` lacks (`A` stands for every class). */
export function missingFlags(flags: string): string {
  const has = flags.includes('A') ? flags + ALL_CLASSES : flags;
  return NEEDED.filter((flag) => !has.includes(flag)).join('');
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
