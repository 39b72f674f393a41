// What the kit does not do: count, on the server, the namespace CONNECT packets clients send, so
// that a spec can say "one attempt, no retry" from the server's side (any transport).
import type { Server } from 'socket.io';

interface Packet {
  type: string;
  data?: unknown;
}

interface EngineSocket {
  on(event: 'packet', fn: (packet: Packet) => void): void;
  off(event: 'packet', fn: (packet: Packet) => void): void;
}

/** Counts the CONNECT packets for `nsp` that reach `io` from now on, until `stop()`. */
export function countConnectAttempts(
  io: Server,
  nsp: string,
): { count: () => number; stop: () => void } {
  let count = 0;
  const onPacket = (packet: Packet): void => {
    if (packet.type === 'message' && typeof packet.data === 'string') {
      if (packet.data.startsWith(`0${nsp},`) || packet.data === `0${nsp}`) count++;
    }
  };
  const engine = io.engine as unknown as {
    on(event: 'connection', fn: (socket: EngineSocket) => void): void;
    off(event: 'connection', fn: (socket: EngineSocket) => void): void;
    clients: Record<string, EngineSocket>;
  };
  const watch = (socket: EngineSocket): void => {
    socket.on('packet', onPacket);
  };
  for (const socket of Object.values(engine.clients)) watch(socket);
  engine.on('connection', watch);
  return {
    count: () => count,
    stop: () => {
      engine.off('connection', watch);
      for (const socket of Object.values(engine.clients)) socket.off('packet', onPacket);
    },
  };
}
