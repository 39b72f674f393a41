// The `presence` diagnostics channel, fed by the tracker's own join and leave listeners: nothing
// in the tracker knows of it, and nothing is built while nobody subscribes.
import { publish } from '../diagnostics/diagnostics.js';
import type { PresenceEntry, PresenceTracker } from './tracker.js';

/** Publishes each join and leave of `tracker` on the `presence` channel. */
export function publishPresence(tracker: PresenceTracker): void {
  const scope = tracker.nsp?.name ?? '*';
  for (const event of ['join', 'leave'] as const) {
    tracker.listeners[event].add((entry: PresenceEntry) => {
      publish('presence', () => ({
        scope,
        event,
        connections: entry.connections,
        online: tracker.users.size,
      }));
    });
  }
}
