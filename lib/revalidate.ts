import type { Server, Socket } from 'socket.io';
import { ERR_SESSION_EXPIRED, ERR_SESSION_REVOKED } from './errors.js';
import { endSocket, liveSession, userKeyOf, type SessionStoreLike } from './live-session.js';

/** How many store reads one revalidation round has under way at once. */
const CONCURRENT_READS = 32;
/** A revalidation read that takes longer is given up, like an outage, until the next round. */
const READ_TIMEOUT_MS = 10_000;

interface StoredSession {
  cookie?: { expires?: unknown };
  passport?: { user?: unknown };
}

/**
 * A bound on how long a socket can outlive a revocation this node never heard of (a broadcast lost
 * between nodes): every interval, each session with sockets on this node is read from the store
 * once — one read per session, however many sockets it has — and sockets whose session is gone,
 * or whose user changed, are ended.
 */
class Revalidator {
  private readonly sessions = new Map<string, Set<Socket>>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly intervalMs: number) {}

  add(socket: Socket, sessionID: string): void {
    // The timer runs only while this node has sockets to revalidate.
    if (!this.timer) {
      this.timer = setInterval(() => {
        void this.round();
      }, this.intervalMs);
      this.timer.unref();
    }
    let sockets = this.sessions.get(sessionID);
    if (!sockets) {
      sockets = new Set();
      this.sessions.set(sessionID, sockets);
    }
    sockets.add(socket);
    socket.once('disconnect', () => {
      sockets.delete(socket);
      if (sockets.size === 0 && this.sessions.get(sessionID) === sockets) {
        this.sessions.delete(sessionID);
      }
      if (this.sessions.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    });
  }

  private async round(): Promise<void> {
    // A slow store must not stack rounds on top of each other.
    if (this.running) return;
    this.running = true;
    try {
      const ids = [...this.sessions.keys()];
      for (let i = 0; i < ids.length; i += CONCURRENT_READS) {
        await Promise.all(ids.slice(i, i + CONCURRENT_READS).map((id) => this.check(id)));
      }
    } finally {
      this.running = false;
    }
  }

  // A read that never answers (a reply lost with its connection) must not stall every later round.
  private check(sessionID: string): Promise<void> {
    const sockets = this.sessions.get(sessionID);
    const first = sockets?.values().next().value;
    if (!sockets || !first) return Promise.resolve();
    const { sessionStore: store } = first.request as { sessionStore?: SessionStoreLike };
    if (!store) return Promise.resolve();
    return new Promise((resolve) => {
      let answered = false;
      const timer = setTimeout(
        () => {
          answered = true;
          resolve();
        },
        Math.min(this.intervalMs, READ_TIMEOUT_MS),
      );
      store.get(sessionID, (err, stored) => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        // A store outage is not a revocation: sockets already connected keep working.
        if (!err) {
          for (const socket of [...sockets]) verdict(socket, stored);
        }
        resolve();
      });
    });
  }
}

function verdict(socket: Socket, stored: StoredSession | null | undefined): void {
  const state = liveSession(socket);
  if (!state || state.ended) return;
  if (!stored) {
    const expired = state.expires !== undefined && state.expires <= Date.now();
    endSocket(socket, expired ? ERR_SESSION_EXPIRED : ERR_SESSION_REVOKED);
    return;
  }
  if (userKeyOf(stored.passport?.user) !== state.userKey) endSocket(socket, ERR_SESSION_REVOKED);
}

const revalidators = new WeakMap<Server, Map<number, Revalidator>>();

/** Puts a connected socket under this server's revalidation at `intervalMs`. */
export function revalidate(socket: Socket, sessionID: string, intervalMs: number): void {
  const io = socket.nsp.server;
  let byInterval = revalidators.get(io);
  if (!byInterval) {
    byInterval = new Map();
    revalidators.set(io, byInterval);
  }
  let revalidator = byInterval.get(intervalMs);
  if (!revalidator) {
    revalidator = new Revalidator(intervalMs);
    byInterval.set(intervalMs, revalidator);
  }
  revalidator.add(socket, sessionID);
}
