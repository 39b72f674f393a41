// Sockets still in their handshake (namespace middleware not done), on every Socket.IO version the
// specs run on. Socket.IO 4.8 keeps them in `nsp._preConnectSockets`. 4.6 and 4.7 keep them
// nowhere: such a socket is held only by the closures of the middleware chain. On those versions
// this module records the same set, updated at the same three points 4.8 updates its map:
//   - the socket is built (Socket's constructor calls buildHandshake once): it is pending;
//   - the namespace connects it (`nsp._doConnect`): it is no longer;
//   - it is cleaned up (`socket._cleanup`, on a refusal, or when next() comes after the client
//     left): it is no longer.
// The wrappers call the original methods unchanged, and keep only socket IDs, in a WeakMap of the
// spec's own: Socket.IO's behaviour is untouched, nothing is held that Socket.IO would not hold,
// and nothing looks like 4.8's map to the package (which may look for `_preConnectSockets`).
// Loaded by server.ts, so it is in place before any spec creates a server.
import type { Namespace } from 'socket.io';
import { socketIo, socketIoVersion, versions } from './stack.js';

interface InternalSocket {
  id: string;
  nsp: object;
  buildHandshake: (this: InternalSocket, ...args: unknown[]) => unknown;
  _cleanup: (this: InternalSocket, ...args: unknown[]) => unknown;
}
interface InternalNamespace {
  _preConnectSockets?: Map<string, unknown>;
  _doConnect: (this: InternalNamespace, socket: InternalSocket, ...rest: unknown[]) => unknown;
}

const handshaking = new WeakMap<object, Set<string>>();

function handshakingIn(nsp: object): Set<string> {
  let ids = handshaking.get(nsp);
  if (!ids) {
    ids = new Set();
    handshaking.set(nsp, ids);
  }
  return ids;
}

if (socketIoVersion !== '4.8') {
  const socketProto = socketIo.Socket.prototype as unknown as InternalSocket;
  const nspProto = socketIo.Namespace.prototype as unknown as InternalNamespace;
  const { buildHandshake, _cleanup: cleanup } = socketProto;
  const { _doConnect: doConnect } = nspProto;
  socketProto.buildHandshake = function (this: InternalSocket, ...args: unknown[]) {
    const handshake = buildHandshake.apply(this, args);
    handshakingIn(this.nsp).add(this.id);
    return handshake;
  };
  socketProto._cleanup = function (this: InternalSocket, ...args: unknown[]) {
    handshaking.get(this.nsp)?.delete(this.id);
    return cleanup.apply(this, args);
  };
  nspProto._doConnect = function (
    this: InternalNamespace,
    socket: InternalSocket,
    ...rest: unknown[]
  ) {
    handshaking.get(this)?.delete(socket.id);
    return doConnect.call(this, socket, ...rest);
  };
}

/** How many sockets of the namespace are still in their handshake. */
export function pendingHandshakes(nsp: Namespace): number {
  if (socketIoVersion !== '4.8') return handshaking.get(nsp)?.size ?? 0;
  const map = (nsp as unknown as InternalNamespace)._preConnectSockets;
  if (!map) throw new Error(`socket.io ${versions.socketIo} has no nsp._preConnectSockets`);
  return map.size;
}
