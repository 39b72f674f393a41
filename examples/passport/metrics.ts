// Prometheus metrics fed only by socket.io-session-auth's diagnostics channels: copy this file.
// The channels cost nothing until something subscribes; subscribing is all this does.
import diagnosticsChannel from 'node:diagnostics_channel';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  DIAGNOSTICS_CHANNELS,
  type BroadcastMessage,
  type EventRefusedMessage,
  type HandshakeMessage,
  type PresenceMessage,
  type RateLimitedMessage,
  type SessionEndedMessage,
  type StoreErrorMessage,
} from 'socket.io-session-auth';

/** The registry to serve on `/metrics`, and how to stop counting. */
export interface Metrics {
  registry: Registry;
  close(): void;
}

/**
 * Counts what happens to sockets. `namespaceLabel` maps a namespace's name to a label: give every
 * child of a dynamic namespace one label (`/tenant-*`), or a stranger trying names would create a
 * time series per name.
 */
export function createMetrics(namespaceLabel: (name: string) => string): Metrics {
  const registry = new Registry();
  const registers = [registry];

  const handshakes = new Counter({
    name: 'socketio_session_auth_handshakes_total',
    help: 'Namespace handshakes, by outcome (accepted, refused, left) and refusal code.',
    labelNames: ['namespace', 'outcome', 'code'] as const,
    registers,
  });
  const handshakeSeconds = new Histogram({
    name: 'socketio_session_auth_handshake_duration_seconds',
    help: 'From the namespace middleware to the connect or the refusal.',
    labelNames: ['namespace', 'outcome'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers,
  });
  const eventsRefused = new Counter({
    name: 'socketio_session_auth_events_refused_total',
    help: 'Events refused before their handlers, by code.',
    labelNames: ['namespace', 'code'] as const,
    registers,
  });
  const sessionsEnded = new Counter({
    name: 'socketio_session_auth_sockets_ended_total',
    help: 'Live sockets ended with session:ended, by code and by how (logout, expiry, refresh, …).',
    labelNames: ['namespace', 'code', 'how'] as const,
    registers,
  });
  const storeErrors = new Counter({
    name: 'socketio_session_auth_store_errors_total',
    help: 'Session store errors, timeouts and disconnections during a session read.',
    labelNames: ['namespace', 'kind'] as const,
    registers,
  });
  const broadcasts = new Counter({
    name: 'socketio_session_auth_broadcasts_total',
    help: 'Revocations and refreshes sent to the other nodes, by whether every node acknowledged.',
    labelNames: ['kind', 'target', 'acknowledged'] as const,
    registers,
  });
  const rateLimited = new Counter({
    name: 'socketio_session_auth_rate_limited_total',
    help:
      'Handshakes and events over a rateLimit limit, by limit (connections, ip, or the budget of ' +
      'an event), what it counts by, and outcome (refused, dropped, ended, store-error).',
    labelNames: ['namespace', 'limit', 'by', 'outcome'] as const,
    registers,
  });

  const online = new Gauge({
    name: 'socketio_session_auth_online_users',
    help: "Users online (presence()), each once however many tabs, by namespace: this node's.",
    labelNames: ['namespace'] as const,
    registers,
  });
  // Each presence's own count, by its scope: several scopes under one label (every tenant) add up.
  const onlineByScope = new Map<string, number>();
  const setOnline = ({ scope, online: count }: PresenceMessage): void => {
    if (count === 0) onlineByScope.delete(scope);
    else onlineByScope.set(scope, count);
    const namespace = namespaceLabel(scope);
    let sum = 0;
    for (const [other, n] of onlineByScope) if (namespaceLabel(other) === namespace) sum += n;
    online.set({ namespace }, sum);
  };

  const subscriptions: [string, (message: unknown) => void][] = [
    [
      DIAGNOSTICS_CHANNELS.handshake,
      (message) => {
        const m = message as HandshakeMessage;
        const namespace = namespaceLabel(m.namespace);
        handshakes.inc({ namespace, outcome: m.outcome, code: m.code ?? '' });
        handshakeSeconds.observe({ namespace, outcome: m.outcome }, m.durationMs / 1000);
      },
    ],
    [
      DIAGNOSTICS_CHANNELS.eventRefused,
      (message) => {
        const m = message as EventRefusedMessage;
        eventsRefused.inc({ namespace: namespaceLabel(m.namespace), code: m.code });
      },
    ],
    [
      DIAGNOSTICS_CHANNELS.sessionEnded,
      (message) => {
        const m = message as SessionEndedMessage;
        sessionsEnded.inc({ namespace: namespaceLabel(m.namespace), code: m.code, how: m.how });
      },
    ],
    [
      DIAGNOSTICS_CHANNELS.storeError,
      (message) => {
        const m = message as StoreErrorMessage;
        storeErrors.inc({ namespace: namespaceLabel(m.namespace), kind: m.kind });
      },
    ],
    [
      DIAGNOSTICS_CHANNELS.broadcast,
      (message) => {
        const m = message as BroadcastMessage;
        broadcasts.inc({ kind: m.kind, target: m.target, acknowledged: String(m.acknowledged) });
      },
    ],
    [
      DIAGNOSTICS_CHANNELS.rateLimited,
      (message) => {
        const { namespace, limit, by, outcome } = message as RateLimitedMessage;
        rateLimited.inc({ namespace: namespaceLabel(namespace), limit, by, outcome });
      },
    ],
    [
      DIAGNOSTICS_CHANNELS.presence,
      (message) => {
        setOnline(message as PresenceMessage);
      },
    ],
  ];
  for (const [name, onMessage] of subscriptions) diagnosticsChannel.subscribe(name, onMessage);

  return {
    registry,
    close() {
      for (const [name, onMessage] of subscriptions)
        diagnosticsChannel.unsubscribe(name, onMessage);
    },
  };
}
