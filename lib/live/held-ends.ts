// What a store event does to this node's sockets (store-events.ts hears it): it is held a moment
// for the adapter's word on how the session ended, then ends the sockets of the session read before
// it. Events are also remembered a few seconds, for the sockets still in their handshake: read
// before the delete, tracked after it (during deserializeUser), the event found none of them.
import { ERR_SESSION_EXPIRED, ERR_SESSION_REVOKED, type SocketEndedCode } from '../core/errors.js';
import {
  sessionDigest,
  type ServerState,
  type SessionDigest,
  type SocketState,
} from '../core/state.js';
import { digestKey, endSocket, rememberEnded } from './revocation.js';

/** A store event heard, held a moment for the adapter's word on how it ended. */
export interface HeldEnd {
  digest: SessionDigest;
  code: SocketEndedCode;
  /** When it was heard (ms since epoch): only sockets whose session was read before it end. */
  heardAt: number;
  /** When the hold is over (ms since epoch). */
  due: number;
}

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
 * How long an event is remembered for a socket tracked after it (`ServerState.recentEnds`): longer
 * than a handshake's deserializeUser takes. A slower one is left to the safety-net round.
 */
const RECENT_MS = 10_000;
/** At most this many remembered (a flood of deletes of sessions with no socket here). */
const RECENT_MAX = 10_000;

/** A session gone from the store: its sockets here, read before now, end after the hold. */
export function heard(
  server: ServerState,
  session: { id: string } | { digest: string },
  reason: 'deleted' | 'expired' | 'evicted',
): void {
  const digest = digestOf(session);
  if (digest === undefined) return;
  const heardAt = Date.now();
  const code = reason === 'expired' ? ERR_SESSION_EXPIRED : ERR_SESSION_REVOKED;
  remember(server, { digest, code, heardAt, due: heardAt + HOLD_MS });
  // Most events are of sessions with no socket on this node: only remembered a while.
  if (server.bySession.get(digest).length === 0) return;
  hold(server, { digest, code, heardAt, due: heardAt + HOLD_MS });
}

/** Keeps an event for {@link RECENT_MS}, oldest first (re-inserted: a Map keeps insertion order). */
function remember(server: ServerState, held: HeldEnd): void {
  const recent = server.recentEnds;
  recent.delete(held.digest);
  recent.set(held.digest, held);
  for (const [digest, old] of recent) {
    if (recent.size <= RECENT_MAX && old.heardAt > held.heardAt - RECENT_MS) break;
    recent.delete(digest);
  }
}

/**
 * A socket just tracked (handshake/track.ts) whose session a store event said is gone: it read
 * the session before the event (a read after it finds no session), so it ends as the others did.
 */
export function endIfHeard(state: SocketState): void {
  const { server, sessionDigest: digest } = state;
  if (digest === undefined || server.recentEnds.size === 0) return;
  const held = server.recentEnds.get(digest);
  if (held === undefined || held.heardAt <= Date.now() - RECENT_MS) return;
  // Its own read time is after the event: it counts as read at the event.
  hold(server, { ...held, heardAt: state.readAt, due: Math.max(held.due, Date.now()) });
}

/** Holds an event until `due`: the list stays in order, its timer set for the first one. */
function hold(server: ServerState, held: HeldEnd): void {
  const list = server.heldEnds;
  const last = list.at(-1);
  list.push(held);
  // Only an event held for a rotation, or one remembered for a new socket, is due out of order.
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

/** Forgets the events held and remembered (the server's feeds stopped). */
export function forgetHeld(server: ServerState): void {
  clearTimeout(server.heldTimer);
  server.heldTimer = undefined;
  server.heldEnds = [];
  server.recentEnds.clear();
}
