// Putting the package on a namespace, and on every child of a parent (dynamic) namespace: the ones
// it will create and the ones it already has. Also where the package learns that a socket is gone:
// Socket.IO tells nobody when it discards a socket whose handshake did not complete.
import type { Namespace, Socket } from 'socket.io';
import {
  attachChild,
  childrenOf,
  cleansUpEmptyChildren,
  interceptRemove,
  middlewareOf,
  pendingHandshakes,
  removeChild,
  watchHandshakes,
} from './socket-io-internals.js';

type Middleware = (socket: Socket, next: (err?: Error) => void) => void;

/**
 * What a layered namespace calls about its sockets, given by whoever layers it (the handshake's
 * `leave` and `handshakeSettled`): this module sits below the handshake and cannot import it.
 */
export interface SocketLifecycle {
  /** One of its sockets is gone, connected or not. */
  left(socket: Socket): void;
  /** A handshake has ended, connected or not. */
  settled(socket: Socket, err: Error | undefined, startedAt: number): void;
  /** A middleware added to a namespace `socket` was already connected to: check it as a connect. */
  lateStep(socket: Socket, step: Middleware): void;
  /** A `connection` listener added after `socket` connected: call it once the socket passes. */
  lateListener(socket: Socket, listener: (socket: Socket) => void): void;
}

/** The sockets connected to a namespace, or, for a parent, to its children. */
function connectedTo(nsp: Namespace): Socket[] {
  const children = childrenOf(nsp);
  if (!children) return [...nsp.sockets.values()];
  return [...children].flatMap((child) => [...child.sockets.values()]);
}

const layered = new WeakSet<Namespace>();

/**
 * Learns when the sockets of a concrete namespace leave: a connected one through Socket.IO's
 * removal, one whose handshake ended without connecting (refused, or its client left) once
 * Socket.IO has discarded it. For a child, also removes it when it is left empty (see
 * pruneEmptyChildren).
 */
function watchNamespace(
  nsp: Namespace,
  lifecycle: SocketLifecycle,
  emptied?: (child: Namespace, wasConnected: boolean) => void,
) {
  if (layered.has(nsp)) return;
  layered.add(nsp);
  interceptRemove(nsp, (_nsp, socket, wasConnected) => {
    if (wasConnected) lifecycle.left(socket);
    emptied?.(nsp, wasConnected);
  });
  watchHandshakes(nsp, (socket, err, startedAt) => {
    lifecycle.settled(socket, err, startedAt);
    if (!socket.connected) lifecycle.left(socket);
    emptied?.(nsp, false);
  });
}

/**
 * `nsp.use(fn)`, and for a parent namespace, `child.use(fn)` on the children it already has:
 * Socket.IO copies a parent's middleware into a child only when it creates the child. A concrete
 * namespace is watched from its first layer on, with `lifecycle` (a parent's children are watched
 * by pruneEmptyChildren). Socket.IO runs middleware only at a connect: the sockets already
 * connected are handed to `lifecycle.lateStep`.
 */
export function useEverywhere(nsp: Namespace, lifecycle: SocketLifecycle, fn: Middleware): void {
  if (!childrenOf(nsp)) watchNamespace(nsp, lifecycle);
  nsp.use(fn);
  for (const child of childrenOf(nsp) ?? []) child.use(fn);
  for (const socket of connectedTo(nsp)) lifecycle.lateStep(socket, fn);
}

/**
 * `nsp.on('connection', listener)`, on the children a parent already has too; the sockets already
 * connected are handed to `lifecycle.lateListener`.
 */
export function onConnectionEverywhere(
  nsp: Namespace,
  lifecycle: SocketLifecycle,
  listener: (socket: Socket) => void,
): void {
  nsp.on('connection', listener);
  for (const child of childrenOf(nsp) ?? []) child.on('connection', listener);
  for (const socket of connectedTo(nsp)) lifecycle.lateListener(socket, listener);
}

/** Calls `fn` on each child a parent has, and on each it creates from now on. */
export function forEachChild(parent: Namespace, fn: (child: Namespace) => void): void {
  const children = childrenOf(parent);
  if (!children) return;
  for (const child of children) fn(child);
  parent.server.sockets.on('new_namespace', (child: Namespace) => {
    if (children.has(child)) fn(child);
  });
}

const pruned = new WeakSet<Namespace>();
const parents = new WeakMap<Namespace, Namespace>();

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
 *
 * Each child is watched with `lifecycle`, from the first layer on.
 */
export function pruneEmptyChildren(parent: Namespace, lifecycle: SocketLifecycle): void {
  const children = childrenOf(parent);
  if (!children || pruned.has(parent)) return;
  pruned.add(parent);
  const io = parent.server;
  const existing = new Set(children);
  const hadMember = new WeakSet<Namespace>();

  const emptied = (child: Namespace, wasConnected: boolean): void => {
    if (wasConnected) hadMember.add(child);
    if (!children.has(child) || child.sockets.size > 0 || pendingHandshakes(child) > 0) return;
    const remove = cleansUpEmptyChildren(io)
      ? true
      : !existing.has(child) && !hadMember.has(child) && !customised(parent, child);
    if (remove) removeChild(parent, child);
  };
  forEachChild(parent, (child) => {
    parents.set(child, parent);
    watchNamespace(child, lifecycle, emptied);
    child.on('connection', reattachChild);
  });
}

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
