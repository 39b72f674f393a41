// What happened to each socket, for operators and for the developer asking "why is there no user?":
// node:diagnostics_channel channels (free when nobody subscribes), the reasons behind an anonymous
// socket, and the warnings about setup mistakes, each given once per process.
import diagnosticsChannel from 'node:diagnostics_channel';
import { debug } from './debug.js';
import { digestOf } from '../core/state.js';

/**
 * The `node:diagnostics_channel` names the package publishes on: stable, like the error codes.
 * Nothing is built for a channel nobody subscribes to.
 *
 * @example
 * ```ts
 * import diagnosticsChannel from 'node:diagnostics_channel';
 * diagnosticsChannel.subscribe(DIAGNOSTICS_CHANNELS.handshake, (message) => {
 *   const { namespace, outcome, code } = message as HandshakeMessage;
 * });
 * ```
 */
export const CHANNELS = {
  /** A namespace handshake ended: accepted, refused (with the code), or the client left. */
  handshake: 'socket.io-session-auth:handshake',
  /** An event was refused before its handlers (authorizeEvent, or a session that has ended). */
  eventRefused: 'socket.io-session-auth:event-refused',
  /** A live socket was ended (`session:ended`). */
  sessionEnded: 'socket.io-session-auth:session-ended',
  /** The session store failed, timed out or was disconnected during a session read. */
  storeError: 'socket.io-session-auth:store-error',
  /** A revocation or refresh was sent to the other nodes. */
  broadcast: 'socket.io-session-auth:broadcast',
  /** A user joined or left a `presence()`: their first socket in scope, or their last one gone. */
  presence: 'socket.io-session-auth:presence',
  /** `rateLimit`: a connection or an event was over a limit, or the limiter's store failed. */
  rateLimited: 'socket.io-session-auth:rate-limited',
  /** A store event feed (`storeEvents`) is up, down, resyncing or unavailable. */
  storeEvents: 'socket.io-session-auth:store-events',
} as const;

/** Why a socket has no user, or was refused: for the developer, never for end users. */
export type NoUserReason =
  | 'no-cookie-header'
  | 'no-session-cookie'
  | 'bad-signature'
  | 'session-not-found'
  | 'session-skipped'
  | 'no-passport-user'
  | 'passport-not-given'
  | 'user-not-found'
  | 'origin-not-allowed'
  | 'no-token'
  | 'bad-token'
  | 'user-socket-limit'
  | 'session-socket-limit'
  | 'address-attempt-limit';

/** What each reason means, in the debug log and `err.data.reason` (with `explain`). */
export const REASONS: Record<NoUserReason, string> = {
  'no-cookie-header':
    'the handshake sent no Cookie header (a cross-origin client needs withCredentials: true; ' +
    'a Node client needs extraHeaders: { cookie })',
  'no-session-cookie': 'the handshake sent cookies, but no session cookie',
  'bad-signature':
    "the session cookie was not signed with this app's secret (another app's cookie of the same " +
    'name on this host, another or a retired secret, tampered or unsigned)',
  'session-not-found':
    'the session cookie names a session the store does not have (expired or destroyed)',
  'session-skipped':
    "the session middleware set no session: the cookie's path does not cover the Socket.IO path, " +
    'or its store is disconnected',
  'no-passport-user': 'the session holds no Passport user (not logged in)',
  'passport-not-given':
    'the session holds a Passport user, but sessionNamespace was not given { passport }',
  'user-not-found': 'deserializeUser gave false (the user no longer exists)',
  'origin-not-allowed': 'the Origin of the handshake is not allowed',
  'no-token': 'no session user, and the handshake sent no token (auth.token)',
  'bad-token': 'the token was refused by every strategy (malformed, expired, or too long)',
  'user-socket-limit':
    "rateLimit: the user already has connections.perUser sockets in the limit's scope",
  'session-socket-limit':
    "rateLimit: the session already has connections.perSession sockets in the limit's scope",
  'address-attempt-limit':
    'rateLimit: this address has made connections.perIp.points handshake attempts in the window',
};

/** Messages of the `handshake` channel. */
export interface HandshakeMessage {
  namespace: string;
  socketId: string;
  /**
   * A digest of the socket's engine.io connection id (`socket.conn.id`, which its client knows as
   * `socket.io.engine.id`): what tells a refused client its own message. Never the id itself:
   * whoever holds a polling connection's id can poll it, so it stays out of logs.
   */
  connection: string;
  /**
   * `accepted`, `refused` (with the code and status the client saw), or `left`: the client closed
   * its connection mid-handshake, while a step was pending, and was told nothing. A `left`
   * message has no code, status or reason.
   */
  outcome: 'accepted' | 'refused' | 'left';
  /** The refusal's code; undefined unless `refused`. */
  code: string | undefined;
  /** The refusal's status; undefined unless `refused`. */
  status: number | undefined;
  /** Why the socket has no user (accepted anonymous, or refused), when the package knows. */
  reason: NoUserReason | undefined;
  /** From the namespace's first middleware to Socket.IO's connect or refusal, in ms. */
  durationMs: number;
  transport: string;
}

/** Messages of the `event-refused` channel. */
export interface EventRefusedMessage {
  namespace: string;
  socketId: string;
  event: string;
  code: string;
  status: number;
}

/** How a live socket came to end. */
export type EndedHow =
  | 'logout'
  | 'destroy'
  | 'rotation'
  | 'expiry'
  | 'revocation'
  | 'refresh'
  | 'revalidation'
  | 'recovery'
  | 'token'
  | 'layered'
  | 'rate-limit'
  | 'store-event';

/** Messages of the `session-ended` channel. */
export interface SessionEndedMessage {
  namespace: string;
  socketId: string;
  code: string;
  how: EndedHow;
}

/** Messages of the `store-error` channel. */
export interface StoreErrorMessage {
  namespace: string;
  socketId: string;
  kind: 'error' | 'timeout' | 'disconnected';
  error: unknown;
}

/** Messages of the `broadcast` channel. */
export interface BroadcastMessage {
  /** The package's inter-node event: `end` (revocation) or `refresh`. */
  kind: 'end' | 'refresh';
  /** Whose sockets: a session or a user. */
  target: 'session' | 'user';
  /** Attempts made (1 to 3), and whether every node acknowledged in the end. */
  attempts: number;
  acknowledged: boolean;
  /** How many other nodes answered the last attempt. */
  nodes: number;
}

/**
 * Messages of the `presence` channel. No user key, digest or summary: user keys are often small
 * numbers, so even a digest of one names the user to whoever reads the logs. To log who, listen
 * to the presence's own `join` / `leave`, which give the entry.
 */
export interface PresenceMessage {
  /** The namespace tracked (a parent namespace's own name), or `'*'` for a whole server. */
  scope: string;
  event: 'join' | 'leave';
  /** The user's connected sockets in scope: 1 at a join, 0 at a leave. */
  connections: number;
  /** Users online in scope once this change is made: what a gauge shows. */
  online: number;
}

/**
 * Messages of the `rate-limited` channel. Never a session ID, a user key or an address: `by` says
 * what the limit counts, not whose count it was.
 */
export interface RateLimitedMessage {
  namespace: string;
  /** The socket, for an event; undefined for a handshake refused before it had one. */
  socketId: string | undefined;
  /** `connections` (a handshake), or the event's budget: its name, or `default`. */
  limit: string;
  /** What the limit counts by. */
  by: 'user' | 'session' | 'ip';
  /**
   * `refused`: a handshake, or an event with an ack; `dropped`: an event without one; `ended`: a
   * socket ended for going on past `endAfter`, or the oldest one ended for a new connection;
   * `store-error`: the limiter's store failed and the `onStoreError` choice was applied.
   */
  outcome: 'refused' | 'dropped' | 'ended' | 'store-error';
  code: string;
  /** For `refused` and `dropped`: when trying again can succeed. */
  retryAfterMs: number | undefined;
}

/**
 * Messages of the `store-events` channel: a feed's state changed. Never a session ID or digest.
 * `up`: it hears events (revalidation is rare); `down`: it may miss events (polling as without a
 * feed); `resync`: up again after a `down`, the one full revalidation round under way (then
 * `up`); `unavailable`: it cannot work (the message says why), polling as without a feed.
 */
export interface StoreEventsMessage {
  /** The feed's name: `redis`, `postgres`, or the custom feed's `name` (`custom` without one). */
  feed: string;
  state: 'up' | 'down' | 'resync' | 'unavailable';
  /** Why it is down or unavailable. */
  message?: string;
}

const channels = {
  handshake: diagnosticsChannel.channel(CHANNELS.handshake),
  eventRefused: diagnosticsChannel.channel(CHANNELS.eventRefused),
  sessionEnded: diagnosticsChannel.channel(CHANNELS.sessionEnded),
  storeError: diagnosticsChannel.channel(CHANNELS.storeError),
  broadcast: diagnosticsChannel.channel(CHANNELS.broadcast),
  presence: diagnosticsChannel.channel(CHANNELS.presence),
  rateLimited: diagnosticsChannel.channel(CHANNELS.rateLimited),
  storeEvents: diagnosticsChannel.channel(CHANNELS.storeEvents),
};

/** Whether anyone listens: a message is built only then. */
export function listening(name: keyof typeof channels): boolean {
  return channels[name].hasSubscribers;
}

export function publish(name: 'handshake', message: () => HandshakeMessage): void;
export function publish(name: 'eventRefused', message: () => EventRefusedMessage): void;
export function publish(name: 'sessionEnded', message: () => SessionEndedMessage): void;
export function publish(name: 'storeError', message: () => StoreErrorMessage): void;
export function publish(name: 'broadcast', message: () => BroadcastMessage): void;
export function publish(name: 'presence', message: () => PresenceMessage): void;
export function publish(name: 'rateLimited', message: () => RateLimitedMessage): void;
export function publish(name: 'storeEvents', message: () => StoreEventsMessage): void;
export function publish(name: keyof typeof channels, message: () => object): void {
  const channel = channels[name];
  if (channel.hasSubscribers) channel.publish(message());
}

const warned = new Set<string>();

/** A process warning with our code, once per process. */
export function warnOnce(code: string, message: string): void {
  if (warned.has(code)) return;
  warned.add(code);
  debug('%s: %s', code, message);
  process.emitWarning(message, { code });
}

/** The `connection` field of a `handshake` message: a digest, so the id itself is never published. */
export function connectionDigest(connectionId: string): string {
  return digestOf(`connection ${connectionId}`).slice(0, 22);
}
