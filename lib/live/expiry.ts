// A socket never outlives its session. Each server keeps its tracked sockets in one heap ordered by
// expiry, with one timer for the earliest: no timer per socket. At a socket's expiry the store is
// asked once (HTTP requests may have moved the expiry forward); no event reads the store.
import { ERR_SESSION_EXPIRED } from '../core/errors.js';
import { endSocket } from './revocation.js';
import type { ServerState, SocketState } from '../core/state.js';
import type { SessionStoreLike } from '../core/types.js';

const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A session whose stored expiry has passed, yet is still in the store, is asked again after 1 s,
 * then 2, 4, … up to 30 s: a store that keeps time itself (connect-redis's TTL, in whole seconds)
 * may not have dropped it yet, or HTTP requests touched it, which moves that time but not the
 * stored expiry. Either way the store's answer is the truth, and it comes at most 30 s late.
 */
const FIRST_RECHECK_MS = 1000;
const LAST_RECHECK_MS = 30_000;

/**
 * When the socket's session expires (ms since epoch), or undefined for a browser-session cookie:
 * express-session's `session.cookie.maxAge`, or cookie-session's `req.sessionOptions.maxAge` (the
 * cookie was written at most that long ago: counted from now, the socket's upper bound). `now`
 * is the server's clock (core/clock.ts): the stored expiry is in real time, the heap in its time.
 */
export function cookieExpiry(req: object, now: number): number | undefined {
  const { session, sessionOptions } = req as { session?: unknown; sessionOptions?: unknown };
  const cookie =
    session !== null && typeof session === 'object'
      ? (session as { cookie?: unknown }).cookie
      : undefined;
  const source = cookie !== null && typeof cookie === 'object' ? cookie : sessionOptions;
  const maxAge =
    source !== null && typeof source === 'object'
      ? (source as { maxAge?: unknown }).maxAge
      : undefined;
  return typeof maxAge === 'number' && Number.isFinite(maxAge) ? now + maxAge : undefined;
}

/** Puts (or moves) the socket in its server's heap at `expires`; undefined takes it out. */
export function armExpiry(state: SocketState, expires: number | undefined): void {
  const { server } = state;
  state.expires = expires;
  if (expires === undefined || state.ended) {
    remove(server, state);
  } else if (state.heapIndex < 0) {
    const heap = server.expiryHeap;
    state.heapIndex = heap.length;
    heap.push(state);
    up(heap, state.heapIndex);
  } else {
    up(server.expiryHeap, state.heapIndex);
    down(server.expiryHeap, state.heapIndex);
  }
  schedule(server);
}

/** Takes the socket out of its server's heap (it left, or its session ended). */
export function disarmExpiry(state: SocketState): void {
  if (state.heapIndex < 0) return;
  remove(state.server, state);
  schedule(state.server);
}

// One timer per server, at the earliest expiry in its heap, or before it: when the earliest socket
// leaves, the timer set for it stays (re-arming it costs a timer per connection that leaves); it
// fires early, finds nothing due and sets the next. An empty heap clears it.
function schedule(server: ServerState): void {
  const first = server.expiryHeap[0];
  const at = first?.expires ?? Infinity;
  if (at === server.expiryAt || (at > server.expiryAt && at !== Infinity)) return;
  const { clock } = server;
  clock.clearTimeout(server.expiryTimer);
  server.expiryTimer = undefined;
  server.expiryAt = at;
  if (at === Infinity) return;
  const delay = Math.min(Math.max(at - clock.now(), 0), MAX_TIMER_MS);
  server.expiryTimer = clock.setTimeout(() => {
    server.expiryTimer = undefined;
    server.expiryAt = Infinity;
    expireDue(server);
  }, delay);
}

function expireDue(server: ServerState): void {
  const heap = server.expiryHeap;
  const now = server.clock.now();
  for (let first = heap[0]; first?.expires !== undefined && first.expires <= now; first = heap[0]) {
    remove(server, first);
    // From now on its events are refused until the store says the session goes on: the event
    // guard, which layerLifecycle gave the server's record (this module cannot import it).
    server.expiring?.(first);
    recheck(first);
  }
  schedule(server);
}

// At the local expiry, the store decides: HTTP requests may have moved the expiry forward since
// the socket connected. One store read per expiry, none per event.
function recheck(state: SocketState): void {
  const { socket, sessionID } = state;
  const { sessionStore: store } = socket.request as { sessionStore?: SessionStoreLike };
  // No store to ask (cookie-session): the cookie's own lifetime is all there is.
  if (!store || sessionID === undefined) {
    endSocket(state, ERR_SESSION_EXPIRED, 'expiry');
    return;
  }
  store.get(sessionID, (err, stored) => {
    if (!socket.connected || state.ended) return;
    if (err || !stored) {
      endSocket(state, ERR_SESSION_EXPIRED, 'expiry');
      return;
    }
    const expires = timeOf(stored.cookie?.expires);
    const now = state.server.clock.now();
    if (expires !== undefined && expires > now) {
      state.recheckMs = 0;
      state.expiredAt = undefined;
      armExpiry(state, expires);
      return;
    }
    // Still in the store past its stored expiry: the store keeps time itself. Ask again soon.
    state.expiredAt ??= expires ?? now;
    state.recheckMs = Math.min(Math.max(state.recheckMs * 2, FIRST_RECHECK_MS), LAST_RECHECK_MS);
    armExpiry(state, now + state.recheckMs);
  });
}

function timeOf(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  const time = value instanceof Date ? value.getTime() : new Date(value as string).getTime();
  return Number.isNaN(time) ? undefined : time;
}

// A binary heap on `expires`, each socket knowing its index, so that one leaving is O(log n).

function remove(server: ServerState, state: SocketState): void {
  const heap = server.expiryHeap;
  const index = state.heapIndex;
  if (index < 0) return;
  state.heapIndex = -1;
  const last = heap.pop();
  if (last === undefined || last === state) return;
  heap[index] = last;
  last.heapIndex = index;
  up(heap, index);
  down(heap, index);
}

function key(state: SocketState): number {
  return state.expires ?? Infinity;
}

function swap(heap: SocketState[], i: number, j: number): void {
  const a = heap[i] as SocketState;
  const b = heap[j] as SocketState;
  heap[i] = b;
  heap[j] = a;
  a.heapIndex = j;
  b.heapIndex = i;
}

function up(heap: SocketState[], index: number): void {
  let i = index;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (key(heap[parent] as SocketState) <= key(heap[i] as SocketState)) return;
    swap(heap, i, parent);
    i = parent;
  }
}

function down(heap: SocketState[], index: number): void {
  let i = index;
  for (;;) {
    const left = 2 * i + 1;
    const right = left + 1;
    let smallest = i;
    if (left < heap.length && key(heap[left] as SocketState) < key(heap[smallest] as SocketState)) {
      smallest = left;
    }
    if (
      right < heap.length &&
      key(heap[right] as SocketState) < key(heap[smallest] as SocketState)
    ) {
      smallest = right;
    }
    if (smallest === i) return;
    swap(heap, i, smallest);
    i = smallest;
  }
}
