// rateLimit's connection limits: how many sockets a user and a session may have at once (across
// tabs, the namespaces in scope and, with redis, nodes), and how many handshakes an address may
// attempt. They are put on the server's record (core/state.ts `limits`), which the handshake's
// steps consult (handshake/limits.ts): the address before the session read, the counts once
// the socket is tracked. counts.ts counts.
import { childrenOf } from '../socket-io/socket-io-internals.js';
import { serverState, type HandshakeLimit, type SocketState } from '../core/state.js';
import { ERR_MIDDLEWARE_ERROR, ERR_RATE_LIMITED, refusal } from '../core/errors.js';
import { checkCounts, countsLimit, rateLimited } from './counts.js';
import type { Budget } from './limiter.js';
import type { LimitContext } from './rate-limit.js';

/** Options of {@link rateLimit}'s `connections`. */
export interface ConnectionLimits {
  /**
   * At most this many sockets per user (Passport's serialized user), connected or in their
   * handshake, across their tabs, the namespaces the limit covers and, with `redis`, the nodes.
   * @default none
   */
  perUser?: number;
  /** The same per session (express-session's; cookie-session has no ID to count by). @default none */
  perSession?: number;
  /**
   * What a socket over `perUser` or `perSession` does: `'refuse'` it (`connect_error`
   * `ERR_RATE_LIMITED`, 429, `retryAfterMs`), or `'end-oldest'`: the oldest socket of that user
   * (or session) gets `session:ended` with `ERR_RATE_LIMITED`, and the new one comes in.
   * @default 'refuse'
   */
  onExceed?: 'refuse' | 'end-oldest';
  /**
   * The `retryAfterMs` of a socket refused for a count. A count frees up when one of the user's
   * sockets closes, which the server cannot foresee: this is a fixed delay, not a promise.
   * @default 5000
   */
  retryAfterMs?: number;
  /**
   * With `redis`: how long after a node's last heartbeat its sockets stop counting (a node
   * killed without closing them). Heartbeats are every third of it.
   * @default 15000
   */
  nodeTimeoutMs?: number;
  /**
   * Handshake attempts per client address (Express's `req.ip`, with the `app`'s `trust proxy`),
   * checked before the session store is read. Every namespace connect is an attempt.
   * @default none
   */
  perIp?: Budget;
}

export function checkConnectionLimits(
  helper: string,
  value: unknown,
): ConnectionLimits | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object') {
    throw new TypeError(`${helper}: options.connections must be an object`);
  }
  const limits = value as ConnectionLimits;
  checkCounts(helper, limits);
  if (limits.perIp !== undefined) checkBudget(helper, 'options.connections.perIp', limits.perIp);
  return limits;
}

function checkBudget(helper: string, name: string, budget: unknown): void {
  const { points, durationMs } = (budget ?? {}) as Partial<Budget>;
  if (!Number.isInteger(points) || (points as number) < 1) {
    throw new TypeError(`${helper}: ${name}.points must be a whole number, at least 1`);
  }
  if (typeof durationMs !== 'number' || !Number.isInteger(durationMs / 1000) || durationMs < 1000) {
    throw new TypeError(`${helper}: ${name}.durationMs must be a whole number of seconds, in ms`);
  }
}

export function limitConnections(limits: ConnectionLimits, context: LimitContext): void {
  const { nsp } = context;
  // The namespaces the limit covers: the one given (and, a parent, its children), or every one.
  const covers = (socket: { nsp: SocketState['socket']['nsp'] }): boolean =>
    nsp === undefined || socket.nsp === nsp || childrenOf(nsp)?.has(socket.nsp) === true;
  const counts = countsLimit(limits, context, covers);
  const limit: HandshakeLimit = {
    beforeRead: limits.perIp
      ? ipLimit(limits.perIp, context, covers)
      : (_s, _r, next) => {
          next();
        },
    tracked: counts.tracked,
    left: counts.left,
  };
  serverState(context.io).limits.push(limit);
}

/** Handshake attempts per address: one point each, from the `ip` budget. */
function ipLimit(
  budget: Budget,
  context: LimitContext,
  covers: (socket: SocketState['socket']) => boolean,
): HandshakeLimit['beforeRead'] {
  // Named for its scope: with `redis`, two limits (on two namespaces) keep two budgets.
  const limiter = context.limiter(`ip:${context.nsp?.name ?? '*'}`, budget);
  return function limitAddress(socket, req, next) {
    if (!covers(socket)) {
      next();
      return;
    }
    // The request view's prototype is the app's request: Express's `ip` getter, `trust proxy`.
    const ip = (req as { ip?: unknown }).ip;
    const address = typeof ip === 'string' && ip !== '' ? ip : socket.handshake.address;
    const report = (outcome: 'refused' | 'store-error', retryAfterMs?: number): void => {
      context.report(() => ({
        namespace: socket.nsp.name,
        socketId: socket.id,
        limit: 'ip',
        by: 'ip',
        outcome,
        code: ERR_RATE_LIMITED,
        retryAfterMs,
      }));
    };
    limiter.consume(address).then(
      (verdict) => {
        if (verdict.storeError)
          report('store-error', verdict.ok ? undefined : verdict.retryAfterMs);
        if (verdict.ok) next();
        else {
          report('refused', verdict.retryAfterMs);
          // The namespace's `explain` is not known before the read: the reason is in the debug
          // log and the handshake's diagnostics message, not in err.data.
          next(rateLimited(verdict.retryAfterMs, socket, 'address-attempt-limit'));
        }
      },
      (error: unknown) => {
        next(refusal(ERR_MIDDLEWARE_ERROR, 500, error));
      },
    );
  };
}
