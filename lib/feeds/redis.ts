// The connect-redis feed: Redis's keyevent notifications of deleted, expired and evicted keys, on
// one subscribed duplicate of the app's node-redis client per feed object, shared by every server
// (sink) of the process that was given that feed. Redis publishes them only when its
// `notify-keyspace-events` setting says so: checked at start and after every reconnection (a
// restarted Redis lost a CONFIG SET), and set when allowed (redis-settings.ts). Only Redis's own
// refusal makes it unavailable; a command lost with its connection is a `down`, tried again.
import { debug } from '../diagnostics/debug.js';
import type { StoreEventFeed, StoreEventSink } from '../live/store-events.js';
import { type Check, isErrorReply, keyspaceEvents, messageOf } from './redis-settings.js';

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

/**
 * A {@link StoreEventFeed} for connect-redis: the sockets of a session deleted (`DEL`, `UNLINK`)
 * or evicted (`maxmemory`) in Redis end at once, on every node, whoever deleted it; one whose TTL
 * lapsed, when Redis expires the key (a read, or its background cycle: seconds late among many
 * keys with a TTL; see docs/store-events.md). Needs keyevent notifications of generic commands, expiries and evictions
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

const FIRST_RETRY_MS = 1000;
const LAST_RETRY_MS = 10_000;

class RedisFeed implements StoreEventFeed {
  readonly name = 'redis';
  private readonly sinks = new Set<StoreEventSink>();
  private subscriber: RedisStoreEventsSubscriber | undefined;
  private state: State = 'closed';
  private message = '';
  /** Counts opens and closes: a run that was closed meanwhile stops at its next await. */
  private run = 0;
  /** The subscriber's SUBSCRIBE succeeded (node-redis resubscribes it after a reconnection). */
  private subscribed = false;
  private retry: NodeJS.Timeout | undefined;
  private failures = 0;
  /** One listener for every SUBSCRIBE of the run: node-redis keeps it once, whatever the tries. */
  private readonly onMessage = (key: string, channel: string): void => {
    this.heard(key, channel.slice(`__keyevent@${this.database}__:`.length));
  };

  constructor(
    private readonly client: RedisStoreEventsClient,
    private readonly prefix: string,
    private readonly database: number,
    private readonly configure: boolean,
  ) {}

  start(sink: StoreEventSink): () => Promise<void> {
    this.sinks.add(sink);
    if (this.state === 'closed') logged(this.open(++this.run), 'opening the feed');
    else if (this.state === 'up') sink.up();
    else if (this.state === 'unavailable') sink.unavailable(this.message);
    return async () => {
      if (!this.sinks.delete(sink) || this.sinks.size > 0) return;
      await this.close();
    };
  }

  /** The first sink: the settings checked, then one subscription for every sink. */
  private async open(run: number): Promise<void> {
    this.state = 'starting';
    const check = await this.checkSettings();
    if (run !== this.run || check === 'refused') return;
    let subscriber: RedisStoreEventsSubscriber;
    try {
      subscriber = this.client.duplicate();
    } catch (error) {
      this.unavailable(`the client could not be duplicated: ${messageOf(error)}`);
      return;
    }
    this.subscriber = subscriber;
    // Every drop is a 'down' (events may be missed), every connection after one a check of the
    // settings then an 'up' (one full revalidation round). node-redis resubscribes by itself. A
    // closed subscriber's late words are not this one's.
    const mine = (): boolean => this.subscriber === subscriber;
    subscriber.on('error', (error) => {
      if (mine()) this.down(`the Redis subscription failed: ${error.message}`);
    });
    subscriber.on('end', () => {
      if (mine()) this.down('the Redis subscription ended');
    });
    subscriber.on('reconnecting', () => {
      if (mine()) this.down('the Redis subscription is reconnecting');
    });
    subscriber.on('ready', () => {
      if (mine() && this.state === 'down') logged(this.again(run), 'a reconnection');
    });
    try {
      await subscriber.connect();
    } catch (error) {
      if (run !== this.run) return;
      // Never connected: nothing would reconnect it. Polling goes on as without a feed.
      this.unavailable(`the Redis subscription failed: ${messageOf(error)}`);
      logged(this.close(false), 'closing the subscription');
      return;
    }
    if (run !== this.run) return;
    if (check === 'failed') this.failed(run, 'the settings check failed');
    else await this.subscribe(run);
  }

  /** SUBSCRIBE, the first time or after a try that failed; then `up`, if nothing dropped. */
  private async subscribe(run: number): Promise<void> {
    const db = `__keyevent@${this.database}__:`;
    const channels = Object.keys(EVENTS).map((event) => db + event);
    try {
      if (!this.subscribed) await this.subscriber?.subscribe(channels, this.onMessage);
    } catch (error) {
      if (run !== this.run || this.subscribed) return;
      if (!isErrorReply(error)) {
        // The connection dropped under it: nothing resubscribes a SUBSCRIBE that failed.
        this.failed(run, `the Redis subscription failed: ${messageOf(error)}`);
        return;
      }
      this.unavailable(`the Redis subscription was refused: ${messageOf(error)}`);
      logged(this.close(false), 'closing the subscription');
      return;
    }
    if (run !== this.run) return;
    this.subscribed = true;
    this.failures = 0;
    // (A drop meanwhile made it 'down': its 'ready' brings the 'up'.)
    if (this.state === 'starting') this.up();
  }

  private heard(key: string, event: string): void {
    if (!key.startsWith(this.prefix)) return;
    const reason = Object.hasOwn(EVENTS, event) ? EVENTS[event] : undefined;
    if (reason === undefined) return;
    const id = key.slice(this.prefix.length);
    for (const sink of this.sinks) sink.ended({ id }, reason);
  }

  /** Connected again after a drop (or a failed try): Redis may have restarted without the settings. */
  private async again(run: number): Promise<void> {
    this.state = 'starting';
    const check = await this.checkSettings();
    if (run !== this.run || check === 'refused') return;
    // A drop during the check made it 'down' again: the next 'ready' tries again.
    if ((this.state as State) !== 'starting') return;
    if (check === 'failed') this.failed(run, 'the settings check failed');
    else await this.subscribe(run);
  }

  /** A command failed (not refused): down, and tried again after 1 s, 2 s, … 10 s. */
  private failed(run: number, reason: string): void {
    this.down(reason);
    clearTimeout(this.retry);
    const delay = Math.min(FIRST_RETRY_MS * 2 ** this.failures, LAST_RETRY_MS);
    this.failures++;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (run === this.run && this.state === 'down') logged(this.again(run), 'a retry');
    }, delay).unref();
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

  /** Whether Redis sends the events (turned on if need be); refused: unavailable, and why. */
  private async checkSettings(): Promise<Check> {
    const found = await keyspaceEvents(this.client, this.configure);
    return found.check === 'refused' ? this.unavailable(found.message) : found.check;
  }

  private unavailable(message: string): 'refused' {
    if (this.state === 'closed') return 'refused';
    this.state = 'unavailable';
    this.message = message;
    for (const sink of this.sinks) sink.unavailable(message);
    return 'refused';
  }

  /** Closes the subscription; `forget`: the feed is stopped (else it stays as it is). */
  private async close(forget = true): Promise<void> {
    if (forget) {
      this.state = 'closed';
      this.run++;
    }
    clearTimeout(this.retry);
    this.retry = undefined;
    this.subscribed = false;
    const subscriber = this.subscriber as
      { destroy?: () => void; disconnect?: () => Promise<unknown> } | undefined;
    this.subscriber = undefined;
    // node-redis 5 and later: destroy; 4: disconnect. Before 6, both throw on a client that never
    // connected (ClientClosedError): it holds nothing, then.
    try {
      if (typeof subscriber?.destroy === 'function') subscriber.destroy();
      else if (typeof subscriber?.disconnect === 'function') await subscriber.disconnect();
    } catch (error) {
      debug('redisStoreEvents: closing the subscription: %O', error);
    }
  }
}

/** A background step's failure is logged, never an unhandled rejection. */
function logged(work: Promise<void>, what: string): void {
  work.catch((error: unknown) => {
    debug('redisStoreEvents: %s failed: %O', what, error);
  });
}
