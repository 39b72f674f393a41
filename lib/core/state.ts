// What the package keeps, in one module: one record per Socket.IO server and one per tracked
// socket (this file), and the few fields kept on a socket itself (its record here, the others in
// state-fields.ts). Each is created here and nowhere else; the modules that work on them keep their
// data in these records, never in module-level registries: two servers in a process share nothing.
import { createHash, hash } from 'node:crypto';
import type { Server, Socket } from 'socket.io';
import type { Middleware } from './chain.js';
import { realClock, type Clock, type ClockTimer } from './clock.js';
import type { SocketEndedCode } from './errors.js';
import type { ReadResponse } from './response.js';
import { SocketIndex } from './socket-index.js';
import type { RevalidationRounds } from '../live/revalidation.js';
import type { HeldEnd } from '../live/held-ends.js';
import type { FeedRecord, StoreEventFeed } from '../live/store-events.js';
import type { SessionRecorder } from '../sessions/session-registry.js';
import type {
  AllowedOrigins,
  ErrorHook,
  ExpressApp,
  PassportAuthenticator,
  RoomRule,
  SessionRequest,
} from './types.js';

/** What the handshake steps need of sessionNamespace's options, checked and with their defaults. */
export interface HandshakeOptions {
  session: Middleware;
  passport: PassportAuthenticator | undefined;
  app: ExpressApp;
  timeoutMs: number;
  onError: ErrorHook | undefined;
  touchIntervalMs: number | undefined;
  autoSave: boolean;
  userData: ((user: Express.User) => unknown) | undefined;
  allowedOrigins: AllowedOrigins | undefined;
  requireOrigin: boolean;
  revalidateIntervalMs: number | false | undefined;
  storeEvents: StoreEventFeed | undefined; // live/store-events.ts: once per server and feed
  revalidateWithEventsMs: number | false; // the round while the server's feeds are up
  /** Put the reason a socket has no user in `err.data.reason` (never in production). */
  explain: boolean;
}

/** A session read under way, which other namespace connects of its connection may share. */
export interface SharedRead {
  session: Middleware;
  passport: PassportAuthenticator | undefined;
  app: ExpressApp;
  /** The connects waiting on it: each gets the leader's request once it has its session. */
  waiting: ((leader: { req: SessionRequest; res: ReadResponse } | undefined) => void)[];
}

/** What one requireAuth keeps to decide again (authorization.ts). */
export interface Guard {
  authorize: ((user: never, socket: Socket) => unknown) | undefined;
  rules: readonly { pattern: RegExp; rule: RoomRule<never> }[] | undefined;
  timeoutMs: number;
  onError: ErrorHook | undefined;
}

/** What a token socket keeps: the key serializeUser gave its user, and when its token expires. */
export interface TokenGrant {
  serialized: unknown;
  expires: number | undefined;
}

/** What the package keeps for one tracked socket: a few fields, no closure, no timer. */
export class SocketState {
  /** When the session was read for this socket (ms since epoch). */
  readonly readAt = Date.now();
  /** When the session expires (ms since epoch), if it does. */
  expires: number | undefined = undefined;
  /** Its place in the server's expiry heap, or -1. */
  heapIndex = -1;
  /** How long until the store is asked again about a session past its stored expiry. */
  recheckMs = 0;
  /** The stored expiry a session kept by its store past it had (ms since epoch). */
  expiredAt: number | undefined = undefined;
  /** Set once the session has ended: the socket is told why and disconnected. */
  ended: SocketEndedCode | undefined = undefined;
  /** When the socket last touched its session in the store. */
  lastTouch = 0;
  /**
   * When the browser's session cookie ends (ms since epoch), as far as this node knows: what the
   * last HTTP response gave it (the stored expiry at connect, a refresh through refreshCookieRoute
   * since). Socket touches move the store's expiry, never this. Undefined when it is not known or
   * cannot be moved (touchIntervalMs off, a token, cookie-session, a session without `rolling`).
   */
  cookieEnds: number | undefined = undefined;
  /** A recovered socket being checked again: its events wait for it. */
  recheck: Promise<void> | undefined = undefined;
  /** autoSave: what the session looked like when last read or saved, and what is queued. */
  savedHash: string | undefined = undefined;
  queuedHash: string | undefined = undefined;
  /** The socket has connected (it was tracked while still in its handshake). */
  connected = false;
  /** A per-event guard is installed (touching, or after the expiry passed). */
  eventGuard = false;
  /** autoSave wraps this socket's listeners. */
  autoSave = false;
  /** The revalidation interval this socket counts in (0: none). */
  revalidateMs = 0;
  /** What its requireAuth decided with, for re-checks on the live socket. */
  guards: Guard[] | undefined = undefined;
  /** A socket a token let in (passportNamespace): its user's key and the token's expiry. */
  token: TokenGrant | undefined = undefined;

  constructor(
    readonly socket: Socket,
    readonly server: ServerState,
    /** The options of the sessionNamespace that tracks it (shared by its sockets). */
    readonly options: HandshakeOptions,
    /**
     * The express-session ID, when the store has seen the session; undefined for cookie-session,
     * and for a recovered socket still being checked again (it knows only the digest).
     */
    readonly sessionID: string | undefined,
    /** What Passport's serializeUser stored, as a string; undefined without a user. */
    readonly userKey: string | undefined,
    /** {@link sessionDigest} of the session ID, computed once per socket: its name everywhere. */
    readonly sessionDigest: SessionDigest | undefined,
  ) {}
}

/** A presence tracker (lib/presence/): told of each socket admitted, and each connected one gone. */
export interface PresenceWatcher {
  arrived(socket: Socket, state: SocketState | undefined): void;
  left(state: SocketState): void;
}

/**
 * A rateLimit's connection limits (lib/limits/connections.ts), which the handshake's steps
 * consult (handshake/limits.ts) whatever order the helpers were called in. Each hook calls `next`
 * once: with a refusal, or without.
 */
export interface HandshakeLimit {
  /** Before the session is read: per address (`req`, the socket's request view, has `ip`). */
  beforeRead(socket: Socket, req: object, next: (err?: Error) => void): void;
  /** Once the socket is tracked: per user and per session. */
  tracked(state: SocketState, next: (err?: Error) => void): void;
  /** A tracked socket is gone, connected or not. */
  left(state: SocketState): void;
}

/** What the package keeps for one Socket.IO server. */
export class ServerState {
  /** Tracked sockets, connected or still in their handshake, by session digest and by user key. */
  readonly bySession = new SocketIndex<SessionDigest>();
  readonly byUser = new SocketIndex();
  /** Every tracked socket, for revalidation and the expiry heap's owner. */
  readonly expiryHeap: SocketState[] = [];
  expiryTimer: ClockTimer | undefined = undefined;
  expiryAt = Infinity;
  /**
   * The time its expiries, revalidation rounds and touch intervals keep (core/clock.ts): the real
   * one, unless the test kit gave it its own.
   */
  clock: Clock = realClock;
  /**
   * Sessions and users ended recently (key → until when, ms since epoch), so that a socket
   * recovered by connectionStateRecovery after its session ended while it was away stays out.
   * Kept only with connectionStateRecovery, for its window; oldest first.
   */
  readonly endedKeys = new Map<string, number>();
  /** Recovery: when each disconnected socket's session expires, by its recovery ID. */
  readonly expiryByPid = new Map<string, { expires: number; until: number }>();
  /** Writes of one session from this node, one after another: the tail of each queue. */
  readonly writeQueues = new Map<string, Promise<void>>();
  /** Refreshes under way on this node, by user or session key: a flood becomes one more pass. */
  readonly refreshes = new Map<string, { again: boolean; done: Promise<void> }>();
  /** This server listens for other nodes' refreshes. */
  refreshListening = false;
  /**
   * What the expiry heap (live/expiry.ts) calls with a socket whose expiry has come, before the
   * store is asked: the event guard (live/events.ts), which the heap cannot import (the guard's
   * touch arms the heap). Given by layerLifecycle (api/session-namespace.ts), which every
   * namespace whose sockets are tracked goes through before its first socket.
   */
  expiring: ((state: SocketState) => void) | undefined = undefined;
  /** The `express()` app of namespaces and middleware given no `app` (wrap-express-middleware.ts). */
  defaultApp: ExpressApp | undefined = undefined;
  /** Whether its adapter spans nodes (Redis, …), once known. */
  crossNode: boolean | undefined = undefined;
  /** This server listens for other nodes' revocations. */
  listening = false;
  /** The session stores whose destroys this server hears (store-logouts.ts); sessionRegistry's. */
  readonly watchedStores = new Set<object>();
  /** disconnectOnLogout has seen a request with a session: it is in the path of some routes. */
  logoutWatched = false;
  /** Revalidation rounds, by interval (live/revalidation.ts `RevalidationRounds`). */
  readonly revalidations = new Map<number, RevalidationRounds>();
  /** The store event feeds started on this server (live/store-events.ts), by feed object. */
  readonly feeds = new Map<object, FeedRecord>();
  /** Store events heard and held before they end sockets (live/store-events.ts), oldest first. */
  heldEnds: HeldEnd[] = [];
  heldTimer: NodeJS.Timeout | undefined = undefined;
  /** Store events of the last seconds, oldest first, for sockets tracked after them (held-ends.ts). */
  readonly recentEnds = new Map<SessionDigest, HeldEnd>();
  /** Sessions a node is rotating (revocation.ts `announceRotation`), until when (epoch ms). */
  readonly rotating = new Map<SessionDigest, number>();
  /** The feeds are stopped when the server's HTTP server closes: listened for once. */
  feedsCloseHooked = false;
  /** The presence trackers on this server (lib/presence/), told by the handshake's admit and leave. */
  readonly presence = new Set<PresenceWatcher>();
  /** rateLimit's connection limits on this server, each with the namespaces it covers. */
  readonly limits: HandshakeLimit[] = [];
  /** rateLimit's budgets on this server (lib/limits/), so the test kit can reset them all. */
  readonly limiters = new Set<{ resetAll(): Promise<void> }>();
  /** sessionRegistry's record of each user's sessions, once the app opted in. */
  registry: SessionRecorder | undefined = undefined;
  /** This server answers other nodes' questions about a user's sessions (sessions/). */
  sessionsListening = false;

  constructor(readonly io: Server) {}
}

const servers = new WeakMap<Server, ServerState>();

/** The record of a server, created on first use. */
export function serverState(io: Server): ServerState {
  let state = servers.get(io);
  if (!state) {
    state = new ServerState(io);
    servers.set(io, state);
  }
  return state;
}

// The socket's record is a field of the socket (cheaper than a WeakMap entry), set by trackSocket
// below. The other fields the package keeps on a socket, its request view and its connection are
// in state-fields.ts.
const kState = Symbol('socket.io-session-auth');

type Kept = Socket & { [kState]?: SocketState };

/** The record of a tracked socket, if it has one. */
export function socketState(socket: Socket): SocketState | undefined {
  return (socket as Kept)[kState];
}

/** The user key of a session of any shape: what serializeUser stored, as a string. */
export function userKeyOf(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

// Node's one-shot `crypto.hash` (20.12+) makes no Hash object: about a third of createHash's cost,
// and one is computed per tracked socket.
export const digestOf: (data: string) => string =
  typeof hash === 'function'
    ? (data) => hash('sha256', data, 'base64url')
    : (data) => createHash('sha256').update(data).digest('base64url');

/**
 * What stands for a session ID wherever the ID would leave this process or reach the app through
 * Socket.IO's public surfaces (room names, which `fetchSockets()` returns on every node; messages
 * between nodes; diagnostics): the ID is a bearer credential, its digest is not. The same on every
 * node, so nodes still find each other's sockets by it. Unkeyed SHA-256 is one-way enough here:
 * express-session's IDs are 24 random bytes, so there is nothing to guess from a digest (a keyed
 * hash would need a secret shared by every node, and buys nothing against 192 random bits; an app
 * whose own `genid` makes guessable IDs loses this). Truncated to 22 base64url characters (132
 * bits): a collision needs some 2^66 sessions.
 */
export function sessionDigest(sessionID: string): SessionDigest {
  return digestOf(sessionID).slice(0, 22) as SessionDigest;
}

/**
 * A {@link sessionDigest}, as a type of its own: the session index is keyed by it, so a raw
 * session ID cannot be looked up there (or sent where a digest belongs) by mistake.
 */
export type SessionDigest = string & { readonly __sessionDigest: true };

/**
 * Creates a socket's record and indexes it by session (its digest) and user. A recovered socket
 * being checked again knows only the digest its room holds: it gives that, and no session ID.
 */
export function trackSocket(
  socket: Socket,
  options: HandshakeOptions,
  sessionID: string | undefined,
  userKey: string | undefined,
  digest: SessionDigest | undefined = sessionID === undefined
    ? undefined
    : sessionDigest(sessionID),
): SocketState {
  const server = serverState(socket.nsp.server);
  const state = new SocketState(socket, server, options, sessionID, userKey, digest);
  (socket as Kept)[kState] = state;
  if (digest !== undefined) server.bySession.add(digest, state);
  if (userKey !== undefined) server.byUser.add(userKey, state);
  return state;
}

/** Takes a socket's record out of the indexes (it left, or its handshake did not complete). */
export function unindex(state: SocketState): void {
  const { server, sessionDigest: digest, userKey } = state;
  if (digest !== undefined) server.bySession.delete(digest, state);
  if (userKey !== undefined) server.byUser.delete(userKey, state);
}
