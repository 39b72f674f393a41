// How a socket's connect went, and what a refusal says: the code and status the client saw, and
// the package's reason for it (why the socket had no user). The client sees the reason only when
// the app explains (sessionNamespace's `explain`); the kit hears it on the `handshake`
// diagnostics channel otherwise, matched to its own socket by the connection's id.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import {
  CHANNELS,
  REASONS,
  type HandshakeMessage,
  type NoUserReason,
} from '../../diagnostics/diagnostics.js';
import { failure } from '../bounded.js';
import { watch, type Outcome, type SocketRecord } from './socket-record.js';
import type { TestSocket } from './test-socket.js';

/** What a client sees of a refusal: `connect_error`'s message and data. */
export interface Refusal {
  message: string;
  /** `{ code, status }` for this package's refusals; undefined for Socket.IO's own. */
  data?: { code?: string; status?: number; location?: string } & Record<string, unknown>;
}

/**
 * What a refusal says, for messages: `ERR_FORBIDDEN (403 Forbidden)`, and the package's reason
 * when it gave one: `ERR_UNAUTHORIZED (401 Unauthorized; reason user-not-found: …)`.
 */
export function describeRefusal(refusal: Refusal, reason?: NoUserReason): string {
  const { code, status } = refusal.data ?? {};
  if (code === undefined) {
    return `${JSON.stringify(refusal.message)} (no code: ${
      refusal.message === 'Invalid namespace'
        ? 'Socket.IO has no such namespace'
        : 'refused before any namespace middleware, such as at the HTTP level'
    })`;
  }
  const why = reason === undefined ? '' : `; reason ${reason}: ${REASONS[reason]}`;
  return `${code} (${status === undefined ? '' : `${status} `}${refusal.message}${why})`;
}

/** What an outcome that is a refusal says: {@link describeRefusal} of it. */
export function describeRefused(outcome: Extract<Outcome, { kind: 'refused' }>): string {
  return describeRefusal(outcome.refusal, outcome.reason);
}

/**
 * The reasons the package gave for refusing the kit's sockets, heard on the `handshake`
 * diagnostics channel from the kit's start to its close. Listening also has the package work the
 * reasons out, as for any diagnostics subscriber, on every server of the process meanwhile.
 */
export class RefusalReasons {
  private readonly heard = new Map<string, NoUserReason>();
  private readonly listener = (message: unknown): void => {
    const { outcome, reason, connection: connectionId, namespace } = message as HandshakeMessage;
    if (outcome !== 'refused' || reason === undefined || !this.isOurs(connectionId)) return;
    this.heard.set(`${connectionId} ${namespace}`, reason);
  };

  /** `isOurs(connection)`: whether a connection (its digest) is one of the kit's tabs. */
  constructor(private readonly isOurs: (connectionId: string) => boolean) {
    subscribe(CHANNELS.handshake, this.listener);
  }

  /** The reason given for the refusal of namespace `namespace` on that connection, taken once. */
  take(connectionId: string | undefined, namespace: string): NoUserReason | undefined {
    if (connectionId === undefined) return undefined;
    const key = `${connectionId} ${namespace}`;
    const reason = this.heard.get(key);
    this.heard.delete(key);
    return reason;
  }

  stop(): void {
    unsubscribe(CHANNELS.handshake, this.listener);
    this.heard.clear();
  }
}

/** Resolves once the socket has connected; rejects as soon as it is refused, or after `ms`. */
export function settled(record: SocketRecord, ms: number): Promise<Outcome> {
  return watch(
    record,
    () => record.outcome,
    ms,
    () =>
      `expected ${record.socket.label} to connect or be refused, but neither connect nor ` +
      `connect_error came within ${ms} ms (is the server listening? is the path right?)`,
  );
}

// The errors `connected` rejects with, and the socket each is about: expectRefused reads them.
const failedConnects = new WeakMap<object, { record: SocketRecord; ms: number }>();

/** The socket a rejection of {@link connected} is about, and how long it waited. */
export function failedConnectOf(error: unknown): { record: SocketRecord; ms: number } | undefined {
  return typeof error === 'object' && error !== null ? failedConnects.get(error) : undefined;
}

/**
 * Resolves with the socket once it has connected. Rejects with an AssertionError that says how it
 * was refused, or that nothing came within `ms`.
 */
export async function connected(record: SocketRecord, ms: number): Promise<TestSocket> {
  const { socket } = record;
  try {
    const outcome = await settled(record, ms);
    if (outcome.kind === 'connected') return socket;
    throw failure(
      `expected ${socket.label} to connect, but it was refused: ${describeRefused(outcome)}`,
    );
  } catch (error) {
    if (typeof error === 'object' && error !== null) failedConnects.set(error, { record, ms });
    throw error;
  }
}
