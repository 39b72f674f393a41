// A bound on how long a socket can outlive a session ended behind this node's back: a revocation
// broadcast it missed, or a session deleted straight from the store. Every interval, each session
// with sockets on this node is read from the store once, however many sockets it has; the reads
// are spread over the first half of the interval instead of coming in one burst. While the
// server's store event feeds are up (store-events.ts), a round runs only once its sockets'
// revalidateWithEventsMs has passed since the last one: the timer keeps its interval, so a feed
// that goes down or unavailable is back to the usual rounds at the next tick.
import type { Server } from 'socket.io';
import { ERR_SESSION_EXPIRED, ERR_SESSION_REVOKED } from '../core/errors.js';
import { refreshSockets } from './refresh.js';
import { crossNode, endSocket } from './revocation.js';
import type { ClockTimer } from '../core/clock.js';
import type { ServerState, SocketState } from '../core/state.js';
import { sessionUserKey } from '../core/user.js';
import type { SessionStoreLike, StoredSession } from '../core/types.js';
import { withTimeout } from '../core/with-timeout.js';

const DEFAULT_INTERVAL_MS = 30_000;
/** How many store reads a round has under way at once. */
const CONCURRENT_READS = 32;
/** How often a round starts the next slice of its reads. */
const SLICE_MS = 100;
/** A read that takes longer is given up, like an outage, until the next round. */
const READ_TIMEOUT_MS = 10_000;
/** The one full round after a store event feed came back is spread over this long. */
const RESYNC_SPREAD_MS = 5_000;

/** The revalidation rounds of one interval (`ServerState.revalidations`). */
export interface RevalidationRounds {
  timer: ClockTimer;
  sockets: number;
  running: boolean;
  lastRound: number;
  withEventsMs: number | false;
}

/** The interval for a namespace's option: 30 s on an adapter that spans nodes, else off. */
export function revalidationInterval(io: Server, option: number | false | undefined): number {
  if (option === false) return 0;
  if (option !== undefined) return option;
  return crossNode(io) ? DEFAULT_INTERVAL_MS : 0;
}

/** Counts a connected socket in its server's revalidation, starting the rounds if need be. */
export function revalidate(state: SocketState): void {
  const { server } = state;
  const intervalMs = revalidationInterval(server.io, state.options.revalidateIntervalMs);
  if (intervalMs === 0 || state.revalidateMs !== 0) return;
  state.revalidateMs = intervalMs;
  let rounds = server.revalidations.get(intervalMs);
  if (!rounds) {
    // On the server's clock (real, unless the test kit's), unref'd: never keeps the process up.
    const timer = server.clock.setInterval(
      () => {
        void round(server, intervalMs);
      },
      intervalMs,
      true,
    );
    const { revalidateWithEventsMs: withEventsMs } = state.options;
    // Each socket was read at its handshake: the interval with events counts from now.
    rounds = { timer, sockets: 0, running: false, lastRound: server.clock.now(), withEventsMs };
    server.revalidations.set(intervalMs, rounds);
  }
  rounds.withEventsMs = shorter(rounds.withEventsMs, state.options.revalidateWithEventsMs);
  rounds.sockets++;
}

/** The shorter of two intervals with events (false: never, the longest). */
function shorter(a: number | false, b: number | false): number | false {
  if (a === false) return b;
  return b === false ? a : Math.min(a, b);
}

/** Whether the server has store event feeds and every one of them hears events now. */
export function eventsUp(server: ServerState): boolean {
  if (server.feeds.size === 0) return false;
  for (const feed of server.feeds.values()) {
    if (feed.state !== 'up' && feed.state !== 'resync') return false;
  }
  return true;
}

/** Whether this tick's round is not needed: the feeds are up and the last round is recent. */
function skipped(server: ServerState, rounds: RevalidationRounds): boolean {
  if (!eventsUp(server)) return false;
  const { withEventsMs, lastRound } = rounds;
  return withEventsMs === false || server.clock.now() - lastRound < withEventsMs;
}

/** Takes a socket that left out of its server's revalidation; the last one stops the rounds. */
export function stopRevalidating(state: SocketState): void {
  const intervalMs = state.revalidateMs;
  if (intervalMs === 0) return;
  state.revalidateMs = 0;
  const rounds = state.server.revalidations.get(intervalMs);
  if (!rounds) return;
  rounds.sockets--;
  if (rounds.sockets <= 0) {
    state.server.clock.clearTimeout(rounds.timer);
    state.server.revalidations.delete(intervalMs);
  }
}

/**
 * The sessions with a connected socket revalidated at this interval, and their sockets (all of
 * one session under its digest; each such socket was admitted with its session ID).
 */
function sessionsOf(server: ServerState, intervalMs: number): SocketState[][] {
  const sessions: SocketState[][] = [];
  for (const digest of server.bySession.keys()) {
    const states = server.bySession
      .get(digest)
      .filter((state) => state.revalidateMs === intervalMs && !state.ended);
    if (states.length > 0) sessions.push(states);
  }
  return sessions;
}

async function round(server: ServerState, intervalMs: number): Promise<void> {
  const rounds = server.revalidations.get(intervalMs);
  // A slow store must not stack rounds on top of each other.
  if (!rounds || rounds.running || skipped(server, rounds)) return;
  rounds.running = true;
  rounds.lastRound = server.clock.now();
  try {
    await readAll(
      sessionsOf(server, intervalMs),
      intervalMs / 2,
      Math.min(intervalMs, READ_TIMEOUT_MS),
    );
  } finally {
    rounds.running = false;
  }
}

/**
 * The one full round after a store event feed came back (store-events.ts): every session with a
 * connected socket on this node, whatever its interval (revalidated or not), read once; it counts
 * as the last round of every interval.
 */
export async function fullRound(server: ServerState): Promise<void> {
  const now = server.clock.now();
  for (const rounds of server.revalidations.values()) rounds.lastRound = now;
  const sessions: SocketState[][] = [];
  for (const digest of server.bySession.keys()) {
    const states = server.bySession
      .get(digest)
      .filter((state) => state.connected && !state.ended && state.sessionID !== undefined);
    if (states.length > 0) sessions.push(states);
  }
  await readAll(sessions, RESYNC_SPREAD_MS, READ_TIMEOUT_MS);
}

/** Reads each session once, spread over `spreadMs` in slices, a few reads at a time. */
async function readAll(
  sessions: SocketState[][],
  spreadMs: number,
  readTimeout: number,
): Promise<void> {
  // n / slices reads per slice, at least a few.
  const slices = Math.max(1, Math.floor(spreadMs / SLICE_MS));
  const perSlice = Math.max(CONCURRENT_READS, Math.ceil(sessions.length / slices));
  for (let i = 0; i < sessions.length; i += perSlice) {
    // Pacing of the store's load, not a deadline: real time, whatever the server's clock.
    const started = Date.now();
    const slice = sessions.slice(i, i + perSlice);
    for (let j = 0; j < slice.length; j += CONCURRENT_READS) {
      await Promise.all(
        slice.slice(j, j + CONCURRENT_READS).map((states) => check(states, readTimeout)),
      );
    }
    if (i + perSlice < sessions.length) {
      const wait = SLICE_MS - (Date.now() - started);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait).unref());
    }
  }
}

// A read that never answers (a reply lost with its connection) must not stall every later round:
// the round stops waiting for it after `timeoutMs`. A late answer still counts when it comes, so
// that a store slower than the interval still ends revoked sessions.
function check(states: SocketState[], timeoutMs: number): Promise<void> {
  const first = states.find((state) => state.sessionID !== undefined);
  const sessionID = first?.sessionID;
  const { sessionStore: store } = (first?.socket.request ?? {}) as {
    sessionStore?: SessionStoreLike;
  };
  if (!store || sessionID === undefined) return Promise.resolve();
  const read = new Promise<void>((resolve) => {
    store.get(sessionID, (err, stored) => {
      // A store outage is not a revocation: sockets already connected keep working.
      if (!err) {
        for (const state of states) verdict(state, stored);
        // The session is still the same user's: decide again what requireAuth decided, with the
        // user as deserializeUser gives it now (a refreshUser this node missed is caught here).
        const live = states.filter((state) => !state.ended && state.guards);
        if (stored && live.length > 0) void refreshSockets(live, stored, 'revalidation');
      }
      resolve();
    });
  });
  return withTimeout(read, timeoutMs, () => undefined, true);
}

function verdict(state: SocketState, stored: StoredSession | null | undefined): void {
  if (state.ended) return;
  if (!stored) {
    const expires = state.expiredAt ?? state.expires;
    const expired = expires !== undefined && expires <= state.server.clock.now();
    endSocket(state, expired ? ERR_SESSION_EXPIRED : ERR_SESSION_REVOKED, 'revalidation');
    return;
  }
  if (sessionUserKey(stored) !== state.userKey) {
    endSocket(state, ERR_SESSION_REVOKED, 'revalidation');
  }
}
