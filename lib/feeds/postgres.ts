// Public: pgStoreEvents, connect-pg-simple's change feed. A trigger on the session table
// (postgres-sql.ts) notifies each deleted row's session digest; one client of the app's pool, kept
// checked out, LISTENs for every server of the process. A dropped connection is `down` until that
// client's successor listens again (`up`: the package then reads what it may have missed).
import { checkBoolean } from '../api/setup.js';
import { debug } from '../diagnostics/debug.js';
import type { StoreEventFeed, StoreEventSink } from '../live/store-events.js';
import {
  checkNames,
  creationSql,
  lasting,
  parsePayload,
  quoteIdent,
  triggerProblem,
  triggerSql,
  type PgNames,
  type PgQueryable,
  type PgStoreEventsSqlOptions,
} from './postgres-sql.js';

/** A `NOTIFY` as pg's client emits it. */
export interface PgNotification {
  channel: string;
  payload?: string;
}

/** What `pgStoreEvents` needs of a client checked out of the pool (pg's `PoolClient`). */
export interface PgStoreEventsClient extends PgQueryable {
  on(event: 'notification', listener: (message: PgNotification) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  removeListener(event: 'notification', listener: (message: PgNotification) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'end', listener: () => void): unknown;
  release(error?: Error | boolean): void;
}

/** What `pgStoreEvents` needs of the app's pool (pg's `Pool`). */
export interface PgStoreEventsPool extends PgQueryable {
  connect(): Promise<PgStoreEventsClient>;
}

/**
 * Options for {@link pgStoreEvents}: the pool, and connect-pg-simple's table as its own options
 * name it (`tableName`, `schemaName`).
 *
 * @example
 * ```ts
 * // connect-pg-simple with { pool, schemaName: 'auth', tableName: 'user_sessions' }:
 * pgStoreEvents({ pool, schema: 'auth', table: 'user_sessions' });
 * ```
 */
export interface PgStoreEventsOptions extends PgStoreEventsSqlOptions {
  /**
   * The app's `pg` Pool (the one connect-pg-simple uses, or any on the same database, not through
   * a transaction-pooling PgBouncer: LISTEN needs a session). One of its clients stays checked out
   * for `LISTEN` while a server uses the feed: close Socket.IO before `pool.end()`, which waits
   * for it.
   */
  pool: PgStoreEventsPool;
  /**
   * Creates the triggers ({@link pgStoreEventsSql}) at start when they are missing: the pool's
   * role must own the table. Without it, a missing trigger makes the feed unavailable (a warning,
   * and the package polls the store: `revalidateIntervalMs`, off by default on one node).
   * @default false
   */
  createTrigger?: boolean;
}

/**
 * connect-pg-simple's change feed, for the `storeEvents` option: a session row deleted by anyone
 * (a logout on another app, an admin's `DELETE`, connect-pg-simple's prune of expired rows) ends
 * its sockets at once. Needs the trigger {@link pgStoreEventsSql} gives on the session table (or
 * `createTrigger: true`). Make one per process and give it to every server.
 *
 * @example
 * ```ts
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const store = new (connectPgSimple(session))({ pool });
 * const storeEvents = pgStoreEvents({ pool, createTrigger: true });
 * sessionNamespace(io, session({ store, secret, resave: false, saveUninitialized: false }), {
 *   passport,
 *   storeEvents,
 * });
 * ```
 */
export function pgStoreEvents(options: PgStoreEventsOptions): StoreEventFeed {
  const value: unknown = options;
  if (value === null || typeof value !== 'object') {
    throw new TypeError('pgStoreEvents: options must be an object with a pool');
  }
  const { pool, createTrigger = false } = options;
  const candidate = pool as Partial<PgStoreEventsPool> | null | undefined;
  if (typeof candidate?.connect !== 'function' || typeof candidate.query !== 'function') {
    throw new TypeError('pgStoreEvents: options.pool must be a pg Pool (connect and query)');
  }
  checkBoolean('pgStoreEvents', 'options.createTrigger', createTrigger);
  return new PgListener(pool, checkNames('pgStoreEvents', options), createTrigger);
}

const FIRST_RETRY_MS = 1000;
const LAST_RETRY_MS = 10_000;

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A client checked out for LISTEN, and its own listeners (a broken one may still emit). */
interface Listening {
  client: PgStoreEventsClient;
  /** Takes our listeners off, for a client given back to the pool whole. */
  off(): void;
}

/** One LISTEN shared by every sink; `run` counts starts, so a stopped run's callbacks do nothing. */
class PgListener implements StoreEventFeed {
  readonly name = 'postgres';
  private readonly sinks = new Set<StoreEventSink>();
  private state: 'stopped' | 'starting' | 'up' | 'down' | 'unavailable' = 'stopped';
  private unavailableMessage = '';
  private listening: Listening | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private run = 0;
  private checked = false;
  /** The connect under way, then the close under way: each waits for the one before. */
  private pending: Promise<void> = Promise.resolve();
  private readonly onNotification = (message: PgNotification): void => {
    if (message.channel !== this.names.channel) return;
    const heard = parsePayload(message.payload);
    if (!heard) return;
    if ('digest' in heard) {
      for (const sink of this.sinks) sink.ended({ digest: heard.digest }, heard.reason);
    } else if (this.state === 'up') {
      // Every session is gone, and no row said so: a sink reads every session with sockets
      // again after a `down` (what it may have missed), which is what this needs.
      for (const sink of this.sinks) sink.down('the session table was truncated');
      for (const sink of this.sinks) sink.up();
    }
  };

  constructor(
    private readonly pool: PgStoreEventsPool,
    private readonly names: PgNames,
    private readonly createTrigger: boolean,
  ) {}

  start(sink: StoreEventSink): () => Promise<void> {
    if (!this.sinks.has(sink)) {
      this.sinks.add(sink);
      if (this.sinks.size === 1) {
        this.run++;
        this.state = 'starting';
        const run = this.run;
        this.pending = this.pending.then(() => this.connect(run));
      } else if (this.state === 'up') {
        sink.up();
      } else if (this.state === 'unavailable') {
        sink.unavailable(this.unavailableMessage);
      }
    }
    let stopped = false;
    return async () => {
      if (stopped) return;
      stopped = true;
      await this.stop(sink);
    };
  }

  private async stop(sink: StoreEventSink): Promise<void> {
    if (!this.sinks.delete(sink) || this.sinks.size > 0) return;
    this.run++;
    this.state = 'stopped';
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = this.pending.then(() => this.close());
    await this.pending;
  }

  /** Stops listening and gives the client back to the pool (destroyed if UNLISTEN fails). */
  private async close(): Promise<void> {
    const { listening } = this;
    if (!listening) return;
    this.listening = undefined;
    try {
      await listening.client.query(`UNLISTEN ${quoteIdent(this.names.channel)}`);
    } catch (error) {
      listening.client.release(error instanceof Error ? error : true);
      return;
    }
    listening.off();
    listening.client.release();
  }

  private async connect(run: number): Promise<void> {
    let listening: Listening | undefined;
    try {
      if (!this.checked) {
        const problem = await this.ensureTrigger();
        if (run !== this.run) return;
        if (problem !== undefined) {
          this.unavailable(problem);
          return;
        }
        this.checked = true;
      }
      listening = this.listen(await this.pool.connect());
      if (run !== this.run) return; // stopped meanwhile: close() gives it back
      await listening.client.query(`LISTEN ${quoteIdent(this.names.channel)}`);
    } catch (error) {
      if (run === this.run) this.dropped(listening, reasonOf(error), error);
      return;
    }
    if (run !== this.run || this.listening !== listening) return;
    this.failures = 0;
    this.state = 'up';
    for (const sink of this.sinks) sink.up();
  }

  /**
   * Our listeners on a client just checked out. pg-pool takes its own 'error' listener off a
   * checked-out client: without one of ours, a dropped connection would be an unhandled 'error'
   * event, which ends the process (NOTES.md).
   */
  private listen(client: PgStoreEventsClient): Listening {
    const onError = (error: Error): void => {
      this.dropped(listening, `the LISTEN connection failed: ${error.message}`, error);
    };
    const onEnd = (): void => {
      this.dropped(listening, 'the LISTEN connection ended');
    };
    const listening: Listening = {
      client,
      off: () => {
        client.removeListener('error', onError);
        client.removeListener('end', onEnd);
        client.removeListener('notification', this.onNotification);
      },
    };
    this.listening = listening;
    client.on('error', onError);
    client.on('end', onEnd);
    client.on('notification', this.onNotification);
    return listening;
  }

  /** Why the trigger is not there (after creating it, with `createTrigger`), or undefined. */
  private async ensureTrigger(): Promise<string | undefined> {
    const problem = await triggerProblem(this.pool, this.names);
    if (problem === undefined || !this.createTrigger) return problem;
    try {
      await this.pool.query(creationSql(this.names));
    } catch (error) {
      if (!lasting(error)) throw error;
      return `${problem}, and createTrigger failed (${reasonOf(error)})`;
    }
    return triggerProblem(this.pool, this.names);
  }

  private unavailable(problem: string): void {
    this.state = 'unavailable';
    this.unavailableMessage =
      `pgStoreEvents: ${problem}, so deleted sessions are not heard and the store is polled ` +
      'instead (revalidateIntervalMs; off by default on one node). Run this SQL once, as a role that owns the table (pgStoreEventsSql gives it), ' +
      `or pass createTrigger: true:\n${triggerSql(this.names)}`;
    for (const sink of this.sinks) sink.unavailable(this.unavailableMessage);
  }

  /**
   * The connection dropped, or could not be made: `down` (once, if it was up), the broken client
   * destroyed (it keeps its 'error' listener: it may emit again while it closes), and another try
   * after 1 s, 2 s, … 10 s.
   */
  private dropped(listening: Listening | undefined, reason: string, error?: unknown): void {
    if (this.state === 'stopped' || this.state === 'unavailable') return;
    if (listening !== undefined) {
      if (listening !== this.listening) return; // an old client, already replaced
      this.listening = undefined;
      listening.client.removeListener('notification', this.onNotification);
      listening.client.release(error instanceof Error ? error : new Error(reason));
    }
    const wasUp = this.state === 'up';
    this.state = 'down';
    if (wasUp) for (const sink of this.sinks) sink.down(reason);
    const delay = Math.min(FIRST_RETRY_MS * 2 ** this.failures, LAST_RETRY_MS);
    this.failures++;
    // Only the first drop reaches the sinks (`down`); each failed try is logged here.
    debug('pgStoreEvents: %s; LISTEN again in %d ms', reason, delay);
    const run = this.run;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pending = this.pending.then(() => this.connect(run));
    }, delay);
    this.timer.unref();
  }
}
