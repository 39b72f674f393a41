// Every private member of Socket.IO this package reads or patches, in one place. Each is named in
// INTERNALS with a probe, and spec/socket-io/socket-io-internals.spec.ts runs the probes on every supported
// Socket.IO version: an upgrade that renames or removes one fails there, naming the member.
import type { Namespace, Server, Socket } from 'socket.io';

type Middleware = (socket: Socket, next: (err?: Error) => void) => void;

interface ServerInternals {
  /** Every namespace by name, parents' children included. */
  _nsps: Map<string, Namespace>;
  /** The options the server was created with. */
  _opts: {
    connectionStateRecovery?: { maxDisconnectionDuration?: number; skipMiddlewares?: boolean };
    cleanupEmptyChildNamespaces?: boolean;
    cors?: unknown;
  };
}

interface NamespaceInternals {
  /** The namespace middleware, in order. */
  _fns: Middleware[];
  /** Runs the namespace middleware on a socket. */
  run(socket: Socket, fn: (err?: Error | null) => void): void;
  /** Called when a socket leaves the namespace, connected or still in its handshake. */
  _remove(socket: Socket): void;
  /** Sockets still in their handshake: Socket.IO 4.8 and later only. */
  _preConnectSockets?: Map<string, Socket>;
  /** A parent (dynamic) namespace's children. */
  children?: Set<Namespace>;
}

interface ClientInternals {
  /** Encodes and writes packets on the client's connection. */
  _packet(packet: { type: number; nsp: string }): void;
}

interface AdapterInternals {
  /** connectionStateRecovery: what a reconnecting client gets back, or null. */
  restoreSession(pid: string, offset: string): Promise<{ rooms: string[] } | null>;
  /** Sends to the other nodes; the in-memory adapter's own only warns that there are none. */
  serverSideEmit(packet: unknown[]): void;
}

/** connectionStateRecovery's default `maxDisconnectionDuration`. */
const DEFAULT_RECOVERY_WINDOW_MS = 2 * 60 * 1000;

const serverOf = (io: Server): ServerInternals => io;
const nspOf = (nsp: Namespace): NamespaceInternals => nsp as unknown as NamespaceInternals;

/** `Server#_nsps`: every namespace of the server, children of dynamic namespaces included. */
export function namespacesOf(io: Server): Iterable<Namespace> {
  return serverOf(io)._nsps.values();
}

/** `Server#_opts.connectionStateRecovery`. */
export function recoveryOptions(
  io: Server,
): ServerInternals['_opts']['connectionStateRecovery'] | undefined {
  return serverOf(io)._opts.connectionStateRecovery;
}

/**
 * How long a disconnected socket may be recovered: `maxDisconnectionDuration`, or Socket.IO's
 * default of 2 minutes; undefined without connectionStateRecovery.
 */
export function recoveryWindow(io: Server): number | undefined {
  const recovery = recoveryOptions(io);
  if (!recovery) return undefined;
  return recovery.maxDisconnectionDuration ?? DEFAULT_RECOVERY_WINDOW_MS;
}

/** `Server#_opts.cors`: the CORS options of long-polling. */
export function corsOptions(io: Server): { origin?: unknown; credentials?: unknown } | undefined {
  const { cors } = serverOf(io)._opts;
  return cors !== null && typeof cors === 'object' ? cors : undefined;
}

/** `Server#_opts.cleanupEmptyChildNamespaces`. */
export function cleansUpEmptyChildren(io: Server): boolean {
  return serverOf(io)._opts.cleanupEmptyChildNamespaces === true;
}

/** `Namespace#children`: a parent namespace's children, or undefined for a plain namespace. */
export function childrenOf(nsp: Namespace): Set<Namespace> | undefined {
  return nspOf(nsp).children;
}

/** `Namespace#_fns`: the namespace's middleware. */
export function middlewareOf(nsp: Namespace): readonly Middleware[] {
  return nspOf(nsp)._fns;
}

/** `Namespace#run`: runs the namespace's middleware on a socket (a recovered one, here). */
export function runMiddleware(nsp: Namespace, socket: Socket, fn: (err?: Error) => void): void {
  nspOf(nsp).run(socket, (err) => {
    fn(err ?? undefined);
  });
}

/** `Socket#fns`, its `socket.use` steps: `fn` goes first, before the handshake's (authorizeEvent). */
export function prependEventStep(socket: Socket, fn: (event: unknown[], next: () => void) => void) {
  (socket as unknown as { fns: unknown[] }).fns.unshift(fn);
}

/** `Socket#pid`: the private ID Socket.IO keeps a disconnected socket's state under for recovery. */
export function recoveryIdOf(socket: Socket): string | undefined {
  return (socket as unknown as { pid?: string }).pid;
}

/** `Socket#conn.id`: its engine.io connection's id (the client's `socket.io.engine.id`). */
export function connectionIdOf(socket: Socket): string {
  return (socket.conn as unknown as { id: string }).id;
}

/**
 * `Adapter#restoreSession`: lets `refuse` turn down a restore, so a socket whose session ended
 * while it was away is not recovered. Once per adapter.
 */
const restoreGuarded = new WeakSet();
export function interceptRestore(
  nsp: Namespace,
  refuse: (pid: string, rooms: string[]) => boolean,
): void {
  const adapter = nsp.adapter as unknown as AdapterInternals;
  if (restoreGuarded.has(adapter)) return;
  restoreGuarded.add(adapter);
  const restore = adapter.restoreSession.bind(adapter);
  adapter.restoreSession = async function restoreUnlessEnded(pid, offset) {
    const restored = await restore(pid, offset);
    return restored && refuse(pid, restored.rooms) ? null : restored;
  };
}

/**
 * The in-memory `Adapter` class at the root of an adapter's prototype chain: the last prototype
 * that still has `serverSideEmit` (every adapter extends socket.io-adapter's `Adapter`).
 */
function baseAdapterOf(adapter: object): Partial<AdapterInternals> {
  let base = Object.getPrototypeOf(adapter) as object;
  for (;;) {
    const parent = Object.getPrototypeOf(base) as object | null;
    if (!parent || !('serverSideEmit' in parent)) break;
    base = parent;
  }
  return base;
}

/**
 * `Adapter#serverSideEmit`: whether the adapter spans nodes (Redis, Postgres, cluster, …), told by
 * whether it replaces the in-memory adapter's own `serverSideEmit`, which only warns.
 */
export function spansNodes(adapter: object): boolean {
  return (
    (adapter as Partial<AdapterInternals>).serverSideEmit !== baseAdapterOf(adapter).serverSideEmit
  );
}

// Socket.IO before 4.8 keeps no list of the sockets in their handshake: count them around `run`.
const handshakesUnderWay = new WeakMap<Namespace, { count: number }>();

/**
 * How many sockets are in the namespace's handshake (created, not yet connected or discarded):
 * `Namespace#_preConnectSockets` on 4.8, else what {@link watchHandshakes} counted.
 */
export function pendingHandshakes(nsp: Namespace): number {
  return nspOf(nsp)._preConnectSockets?.size ?? handshakesUnderWay.get(nsp)?.count ?? 0;
}

/**
 * Wraps the namespace's `run` (`Namespace#run`) to call `settled(socket)` once Socket.IO has
 * connected or discarded a socket whose middleware has finished: Socket.IO does that one tick
 * later, and tells nobody when it discards one (a refusal, or a client that left). Counts the
 * sockets in their handshake meanwhile, for Socket.IO before 4.8.
 */
export function watchHandshakes(
  nsp: Namespace,
  settled: (socket: Socket, err: Error | undefined, startedAt: number) => void,
): void {
  const internals = nspOf(nsp);
  if (handshakesUnderWay.has(nsp)) return;
  const counter = { count: 0 };
  handshakesUnderWay.set(nsp, counter);
  const run = internals.run.bind(nsp);
  internals.run = function watchedRun(socket, fn) {
    counter.count++;
    const startedAt = performance.now();
    run(socket, (err) => {
      fn(err);
      // After Socket.IO's own tick, which connects or discards the socket.
      process.nextTick(() => {
        counter.count--;
        settled(socket, err ?? undefined, startedAt);
      });
    });
  };
}

/**
 * Replaces a namespace's `_remove` (`Namespace#_remove`), Socket.IO's own wrapper for
 * `cleanupEmptyChildNamespaces` included, with the prototype's plus `after`, called with whether
 * the socket that left had connected.
 */
export function interceptRemove(
  nsp: Namespace,
  after: (nsp: Namespace, socket: Socket, wasConnected: boolean) => void,
): void {
  const proto = Object.getPrototypeOf(nsp) as NamespaceInternals;
  nspOf(nsp)._remove = function removeThenCheck(socket) {
    const wasConnected = socket.connected;
    proto._remove.call(nsp, socket);
    after(nsp, socket, wasConnected);
  };
}

/** Removes a child from its parent and its server, as `cleanupEmptyChildNamespaces` does. */
export function removeChild(parent: Namespace, child: Namespace): void {
  void child.adapter.close();
  serverOf(child.server)._nsps.delete(child.name);
  childrenOf(parent)?.delete(child);
}

// socket.io-parser's PacketType.DISCONNECT, the same number in protocols 3 (Socket.IO 2), 4 and 5.
const DISCONNECT = 1;

/**
 * `Client#_packet`: tells the client that the socket's namespace is disconnected (a DISCONNECT
 * packet for its name), on a connection still open. A Socket.IO 2 client then drops that socket
 * and, with no other socket left, closes its connection for good.
 */
export function sendDisconnectPacket(socket: Socket): void {
  if (socket.conn.readyState !== 'open') return;
  (socket.client as unknown as ClientInternals)._packet({
    type: DISCONNECT,
    nsp: socket.nsp.name,
  });
}

/** Puts a removed child back into its parent and its server, unless another took its name. */
export function attachChild(parent: Namespace, child: Namespace): void {
  const nsps = serverOf(child.server)._nsps;
  if (nsps.has(child.name)) return;
  nsps.set(child.name, child);
  childrenOf(parent)?.add(child);
}

/** One private member and how to tell it is still there, on a server with these namespaces. */
export interface Internal {
  member: string;
  present(parts: { io: Server; nsp: Namespace; parent: Namespace; socket: Socket }): boolean;
}

/** Every private member read or patched above, for spec/socket-io/socket-io-internals.spec.ts. */
export const INTERNALS: readonly Internal[] = [
  { member: 'Server#_nsps', present: ({ io }) => serverOf(io)._nsps instanceof Map },
  {
    member: 'Server#_opts',
    present: ({ io }) => typeof serverOf(io)._opts === 'object',
  },
  {
    member: 'Namespace#_fns',
    present: ({ nsp }) => Array.isArray(nspOf(nsp)._fns),
  },
  { member: 'Namespace#run', present: ({ nsp }) => typeof nspOf(nsp).run === 'function' },
  {
    member: 'Namespace#_remove',
    present: ({ nsp }) =>
      typeof (Object.getPrototypeOf(nsp) as NamespaceInternals)._remove === 'function',
  },
  {
    member: 'ParentNamespace#children',
    present: ({ parent }) => nspOf(parent).children instanceof Set,
  },
  { member: 'Socket#fns', present: ({ socket }) => Array.isArray(Reflect.get(socket, 'fns')) },
  {
    member: 'Socket#pid',
    present: ({ socket }) => typeof recoveryIdOf(socket) === 'string',
  },
  {
    member: 'Socket#conn.id',
    present: ({ socket }) =>
      typeof connectionIdOf(socket) === 'string' && connectionIdOf(socket) !== '',
  },
  {
    member: 'Client#_packet',
    present: ({ socket }) =>
      typeof (socket.client as unknown as Partial<ClientInternals>)._packet === 'function',
  },
  {
    // The in-memory adapter's own, at the root of the chain: what spansNodes compares with.
    member: 'Adapter#serverSideEmit',
    present: ({ nsp }) =>
      typeof baseAdapterOf(nsp.adapter).serverSideEmit === 'function' && !spansNodes(nsp.adapter),
  },
  {
    member: 'Adapter#restoreSession',
    present: ({ nsp }) =>
      typeof (nsp.adapter as unknown as Partial<AdapterInternals>).restoreSession === 'function',
  },
];
