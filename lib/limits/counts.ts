// rateLimit's `perUser` and `perSession`: a socket, once tracked, is counted with the other
// sockets of its user (or session) in the limit's namespaces. On one node the count is exact,
// from the server's own indexes (core/state.ts byUser, bySession: sockets connected or in their
// handshake, oldest first); with `redis`, from the count every node keeps there (shared-count.ts).
import type { Socket } from 'socket.io';
import { ERR_MIDDLEWARE_ERROR, ERR_RATE_LIMITED, refusal } from '../core/errors.js';
import { keepWhy } from '../core/state-fields.js';
import { debug } from '../diagnostics/debug.js';
import { REASONS, type NoUserReason } from '../diagnostics/diagnostics.js';
import { serverState, type HandshakeLimit, type SocketState } from '../core/state.js';
import { endSocket } from '../live/revocation.js';
import type { ConnectionLimits } from './connections.js';
import type { LimitContext } from './rate-limit.js';
import { SharedCount } from './shared-count.js';

type By = 'user' | 'session';

interface Count {
  by: By;
  max: number;
  key(state: SocketState): string | undefined;
  /** This node's sockets under the same key, oldest first. */
  local(state: SocketState): SocketState[];
}

/** The counts' options checked: a TypeError naming `helper`. */
export function checkCounts(helper: string, limits: ConnectionLimits): void {
  for (const name of ['perUser', 'perSession', 'retryAfterMs', 'nodeTimeoutMs'] as const) {
    const value = limits[name];
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
      throw new TypeError(
        `${helper}: options.connections.${name} must be a whole number, at least 1`,
      );
    }
  }
  const { onExceed = 'refuse' } = limits as { onExceed?: unknown };
  if (onExceed !== 'refuse' && onExceed !== 'end-oldest') {
    throw new TypeError(`${helper}: options.connections.onExceed must be 'refuse' or 'end-oldest'`);
  }
}

/**
 * A refusal for a limit, with when to try again. Why is kept for the handshake's diagnostics
 * message (the test kit's refusal messages) and the debug log, and with the namespace's
 * `explain`, in `err.data.reason`: the reasons a refused developer already reads.
 */
export function rateLimited(
  retryAfterMs: number,
  socket: Socket,
  reason: NoUserReason,
  explain = false,
): Error {
  const refused = refusal(ERR_RATE_LIMITED, 429);
  refused.data.retryAfterMs = retryAfterMs;
  keepWhy(socket, { reason, explain });
  if (explain) refused.data.reason = reason;
  debug('nsp %s socket %s refused: %s', socket.nsp.name, socket.id, REASONS[reason]);
  return refused;
}

function countsOf(limits: ConnectionLimits): Count[] {
  const counts: Count[] = [];
  if (limits.perUser !== undefined) {
    counts.push({
      by: 'user',
      max: limits.perUser,
      key: (state) => state.userKey,
      local: (state) => (state.userKey === undefined ? [] : state.server.byUser.get(state.userKey)),
    });
  }
  if (limits.perSession !== undefined) {
    counts.push({
      by: 'session',
      max: limits.perSession,
      key: (state) => state.sessionDigest,
      local: (state) =>
        state.sessionDigest === undefined ? [] : state.server.bySession.get(state.sessionDigest),
    });
  }
  return counts;
}

/** The tracked and left hooks of the counts (nothing to do without perUser and perSession). */
export function countsLimit(
  limits: ConnectionLimits,
  context: LimitContext,
  covers: (socket: SocketState['socket']) => boolean,
): Pick<HandshakeLimit, 'tracked' | 'left'> {
  const counts = countsOf(limits);
  if (counts.length === 0)
    return {
      tracked: (_state, next) => {
        next();
      },
      left: () => undefined,
    };
  const limit = new Counts(limits, context, covers, counts);
  return {
    tracked: (state, next) => {
      limit.tracked(state, next);
    },
    left: (state) => limit.shared?.left(state),
  };
}

class Counts {
  private readonly onExceed: 'refuse' | 'end-oldest';
  private readonly retryAfterMs: number;
  readonly shared: SharedCount | undefined;

  constructor(
    limits: ConnectionLimits,
    private readonly context: LimitContext,
    private readonly covers: (socket: SocketState['socket']) => boolean,
    private readonly counts: Count[],
  ) {
    const { onExceed = 'refuse', retryAfterMs = 5000, nodeTimeoutMs = 15_000 } = limits;
    this.onExceed = onExceed;
    this.retryAfterMs = retryAfterMs;
    const { store, io, nsp } = context;
    this.shared =
      store.redis === undefined
        ? undefined
        : new SharedCount(
            io,
            store.redis as ConstructorParameters<typeof SharedCount>[1],
            // The scope in a hash tag; then which connection limit of the server this is (the
            // same on every node, which runs the same setup): two limits, two counts.
            `${store.prefix}:connections:{${nsp?.name ?? '*'}}:${serverState(io).limits.length}`,
            store.timeoutMs,
            nodeTimeoutMs,
            (state, by) => {
              this.endOldest(state, by === 'session' ? 'session' : 'user');
            },
          );
  }

  tracked(state: SocketState, next: (err?: Error) => void): void {
    if (!this.covers(state.socket)) {
      next();
      return;
    }
    this.admitAll(state).then(
      (refusedBy) => {
        if (refusedBy === undefined) next();
        else {
          this.report(state, refusedBy, 'refused');
          const reason = refusedBy === 'user' ? 'user-socket-limit' : 'session-socket-limit';
          next(rateLimited(this.retryAfterMs, state.socket, reason, state.options.explain));
        }
      },
      (error: unknown) => {
        next(refusal(ERR_MIDDLEWARE_ERROR, 500, error));
      },
    );
  }

  /** Each count in turn: the first that has no room says by what the socket is refused. */
  private async admitAll(state: SocketState): Promise<By | undefined> {
    for (const count of this.counts) {
      const key = count.key(state);
      if (key !== undefined && !(await this.admit(state, count, key))) return count.by;
    }
    return undefined;
  }

  private async admit(state: SocketState, count: Count, key: string): Promise<boolean> {
    const { shared } = this;
    if (!shared) return this.local(state, count);
    const endsOldest = this.onExceed === 'end-oldest';
    const admission = await shared.admit(state, count.by, key, count.max, endsOldest);
    if (admission) {
      for (const member of admission.evicted) shared.ended(member, count.by);
      return admission.admitted;
    }
    // Redis failed: onStoreError decides ('memory': this node's own count, as if alone).
    this.report(state, count.by, 'store-error');
    const { onStoreError } = this.context.store;
    if (onStoreError === 'allow') return true;
    return onStoreError === 'refuse' ? false : this.local(state, count);
  }

  /** On this node's indexes: room, or room made (the oldest ended), or none. */
  private local(state: SocketState, count: Count): boolean {
    const others = count
      .local(state)
      .filter((s) => s !== state && !s.ended && this.covers(s.socket));
    if (others.length < count.max) return true;
    if (this.onExceed === 'refuse') return false;
    for (const old of others.slice(0, others.length - count.max + 1)) this.endOldest(old, count.by);
    return true;
  }

  private endOldest(state: SocketState, by: By): void {
    this.report(state, by, 'ended');
    endSocket(state, ERR_RATE_LIMITED, 'rate-limit');
  }

  private report(state: SocketState, by: By, outcome: 'refused' | 'ended' | 'store-error'): void {
    this.context.report(() => ({
      namespace: state.socket.nsp.name,
      socketId: state.socket.id,
      limit: 'connections',
      by,
      outcome,
      code: ERR_RATE_LIMITED,
      retryAfterMs: outcome === 'refused' ? this.retryAfterMs : undefined,
    }));
  }
}
