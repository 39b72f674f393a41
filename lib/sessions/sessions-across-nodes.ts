// A user's live sessions on every node: each node answers from its own socket index, by session
// digest (the handle), with counts, user agent and address, never a session ID; and a node destroys
// in the store the sessions it alone knows the ID of (a session with a socket there and no
// registry entry). Next to live/revocation.ts's END_EVENT, through the same adapter.
import type { Server } from 'socket.io';
import { debug } from '../diagnostics/debug.js';
import { serverState, type ServerState, type SessionDigest } from '../core/state.js';
import type { SessionRequest } from '../core/types.js';
import { crossNode } from '../live/revocation.js';
import { client } from './session-registry.js';

const LIST_EVENT = 'socket.io-session-auth:sessions';
const DESTROY_EVENT = 'socket.io-session-auth:destroy-sessions';

/** One session of a user as one node's sockets show it. */
export interface LiveSession {
  handle: string;
  sockets: number;
  userAgent?: string;
  ip?: string;
  /** When its newest socket read the session (ms since epoch). */
  lastSeenAt: number;
  expiresAt?: number;
}

/** This node's sessions of the user that have sockets, connected or in their handshake. */
export function localSessions(server: ServerState, userKey: string): LiveSession[] {
  const sessions = new Map<string, LiveSession>();
  for (const state of server.byUser.get(userKey)) {
    if (state.ended || state.sessionDigest === undefined) continue;
    const known = sessions.get(state.sessionDigest);
    if (known) {
      known.sockets++;
      known.lastSeenAt = Math.max(known.lastSeenAt, state.readAt);
      continue;
    }
    sessions.set(state.sessionDigest, {
      handle: state.sessionDigest,
      sockets: 1,
      ...client(state.socket.request),
      lastSeenAt: state.readAt,
      ...(state.expires !== undefined && { expiresAt: state.expires }),
    });
  }
  return [...sessions.values()];
}

/** Every other node's answer for the user (none on one node; none from a node that timed out). */
export async function otherNodesSessions(io: Server, userKey: string): Promise<LiveSession[]> {
  if (!crossNode(io)) return [];
  const answers = await answersOf(io, 'listSessions', LIST_EVENT, userKey);
  return answers.flatMap((answer: unknown) =>
    Array.isArray(answer) ? (answer as unknown[]).filter(isLiveSession) : [],
  );
}

/**
 * The other nodes' acks. When one node does not answer within the adapter's requestsTimeout,
 * Socket.IO rejects but puts the answers it did get on the error (`responses`): they are kept.
 */
async function answersOf(
  io: Server,
  helper: string,
  event: string,
  ...args: unknown[]
): Promise<unknown[]> {
  try {
    const answers: unknown = await io.serverSideEmitWithAck(event as never, ...(args as never[]));
    return Array.isArray(answers) ? (answers as unknown[]) : [];
  } catch (error) {
    debug('%s: not every node answered: %O', helper, error);
    const { responses } = (error ?? {}) as { responses?: unknown };
    return Array.isArray(responses) ? (responses as unknown[]) : [];
  }
}

function isLiveSession(value: unknown): value is LiveSession {
  const { handle, sockets, lastSeenAt } = (value ?? {}) as Partial<LiveSession>;
  return (
    typeof handle === 'string' && typeof sockets === 'number' && typeof lastSeenAt === 'number'
  );
}

/**
 * Destroys in the store, through its wrapped destroy (so every node ends the session's sockets),
 * the sessions among `handles` that have a socket of `userKey` on this node: the handles it did.
 */
export async function destroyLocal(
  server: ServerState,
  userKey: string,
  handles: readonly string[],
): Promise<string[]> {
  const wanted = new Set(handles);
  const found = new Map<SessionDigest, { sid: string; store: SessionRequest['sessionStore'] }>();
  for (const state of server.byUser.get(userKey)) {
    const digest = state.sessionDigest;
    if (digest === undefined || state.sessionID === undefined || !wanted.has(digest)) continue;
    const store = (state.socket.request as SessionRequest).sessionStore;
    if (!found.has(digest)) found.set(digest, { sid: state.sessionID, store });
  }
  const done = await Promise.all(
    [...found].map(async ([digest, { sid, store }]) =>
      store && (await destroyIn(store, sid)) ? [digest] : [],
    ),
  );
  return done.flat();
}

/** The same on every other node: the handles they destroyed. */
export async function destroyElsewhere(
  io: Server,
  userKey: string,
  handles: readonly string[],
): Promise<string[]> {
  if (handles.length === 0 || !crossNode(io)) return [];
  const answers = await answersOf(io, 'endSessions', DESTROY_EVENT, userKey, handles);
  return answers.flatMap((done: unknown) =>
    Array.isArray(done) ? done.filter((h): h is string => typeof h === 'string') : [],
  );
}

/** Destroys `sid` in `store` (callback or promise style); false when the store failed. */
export function destroyIn(store: object, sid: string): Promise<boolean> {
  const { destroy } = store as { destroy?: (sid: string, cb: (err?: unknown) => void) => unknown };
  if (typeof destroy !== 'function') return Promise.resolve(false);
  return new Promise((resolve) => {
    try {
      destroy.call(store, sid, (err?: unknown) => {
        if (err) debug('endSessions: the store failed to destroy a session: %O', err);
        resolve(!err);
      });
    } catch (error) {
      debug('endSessions: the store failed to destroy a session: %O', error);
      resolve(false);
    }
  });
}

/** Makes this node answer other nodes' questions about a user's sessions. Once per server. */
export function listenForSessions(io: Server): void {
  const server = serverState(io);
  if (server.sessionsListening) return;
  server.sessionsListening = true;
  io.on(
    LIST_EVENT as never,
    ((userKey: unknown, ack: unknown) => {
      if (typeof ack !== 'function') return;
      (ack as (sessions: LiveSession[]) => void)(
        typeof userKey === 'string' ? localSessions(server, userKey) : [],
      );
    }) as never,
  );
  io.on(
    DESTROY_EVENT as never,
    ((userKey: unknown, handles: unknown, ack: unknown) => {
      if (typeof ack !== 'function') return;
      const reply = ack as (done: string[]) => void;
      if (typeof userKey !== 'string' || !Array.isArray(handles)) {
        reply([]);
        return;
      }
      destroyLocal(
        server,
        userKey,
        handles.filter((h) => typeof h === 'string'),
      ).then(reply, () => {
        reply([]);
      });
    }) as never,
  );
}
