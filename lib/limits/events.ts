// rateLimit's event limits: how many events a user (or a session, or an address) may send, with a
// default budget and per-event ones, one budget across the user's tabs, the namespaces in scope
// and (with redis) the nodes. A limited event never reaches the app: its ack gets the refusal, or
// it is dropped; a socket that goes on being refused is ended.
import { STATUS_CODES } from 'node:http';
import type { Event, Namespace, Socket } from 'socket.io';
import { ERR_RATE_LIMITED, type SessionAuthError } from '../core/errors.js';
import { digestOf, socketState } from '../core/state.js';
import { refuseEvent, sessionHasEnded } from '../live/events.js';
import { endSocket, sendEnded } from '../live/revocation.js';
import { childrenOf, namespacesOf, prependEventStep } from '../socket-io/socket-io-internals.js';
import { checkEventLimits, RESERVED_EVENTS, type By, type EventLimits } from './event-options.js';
import type { Limiter, Verdict } from './limiter.js';
import type { LimitContext } from './rate-limit.js';

export { checkEventLimits, type EventLimits };

/** The budgets of one `rateLimit` call, ready to count. */
interface EventBudgets {
  /** Keys are `scope:kind:id`: two rateLimit calls on two namespaces never share a count. */
  scope: string;
  by: By;
  endAfter: number | undefined;
  fallback: Limiter | undefined;
  own: Map<string, Limiter>;
  cost: Map<string, number>;
  context: LimitContext;
  /** A whole server: only the sockets the package tracks (its session namespaces') count. */
  trackedOnly: boolean;
}

/**
 * Puts the event limits on the target's sockets: those connected from now on, and those already
 * connected (their next event counts). A server target covers each session namespace (a socket
 * the package tracks), those created later included.
 */
export function limitEvents(limits: EventLimits, context: LimitContext): void {
  // Limiter names start with `events`, so that no event name meets another budget's keys. With
  // Redis, a key refused once is refused from memory to its window's end: a flooder's refused
  // events cost no round trip (limiter.ts).
  const use = { blockInMemory: true };
  const own = new Map<string, Limiter>();
  for (const [event, budget] of Object.entries(limits.budgets ?? {})) {
    own.set(event, context.limiter(`events:${event}`, budget, use));
  }
  const budgets: EventBudgets = {
    scope: context.nsp?.name ?? '*',
    by: limits.by ?? 'user',
    endAfter: limits.endAfter,
    fallback: limits.default && context.limiter('events', limits.default, use),
    own,
    cost: new Map(Object.entries(limits.cost ?? {})),
    context,
    trackedOnly: !context.nsp,
  };
  const { nsp, io } = context;
  const onSocket = (socket: Socket): void => {
    limitSocket(socket, budgets);
  };
  const targets: Namespace[] = nsp ? [nsp, ...(childrenOf(nsp) ?? [])] : [...namespacesOf(io)];
  // A parent namespace copies its `connection` listeners into the children it creates later.
  for (const target of targets) target.on('connection', onSocket);
  if (!nsp) {
    io.sockets.on('new_namespace', (created: Namespace) => {
      created.on('connection', onSocket);
    });
  }
  for (const target of targets.filter((t) => !childrenOf(t))) {
    for (const socket of target.sockets.values()) onSocket(socket);
  }
}

/** Which budget an event counts against, if any, and its name in diagnostics. */
function budgetOf(budgets: EventBudgets, event: string): [Limiter, string] | undefined {
  const own = budgets.own.get(event);
  if (own) return [own, event];
  // The package's own events (a token's renewal) count only when the app names them.
  if (!budgets.fallback || RESERVED_EVENTS.has(event)) return undefined;
  return [budgets.fallback, 'default'];
}

/** The socket's event step, first of its `socket.use` steps. */
function limitSocket(socket: Socket, budgets: EventBudgets): void {
  // Known at the first counted event: a recovered socket is tracked after its `connection`.
  let whose: { by: By; key: string } | undefined;
  // Refused events in a row, for endAfter: this socket's, reset by a counted event that goes
  // through (an event no budget counts does not: free events must not keep a flooder on).
  let refusedInRow = 0;
  prependEventStep(socket, function rateLimitEvents(event, next) {
    const name: unknown = event[0];
    const budget = typeof name === 'string' ? budgetOf(budgets, name) : undefined;
    const state = socketState(socket);
    // An ended session's events are refused by the session guard after this, and cost nothing.
    if (!budget || (budgets.trackedOnly && !state) || sessionHasEnded(state)) {
      next();
      return;
    }
    const [limiter, limit] = budget;
    const cost = budgets.cost.get(name as string) ?? 1;
    whose ??= keyOf(socket, budgets.by, budgets.scope);
    const { by } = whose;
    void limiter.consume(whose.key, cost).then((verdict) => {
      // The reporter is built only for what it reports: not for the events that go through.
      const report = (): Report => reporter(socket, budgets.context, limit, by);
      if (verdict.storeError) report()('store-error', verdict);
      if (verdict.ok) {
        refusedInRow = 0;
        next();
        return;
      }
      refusedInRow += 1;
      refuse(socket, event as Event, verdict.retryAfterMs, report());
      if (budgets.endAfter !== undefined && refusedInRow >= budgets.endAfter) {
        endLimited(socket);
        report()('ended', undefined);
      }
    });
  });
}

type Outcome = 'refused' | 'dropped' | 'ended' | 'store-error';
type Report = (outcome: Outcome, verdict: Verdict | undefined) => void;

function reporter(socket: Socket, context: LimitContext, limit: string, by: By): Report {
  return (outcome, verdict) => {
    context.report(() => ({
      namespace: socket.nsp.name,
      socketId: socket.id,
      limit,
      by,
      outcome,
      code: ERR_RATE_LIMITED,
      retryAfterMs: verdict && !verdict.ok ? verdict.retryAfterMs : undefined,
    }));
  };
}

const TOO_MANY = STATUS_CODES[429] ?? 'Too Many Requests';

/** The event never reaches the app: its ack gets the refusal, or it is dropped. */
function refuse(socket: Socket, event: Event, retryAfterMs: number, report: Report): void {
  // No Error built: under a flood, capturing a stack per refused event cost more than the rest of
  // the refusal (about 9 µs of it, measured).
  const refused: Pick<SessionAuthError, 'message' | 'data'> = {
    message: TOO_MANY,
    data: { code: ERR_RATE_LIMITED, status: 429, retryAfterMs },
  };
  const acked = typeof event[event.length - 1] === 'function';
  refuseEvent(socket, event, refused);
  report(acked ? 'refused' : 'dropped', { ok: false, retryAfterMs });
}

/** Ends a socket that went on past endAfter: `session:ended` with ERR_RATE_LIMITED. */
function endLimited(socket: Socket): void {
  const state = socketState(socket);
  if (state) endSocket(state, ERR_RATE_LIMITED, 'rate-limit');
  else if (socket.connected) sendEnded(socket, ERR_RATE_LIMITED);
}

/**
 * What the socket's budget is counted by, and its key: never a session ID, nor a user's key as
 * it is (both digested). A socket without a user counts by its session, one without a session
 * by its address.
 */
function keyOf(socket: Socket, wanted: By, scope: string): { by: By; key: string } {
  const state = socketState(socket);
  if (wanted === 'user' && state?.userKey !== undefined) {
    return { by: 'user', key: `${scope}:u:${digestOf(state.userKey)}` };
  }
  if (wanted !== 'ip' && state?.sessionDigest !== undefined) {
    return { by: 'session', key: `${scope}:s:${state.sessionDigest}` };
  }
  return { by: 'ip', key: `${scope}:i:${addressOf(socket)}` };
}

/** The client's address: Express's `req.ip` (the app's `trust proxy`) on a tracked socket. */
function addressOf(socket: Socket): string {
  const { ip } = socket.request as { ip?: unknown };
  return typeof ip === 'string' && ip !== '' ? ip : socket.handshake.address;
}
