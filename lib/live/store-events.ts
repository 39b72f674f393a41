// A store's change feed, wired to the sockets: a session deleted, expired or evicted in the store
// (by anyone: an admin script, a TTL, another app) ends its sockets on this node at once, instead
// of at the next revalidation round. Each node subscribes itself, so each hears each event once.
// One sink per server and feed; the feed's state decides how often revalidation runs
// (revalidation.ts `eventsUp`), and a feed back after a drop runs one full round.
import type { Server } from 'socket.io';
import { ERR_SESSION_EXPIRED, ERR_SESSION_REVOKED, type SocketEndedCode } from '../core/errors.js';
import {
  serverState,
  sessionDigest,
  type ServerState,
  type SessionDigest,
  type SocketState,
} from '../core/state.js';
import { debug } from '../diagnostics/debug.js';
import { publish, warnOnce } from '../diagnostics/diagnostics.js';
import { fullRound } from './revalidation.js';
import { digestKey, endSocket, rememberEnded } from './revocation.js';

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
   * package warns once and keeps polling the store (`revalidateIntervalMs`).
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

/** A store event heard, held a moment for the adapter's word on how it ended. */
export interface HeldEnd {
  digest: SessionDigest;
  code: SocketEndedCode;
  /** When it was heard (ms since epoch): only sockets whose session was read before it end. */
  heardAt: number;
  /** When the hold is over (ms since epoch). */
  due: number;
}

/** The warning given once when a feed cannot work (`unavailable`). */
export const STORE_EVENTS_OFF = 'SOCKET_IO_SESSION_AUTH_STORE_EVENTS_OFF';

/**
 * How long a store event waits before it ends sockets. Redis publishes a `del` before the node
 * that deleted gets its reply. A logout there ends the sockets through its wrapped store and tells
 * every node through the adapter; a login's rotation is announced to every node before the delete
 * (revocation.ts `announceRotation`), and its END (`ERR_SESSION_ROTATED`) comes after the login's
 * response: an event of a session announced as rotating waits for that END. The hold covers the
 * announcement arriving on another connection than the event. Measured: docs/store-events.md.
 */
const HOLD_MS = 50;

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
  try {
    record.stop = feed.start(sinkOf(server, feed, record));
  } catch (error) {
    debug('store events: the %s feed failed to start: %O', name, error);
    unavailable(record, `the ${name} feed failed to start`);
  }
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
  const missed = record.state === 'down';
  if (record.state === 'up' || record.state === 'resync') return;
  if (!missed) {
    record.state = 'up';
    publish('storeEvents', () => ({ feed: record.name, state: 'up' }));
    return;
  }
  // Events were missed while it was down: one full round finds them, then events alone.
  record.state = 'resync';
  publish('storeEvents', () => ({ feed: record.name, state: 'resync' }));
  fullRound(server)
    .catch((error: unknown) => {
      debug('store events: the full round after a drop failed: %O', error);
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
      '(revalidateIntervalMs) instead.',
  );
  publish('storeEvents', () => ({ feed: record.name, state: 'unavailable', message }));
}

/** A session gone from the store: its sockets here, read before now, end after the hold. */
function heard(
  server: ServerState,
  session: { id: string } | { digest: string },
  reason: 'deleted' | 'expired' | 'evicted',
): void {
  const digest = digestOf(session);
  // Most events are of sessions with no socket on this node: nothing is kept for them.
  if (digest === undefined || server.bySession.get(digest).length === 0) return;
  const heardAt = Date.now();
  const code = reason === 'expired' ? ERR_SESSION_EXPIRED : ERR_SESSION_REVOKED;
  hold(server, { digest, code, heardAt, due: heardAt + HOLD_MS });
}

/** Holds an event until `due`: the list stays in order, its timer set for the first one. */
function hold(server: ServerState, held: HeldEnd): void {
  const list = server.heldEnds;
  const last = list.at(-1);
  list.push(held);
  // Only an event held for a rotation is due later than a new one.
  if (last && last.due > held.due) list.sort((a, b) => a.due - b.due);
  if (list[0] !== held) return;
  clearTimeout(server.heldTimer);
  server.heldTimer = setTimeout(endHeld, Math.max(0, held.due - Date.now()), server).unref();
}

function digestOf(session: unknown): SessionDigest | undefined {
  const { id, digest } = (session ?? {}) as { id?: unknown; digest?: unknown };
  if (typeof digest === 'string' && digest !== '') return digest as SessionDigest;
  return typeof id === 'string' && id !== '' ? sessionDigest(id) : undefined;
}

/** Ends the held events whose hold is over, then waits for the next one. */
function endHeld(server: ServerState): void {
  server.heldTimer = undefined;
  const now = Date.now();
  const due = server.heldEnds.findIndex((held) => held.due > now);
  const ending = due === -1 ? server.heldEnds : server.heldEnds.slice(0, due);
  server.heldEnds = due === -1 ? [] : server.heldEnds.slice(due);
  for (const held of ending) endSessionHere(server, held);
  // (A rotation held again above may have set it already.)
  clearTimeout(server.heldTimer);
  const [next] = server.heldEnds;
  server.heldTimer = next
    ? setTimeout(endHeld, Math.max(0, next.due - now), server).unref()
    : undefined;
}

function endSessionHere(server: ServerState, held: HeldEnd): void {
  const { digest, code, heardAt } = held;
  // A node announced it is rotating this session: its END says so, after the login's response.
  const rotating = server.rotating.get(digest);
  if (rotating !== undefined && rotating > Date.now()) {
    hold(server, { ...held, due: rotating });
    return;
  }
  for (const state of server.bySession.get(digest)) {
    // A socket that came after the event read the store after it (and had no such session).
    if (state.ended || state.readAt > heardAt) continue;
    endSocket(state, codeFor(state, code), 'store-event');
  }
  rememberEnded(server, digestKey(digest));
}

/** A session deleted once its expiry had passed (connect-redis deletes it at a save) expired. */
function codeFor(state: SocketState, code: SocketEndedCode): SocketEndedCode {
  const expires = state.expiredAt ?? state.expires;
  return expires !== undefined && expires <= state.server.clock.now() ? ERR_SESSION_EXPIRED : code;
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
  clearTimeout(server.heldTimer);
  server.heldTimer = undefined;
  server.heldEnds = [];
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
