// Putting the package's middleware and listeners on a namespace, and on every child of a parent
// (dynamic) namespace: the ones it will create and the ones it already has.
import type { Namespace, Socket } from 'socket.io';
import {
  childrenOf,
  cleansUpEmptyChildren,
  countHandshakes,
  interceptRemove,
  middlewareOf,
  attachChild,
  pendingHandshakes,
  removeChild,
} from './socket-io-internals.js';

type Middleware = (socket: Socket, next: (err?: Error) => void) => void;

/**
 * `nsp.use(fn)`, and for a parent namespace, `child.use(fn)` on the children it already has:
 * Socket.IO copies a parent's middleware into a child only when it creates the child.
 */
export function useEverywhere(nsp: Namespace, fn: Middleware): void {
  // So that pendingHandshakes() answers on every Socket.IO version for the namespaces we layer.
  if (!childrenOf(nsp)) countHandshakes(nsp);
  nsp.use(fn);
  for (const child of childrenOf(nsp) ?? []) child.use(fn);
}

/** `nsp.on('connection', listener)`, on the children a parent already has too. */
export function onConnectionEverywhere(nsp: Namespace, listener: (socket: Socket) => void): void {
  nsp.on('connection', listener);
  for (const child of childrenOf(nsp) ?? []) child.on('connection', listener);
}

const pruned = new WeakSet<Namespace>();

/**
 * Removes the children of a parent namespace that its guard left empty. Socket.IO creates a child
 * for every matching name a client asks for, before any middleware runs, and keeps it: without
 * this, a stranger refused on a thousand names leaves a thousand namespaces behind.
 *
 * A child is removed once it has no socket, connected or in its handshake, when:
 * - with Socket.IO's `cleanupEmptyChildNamespaces`: always (Socket.IO's own rule, without its race
 *   that removes a child while another socket of it is still in middleware);
 * - else: it was created after this call, no socket ever connected to it, and the app added no
 *   middleware or listener of its own to it.
 */
export function pruneEmptyChildren(parent: Namespace): void {
  const children = childrenOf(parent);
  if (!children || pruned.has(parent)) return;
  pruned.add(parent);
  const io = parent.server;
  const onDemand = new WeakSet<Namespace>();
  const hadMember = new WeakSet<Namespace>();

  const check = (child: Namespace, wasConnected: boolean): void => {
    if (wasConnected) hadMember.add(child);
    if (!children.has(child) || child.sockets.size > 0 || pendingHandshakes(child) > 0) return;
    const remove = cleansUpEmptyChildren(io)
      ? true
      : onDemand.has(child) && !hadMember.has(child) && !customised(parent, child);
    if (remove) removeChild(parent, child);
  };
  const watch = (child: Namespace): void => {
    parents.set(child, parent);
    interceptRemove(child, check);
    countHandshakes(child, () => {
      check(child, false);
    });
    child.on('connection', reattachChild);
  };
  for (const child of children) watch(child);
  io.sockets.on('new_namespace', (child: Namespace) => {
    if (!children.has(child)) return;
    onDemand.add(child);
    watch(child);
  });
}

const parents = new WeakMap<Namespace, Namespace>();

// A socket whose handshake outlived its child's removal (a slow connectionStateRecovery restore
// between Socket.IO creating the socket and running its middleware) puts the child back, when no
// other child has taken its name meanwhile.
function reattachChild(socket: Socket): void {
  const parent = parents.get(socket.nsp);
  if (parent) attachChild(parent, socket.nsp);
}

// Middleware or listeners the app added to the child itself (not copied from the parent) mean the
// app holds on to it.
function customised(parent: Namespace, child: Namespace): boolean {
  const parentFns = middlewareOf(parent);
  if (middlewareOf(child).some((fn) => !parentFns.includes(fn))) return true;
  for (const event of ['connection', 'connect'] as const) {
    const inherited = parent.listeners(event);
    const own = (listener: unknown): boolean =>
      !inherited.includes(listener as never) && listener !== reattachChild;
    if (child.listeners(event).some(own)) return true;
  }
  return false;
}
