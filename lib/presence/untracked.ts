// A presence whose scope nothing tracks counts nobody: only sessionNamespace and passportNamespace
// track sockets (an anonymous socket of theirs is tracked, userless). Said once, at the first
// socket that connects in scope, if its namespace (a whole server: any of its namespaces) is not
// one of theirs by then. Nothing is watched when it already is: the usual order costs nothing.
import type { Namespace, Socket } from 'socket.io';
import { isTracking } from '../api/setup.js';
import { warnOnce } from '../diagnostics/diagnostics.js';
import { childrenOf, namespacesOf } from '../socket-io/socket-io-internals.js';
import type { PresenceTracker } from './tracker.js';

export const UNTRACKED_WARNING = 'SOCKET_IO_SESSION_AUTH_PRESENCE_UNTRACKED';

function untrackedMessage(nsp: Namespace | undefined): string {
  const where = nsp ? `namespace ${nsp.name}` : 'this server';
  const target = nsp ? `io.of('${nsp.name}')` : `io.of('/chat')`;
  return (
    `presence: a socket connected to ${where}, but no sessionNamespace or passportNamespace ` +
    `tracks its sockets, so presence counts nobody there. Layer one first: ` +
    `presence(sessionNamespace(${target}, sessionMiddleware, { passport })).`
  );
}

/**
 * Watches the tracker's scope until its first connect, then warns if nothing tracks it. Returns
 * what stops watching (the tracker's close).
 */
export function warnIfUntracked(tracker: PresenceTracker): () => void {
  const { io, nsp } = tracker;
  const tracked = (): boolean => isTracking(nsp ?? io);
  if (tracked()) return () => undefined;
  const watched = new Set<Namespace>();
  const stop = (): void => {
    // A parent's listener was copied into the children it made since (Socket.IO does).
    for (const each of [...watched, ...(nsp ? (childrenOf(nsp) ?? []) : [])]) {
      each.off('connection', connected);
    }
    watched.clear();
    io.sockets.off('new_namespace', added);
  };
  const watch = (each: Namespace): void => {
    watched.add(each);
    each.on('connection', connected);
  };
  function connected(socket: Socket): void {
    if (!tracker.inScope(socket.nsp)) return;
    stop();
    if (!tracked()) warnOnce(UNTRACKED_WARNING, untrackedMessage(nsp));
  }
  // A whole server: each of its namespaces, until one is tracked (then no child is ever watched,
  // so the pruning of a tracked parent's empty children sees no listener of ours).
  function added(each: Namespace): void {
    if (tracked()) stop();
    else watch(each);
  }
  if (nsp) {
    for (const each of [nsp, ...(childrenOf(nsp) ?? [])]) watch(each);
  } else {
    for (const each of namespacesOf(io)) watch(each);
    io.sockets.on('new_namespace', added);
  }
  return stop;
}
