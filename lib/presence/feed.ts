// The opt-in client feed of one presence tracker: `presence:state` to each socket as it connects,
// then `presence:diff { joins, leaves }` to the namespace, at most one per interval. Only what the
// app's `userData` put in `socket.data.user` leaves the server, with an opaque per-tracker ID and
// the time the user came online: never a session ID, a socket ID or the user key.
import type { Namespace, Socket } from 'socket.io';
import type { ClockTimer, Clock } from '../core/clock.js';
import { childrenOf } from '../socket-io/socket-io-internals.js';

/** The event a socket receives once connected: everyone online, as {@link PresenceFeedEntry}s. */
export const PRESENCE_STATE_EVENT = 'presence:state';
/** The event a namespace's sockets receive after a change: {@link PresenceDiff}. */
export const PRESENCE_DIFF_EVENT = 'presence:diff';

/** One user online, as a client sees them. */
export interface PresenceFeedEntry<Data = unknown> {
  /**
   * An opaque ID for this user, stable for as long as the server runs: the key to merge a diff
   * by. Not the user key, and nothing can be learned from it.
   */
  id: string;
  /** What the namespace's `userData` made of the user (`socket.data.user`). */
  user: Data;
  /** When the user came online (ms since epoch). */
  since: number;
}

/**
 * What changed since the last diff: apply `leaves` (remove by `id`), then `joins` (add or replace
 * by `id`). A user appears in at most one of the two.
 */
export interface PresenceDiff<Data = unknown> {
  joins: PresenceFeedEntry<Data>[];
  leaves: PresenceFeedEntry<Data>[];
}

/** What the feed needs of its tracker. */
export interface FeedSource {
  /**
   * Everyone online now, as clients see them: at once on one node; with several, once read from
   * Redis (the diffs that come meanwhile are held for the socket and sent after it).
   */
  entries(): PresenceFeedEntry[] | Promise<PresenceFeedEntry[]>;
  /** The clock of the server's deadlines (read each time: the test kit may replace it). */
  clock(): Clock;
}

export class PresenceFeed {
  private readonly joins = new Map<string, () => PresenceFeedEntry>();
  private readonly leaves = new Map<string, PresenceFeedEntry>();
  private timer: ClockTimer | undefined = undefined;
  private lastSent = -Infinity;
  /** Sockets whose state is still being read, with the diffs sent meanwhile, in order. */
  private readonly waiting = new Map<Socket, PresenceDiff[]>();

  constructor(
    private readonly nsp: Namespace,
    private readonly intervalMs: number,
    private readonly source: FeedSource,
  ) {}

  /** A socket of the namespace has connected: the whole state, to it alone. */
  welcome(socket: Socket): void {
    const entries = this.source.entries();
    if (Array.isArray(entries)) {
      socket.emit(PRESENCE_STATE_EVENT, entries);
      return;
    }
    // The diffs that come while the state is read go to this socket after it: a change the read
    // already saw comes again (a join replaces by id, a leave of someone absent does nothing), and
    // none that it missed is lost.
    this.waiting.set(socket, []);
    const forget = (): void => {
      this.waiting.delete(socket);
    };
    socket.once('disconnect', forget);
    void entries.then((state) => {
      const held = this.waiting.get(socket);
      forget();
      socket.off('disconnect', forget);
      if (held === undefined || !socket.connected) return;
      socket.emit(PRESENCE_STATE_EVENT, state);
      for (const diff of held) socket.emit(PRESENCE_DIFF_EVENT, diff);
    });
  }

  /** The entry is read when the diff is sent, so the diff carries the latest `userData`. */
  joined(id: string, entry: () => PresenceFeedEntry): void {
    this.leaves.delete(id);
    this.joins.set(id, entry);
    this.schedule();
  }

  left(entry: PresenceFeedEntry): void {
    this.joins.delete(entry.id);
    this.leaves.set(entry.id, entry);
    this.schedule();
  }

  close(): void {
    this.source.clock().clearTimeout(this.timer);
    this.timer = undefined;
    this.waiting.clear();
  }

  /** At once when the last diff is an interval old, else once it is: changes meanwhile coalesce. */
  private schedule(): void {
    if (this.timer !== undefined) return;
    const clock = this.source.clock();
    const wait = this.lastSent + this.intervalMs - clock.now();
    if (wait <= 0) this.flush();
    else {
      this.timer = clock.setTimeout(
        () => {
          this.timer = undefined;
          this.flush();
        },
        wait,
        true,
      );
    }
  }

  private flush(): void {
    if (this.joins.size === 0 && this.leaves.size === 0) return;
    this.lastSent = this.source.clock().now();
    const diff: PresenceDiff = {
      joins: [...this.joins.values()].map((entry) => entry()),
      leaves: [...this.leaves.values()],
    };
    this.joins.clear();
    this.leaves.clear();
    for (const held of this.waiting.values()) held.push(diff);
    const except = [...this.waiting.keys()].map((socket) => socket.id);
    // This node's sockets only: with several nodes, each node sends its own sockets the diffs.
    for (const nsp of childrenOf(this.nsp) ?? [this.nsp]) {
      nsp.local.except(except).emit(PRESENCE_DIFF_EVENT, diff);
    }
  }
}
