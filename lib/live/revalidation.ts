// A bound on how long a socket can outlive a session ended behind this node's back: a revocation
// broadcast it missed, or a session deleted straight from the store. Every interval, each session
// with sockets on this node is read from the store once, however many sockets it has; the reads
// are spread over the first half of the interval instead of coming in one burst.
import type { Server } from 'socket.io';
import { ERR_SESSION_EXPIRED, ERR_SESSION_REVOKED } from '../core/errors.js';
import { refreshSockets } from './refresh.js';
import { crossNode, endSocket } from './revocation.js';
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
    rounds = { timer, sockets: 0, running: false };
    server.revalidations.set(intervalMs, rounds);
  }
  rounds.sockets++;
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
  if (!rounds || rounds.running) return;
  rounds.running = true;
  try {
    const sessions = sessionsOf(server, intervalMs);
    // Spread over the first half of the interval: n / slices reads per slice, at least a few.
    const slices = Math.max(1, Math.floor(intervalMs / 2 / SLICE_MS));
    const perSlice = Math.max(CONCURRENT_READS, Math.ceil(sessions.length / slices));
    const readTimeout = Math.min(intervalMs, READ_TIMEOUT_MS);
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
  } finally {
    rounds.running = false;
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
