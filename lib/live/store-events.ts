// A store's change feed, wired to the sockets: a session deleted, expired or evicted in the store
// (by anyone: an admin script, a TTL, another app) ends its sockets on this node at once, instead
// of at the next revalidation round. Each node subscribes itself, so each hears each event once.

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
   * package warns once and keeps polling the store (`revalidateIntervalMs`).
   */
  unavailable(message: string): void;
}
