// One presence tracker: the users online in its scope (a namespace, its children, or a whole
// server), each with the records of its connected sockets. A user joins at their first socket and
// leaves once their last socket has been gone for the grace, on the server's clock.
import { createHmac, randomBytes } from 'node:crypto';
import type { Namespace, Server, Socket } from 'socket.io';
import type { Clock, ClockTimer } from '../core/clock.js';
import { serverState, type PresenceWatcher, type SocketState } from '../core/state.js';
import { childrenOf } from '../socket-io/socket-io-internals.js';
import type { PresenceFeed, PresenceFeedEntry } from './feed.js';
import type { SharedEvent, SharedPresence } from './shared.js';

/** One user online, as the server sees them. */
export interface PresenceEntry<Data = unknown> {
  /** The user's key: what serializeUser stored, as a string (as `disconnectUser` takes it). */
  userKey: string;
  /** What the namespace's `userData` made of the user (`socket.data.user`), the latest one. */
  user: Data;
  /** The user's connected sockets in scope: tabs × namespaces. 0 while in the grace. */
  connections: number;
  /** When the user came online (ms since epoch, on the server's clock). */
  since: number;
}

/** A user online, and what the tracker keeps for them. */
interface Online {
  readonly userKey: string;
  /** The feed's opaque ID, made once, when a feed first needs it (an HMAC: not per join). */
  id: string | undefined;
  readonly since: number;
  readonly sockets: Set<SocketState>;
  /** The user's summary, as last seen on one of their sockets. */
  user: unknown;
  /** While no socket is left: the timer that publishes the leave. */
  grace: ClockTimer | undefined;
}

export type PresenceEvent = 'join' | 'leave';
type Listener = (entry: PresenceEntry) => void;

export class PresenceTracker implements PresenceWatcher {
  readonly users = new Map<string, Online>();
  readonly listeners = { join: new Set<Listener>(), leave: new Set<Listener>() };
  /** Stops watching for a scope nothing tracks (untracked.ts), at the close. */
  unwatch: (() => void) | undefined = undefined;
  feed: PresenceFeed | undefined = undefined;
  /** With several nodes (the `redis` option): the shared state, whose channel gives the events. */
  shared: SharedPresence | undefined = undefined;
  /**
   * The key of the feed's IDs, which cannot be turned back into user keys: per tracker on one
   * node; with `redis`, the scope's, shared by its nodes (so a user has one ID on all of them).
   */
  secret: Buffer = randomBytes(32);

  constructor(
    readonly io: Server,
    /** The namespace in scope (and its children), or undefined: every namespace of the server. */
    readonly nsp: Namespace | undefined,
    readonly graceMs: number,
  ) {}

  clock(): Clock {
    return serverState(this.io).clock;
  }

  inScope(nsp: Namespace): boolean {
    return !this.nsp || nsp === this.nsp || childrenOf(this.nsp)?.has(nsp) === true;
  }

  arrived(socket: Socket, state: SocketState | undefined): void {
    // Not connected: ended at its admission (a socket its session's end reached in its handshake).
    if (!socket.connected || !this.inScope(socket.nsp)) return;
    // A socket restored by connectionStateRecovery is checked again first: it arrives once it
    // has passed (live/recovery.ts), under the record it has then.
    if (state?.recheck !== undefined) return;
    const joined = state && state.ended === undefined ? this.add(state) : undefined;
    // The state first, with the socket's own user in it; then the diff that announces the user.
    this.feed?.welcome(socket);
    if (joined && !this.shared) {
      this.feed?.joined(this.idOf(joined), () => this.feedEntry(joined));
      this.emit('join', entryOf(joined));
    }
  }

  left(state: SocketState): void {
    const online = state.userKey === undefined ? undefined : this.users.get(state.userKey);
    if (!online?.sockets.has(state)) return;
    // The summary as it was while a socket had it: the leave and the grace list show it.
    online.user = userOf(online);
    online.sockets.delete(state);
    this.share(online);
    if (online.sockets.size > 0) return;
    if (this.graceMs === 0) this.remove(online);
    else {
      online.grace = this.clock().setTimeout(
        () => {
          this.remove(online);
        },
        this.graceMs,
        true,
      );
    }
  }

  /** A connected socket of a user in scope: the user, if it is their first (a join). */
  private add(state: SocketState): Online | undefined {
    const { userKey } = state;
    if (userKey === undefined) return undefined;
    const online = this.users.get(userKey);
    if (online) {
      // Back within the grace, or one more tab: no join.
      this.clock().clearTimeout(online.grace);
      online.grace = undefined;
      online.sockets.add(state);
      this.share(online);
      return undefined;
    }
    const since = this.clock().now();
    const sockets = new Set([state]);
    const user: Online = {
      userKey,
      id: undefined,
      since,
      sockets,
      user: undefined,
      grace: undefined,
    };
    user.user = userOf(user);
    this.users.set(userKey, user);
    this.share(user);
    return user;
  }

  /** This node's connections of the user, in the shared state: its join if it is the first. */
  private share(online: Online): void {
    this.shared?.joined(online.userKey, online.sockets.size, userOf(online), online.since);
  }

  private idOf(online: Online): string {
    return (online.id ??= this.feedId(online.userKey));
  }

  private feedEntry(online: Online): PresenceFeedEntry {
    return { id: this.idOf(online), user: userOf(online), since: online.since };
  }

  /** The feed's opaque ID of a user. */
  feedId(userKey: string): string {
    return createHmac('sha256', this.secret).update(userKey).digest('base64url').slice(0, 22);
  }

  /** What the shared state's channel says: a join or a leave of the user, anywhere. */
  heard({ type, userKey, user, since }: SharedEvent): void {
    if (this.feed) {
      const entry: PresenceFeedEntry = { id: this.feedId(userKey), user, since };
      if (type === 'join') this.feed.joined(entry.id, () => entry);
      else this.feed.left(entry);
    }
    // A join is a user's first connection anywhere; a leave, their last gone.
    this.emit(type, { userKey, user, connections: type === 'join' ? 1 : 0, since });
  }

  /** The users this node holds, for the shared state to write again. */
  *held(): Iterable<PresenceEntry> {
    for (const online of this.users.values()) yield entryOf(online);
  }

  private remove(online: Online): void {
    online.grace = undefined;
    if (this.users.get(online.userKey) !== online) return;
    this.users.delete(online.userKey);
    if (this.shared) {
      this.shared.left(online.userKey);
      return;
    }
    this.feed?.left(this.feedEntry(online));
    this.emit('leave', entryOf(online));
  }

  /**
   * Every listener runs, then the first throw is rethrown on its own: a listener's error must not
   * leave the tracker half updated, nor fail the socket's own clean-up, which called it.
   */
  private emit(event: PresenceEvent, entry: PresenceEntry): void {
    let failed: { error: unknown } | undefined;
    for (const listener of [...this.listeners[event]]) {
      try {
        listener(entry);
      } catch (error) {
        failed ??= { error };
      }
    }
    if (failed) {
      const { error } = failed;
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  entries(): PresenceEntry[] {
    return [...this.users.values()].map(entryOf);
  }

  feedEntries(): PresenceFeedEntry[] | Promise<PresenceFeedEntry[]> {
    if (this.shared) return this.sharedFeedEntries(this.shared);
    return [...this.users.values()].map((online) => this.feedEntry(online));
  }

  /** Every node's users, once this node has the scope's secret (`ready`). */
  private async sharedFeedEntries(shared: SharedPresence): Promise<PresenceFeedEntry[]> {
    try {
      await shared.ready;
      const entries = await shared.list();
      return entries.map(({ userKey, user, since }) => ({ id: this.feedId(userKey), user, since }));
    } catch {
      // Redis failed (shared.ts warns): what this node knows, rather than no state at all.
      return [...this.users.values()].map((online) => this.feedEntry(online));
    }
  }

  close(): void {
    const clock = this.clock();
    for (const online of this.users.values()) clock.clearTimeout(online.grace);
    this.unwatch?.();
    this.shared?.close();
    this.users.clear();
    this.feed?.close();
    serverState(this.io).presence.delete(this);
  }
}

/** The user's summary from one of their sockets (refreshUser may have changed it), or the last. */
function userOf(online: Online): unknown {
  const first = online.sockets.values().next();
  return first.done ? online.user : (first.value.socket.data as { user?: unknown }).user;
}

function entryOf(online: Online): PresenceEntry {
  const { userKey, since, sockets } = online;
  return { userKey, user: userOf(online), connections: sockets.size, since };
}
