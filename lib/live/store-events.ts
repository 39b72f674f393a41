// A store's change feed, wired to the sockets: a session deleted, expired or evicted in the store
// (by anyone: an admin script, a TTL, another app) ends its sockets on this node at once, instead
// of at the next revalidation round. Each node subscribes itself, so each hears each event once.
// One sink per server and feed; the feed's state decides how often revalidation runs
// (revalidation.ts `eventsUp`), and a feed back after a drop runs one full round.
import type { Server } from 'socket.io';
import { serverState, type ServerState } from '../core/state.js';
import { debug } from '../diagnostics/debug.js';
import { publish, warnOnce } from '../diagnostics/diagnostics.js';
import { forgetHeld, heard } from './held-ends.js';
import { fullRound } from './revalidation.js';

/**
 * A session store's change feed: tells the package which sessions were deleted, expired or
 * evicted in the store. Ready ones: `redisStoreEvents` (connect-redis) and `pgStoreEvents`
 * (connect-pg-simple); any other store can implement this.
 *
 * @example
 * ```ts
 * const feed: StoreEventFeed = {
 *   start(sink) {
 *     const stop = myStore.onDelete((sessionID) => sink.ended({ id: sessionID }, 'deleted'));
 *     sink.up();
 *     return async () => stop();
 *   },
 * };
 * sessionNamespace(io, { session, passport, storeEvents: feed });
 * ```
 */
export interface StoreEventFeed {
  /**
   * The feed's name in the `store-events` diagnostics channel and warnings.
   * @default 'custom'
   */
  readonly name?: string;
  /**
   * Starts telling `sink` (one per Socket.IO server; a feed may serve several servers of one
   * process from one subscription). Returns a function that stops telling this sink.
   */
  start(sink: StoreEventSink): () => Promise<void>;
}

/** What a {@link StoreEventFeed} tells the package. */
export interface StoreEventSink {
  /**
   * A session is gone from the store: by its ID (as a Redis keyspace event gives it), or by its
   * digest (as the Postgres trigger computes it, so that the ID never travels).
   */
  ended(
    session: { id: string } | { digest: string },
    reason: 'deleted' | 'expired' | 'evicted',
  ): void;
  /**
   * The feed hears events: the first time, or again after {@link down}. After a `down`, the
   * package reads every session with sockets once (what was missed meanwhile).
   */
  up(): void;
  /** The feed may be missing events from now on (its connection dropped). */
  down(reason: string): void;
  /**
   * The feed cannot work (keyspace events off and `CONFIG SET` refused; the trigger missing): the
   * package warns once and polls the store (`revalidateIntervalMs`; off by default on one node).
   */
  unavailable(message: string): void;
}

/** A store event feed started on a server (`ServerState.feeds`). */
export interface FeedRecord {
  /** The feed's name, for diagnostics (`redis`, `postgres`, or `custom`). */
  readonly name: string;
  /**
   * `starting` until its first `up`; `resync` while the one full round after a `down` runs.
   * Revalidation is rare only while every feed of the server is `up` or `resync`.
   */
  state: 'starting' | 'up' | 'down' | 'resync' | 'unavailable';
  /** What the feed's `start` returned: stops telling this server. */
  stop: (() => Promise<void>) | undefined;
}

/** The warning given once when a feed cannot work (`unavailable`). */
export const STORE_EVENTS_OFF = 'SOCKET_IO_SESSION_AUTH_STORE_EVENTS_OFF';

/**
 * Starts `feed` on the server of a namespace (sessionNamespace, passportNamespace): once per feed
 * and server, however many namespaces give it. The feed is stopped when the HTTP server closes.
 */
export function startStoreEvents(io: Server, feed: StoreEventFeed): void {
  const server = serverState(io);
  if (server.feeds.has(feed)) return;
  const name = typeof feed.name === 'string' && feed.name !== '' ? feed.name : 'custom';
  const record: FeedRecord = { name, state: 'starting', stop: undefined };
  server.feeds.set(feed, record);
  hookClose(server);
  let stop: unknown;
  try {
    stop = feed.start(sinkOf(server, feed, record));
  } catch (error) {
    debug('store events: the %s feed failed to start: %O', name, error);
    unavailable(record, `the ${name} feed failed to start (${String(error)})`);
    return;
  }
  if (typeof stop === 'function') record.stop = stop as () => Promise<void>;
  else refuse(server, feed, record, stop);
}

/**
 * A `start` that returned no stop function (an async one: a promise of it) is refused: its sink
 * is cut off (a new record takes its place), and a promised stop is called once it comes.
 */
function refuse(server: ServerState, feed: StoreEventFeed, record: FeedRecord, got: unknown): void {
  const refused: FeedRecord = { name: record.name, state: 'starting', stop: undefined };
  server.feeds.set(feed, refused);
  const thenable = typeof (got as { then?: unknown } | null)?.then === 'function';
  unavailable(
    refused,
    `the ${record.name} feed's start returned ${thenable ? 'a promise' : typeof got} instead of ` +
      'its stop function (start must return it at once, not be async, and call sink.up() once ' +
      'it hears events)',
  );
  if (!thenable) return;
  Promise.resolve(got as Promise<unknown>)
    .then((late) => (typeof late === 'function' ? (late as () => unknown)() : undefined))
    .catch((error: unknown) => {
      debug('store events: stopping the refused %s feed failed: %O', record.name, error);
    });
}

function sinkOf(server: ServerState, feed: StoreEventFeed, record: FeedRecord): StoreEventSink {
  // Calls after the feed was stopped (a late reply) are dropped. A server attached to its HTTP
  // server after the namespaces were set up is hooked at the feed's first word.
  const live = (): boolean => {
    hookClose(server);
    return server.feeds.get(feed) === record;
  };
  return {
    ended(session, reason) {
      if (live()) heard(server, session, reason);
    },
    up() {
      if (live()) up(server, record);
    },
    down(reason) {
      if (!live() || record.state === 'down') return;
      record.state = 'down';
      publish('storeEvents', () => ({ feed: record.name, state: 'down', message: reason }));
    },
    unavailable(message) {
      if (live()) unavailable(record, message);
    },
  };
}

function up(server: ServerState, record: FeedRecord): void {
  if (record.state === 'up' || record.state === 'resync') return;
  // Not up until now (down, still starting, unavailable): a session deleted since its sockets were
  // read was not heard. With no socket here, there is nothing to read again.
  const missed = server.bySession.size > 0;
  if (!missed) {
    record.state = 'up';
    publish('storeEvents', () => ({ feed: record.name, state: 'up' }));
    return;
  }
  // One full round finds what was missed, then events alone.
  record.state = 'resync';
  publish('storeEvents', () => ({ feed: record.name, state: 'resync' }));
  fullRound(server)
    .catch((error: unknown) => {
      debug('store events: the full round before events alone failed: %O', error);
    })
    .finally(() => {
      if (record.state !== 'resync') return;
      record.state = 'up';
      publish('storeEvents', () => ({ feed: record.name, state: 'up' }));
    });
}

function unavailable(record: FeedRecord, message: string): void {
  if (record.state === 'unavailable') return;
  record.state = 'unavailable';
  warnOnce(
    STORE_EVENTS_OFF,
    `storeEvents: ${message}. Sockets of sessions ended in the store are found by revalidation ` +
      '(revalidateIntervalMs; off by default on one node) instead.',
  );
  publish('storeEvents', () => ({ feed: record.name, state: 'unavailable', message }));
}

/** The server's feeds stop when its HTTP server closes (io.close() closes it). */
function hookClose(server: ServerState): void {
  if (server.feedsCloseHooked) return;
  // (Undefined for a Server attached to no HTTP server yet, whatever its type says.)
  const http = server.io.httpServer as typeof server.io.httpServer | undefined;
  if (!http) return;
  server.feedsCloseHooked = true;
  http.once('close', () => {
    void stopStoreEvents(server);
  });
}

/** Stops every feed of the server and forgets the events held. */
export async function stopStoreEvents(server: ServerState): Promise<void> {
  const records = [...server.feeds.values()];
  server.feeds.clear();
  forgetHeld(server);
  await Promise.all(
    records.map(async (record) => {
      try {
        await record.stop?.();
      } catch (error) {
        debug('store events: stopping the %s feed failed: %O', record.name, error);
      }
    }),
  );
}
