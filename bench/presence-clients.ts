// The client child's presence commands (bench/presence.ts): churn on a group of open sockets, and
// single sockets whose connect and disconnect are timed against the presence events of a node.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { io, type Socket } from 'socket.io-client';
import type { ClientCommands } from './variants.js';

type Handlers = {
  [K in 'churnStart' | 'churnStop' | 'sampleConnect' | 'sampleDisconnect']: (
    args: ClientCommands[K]['args'],
  ) => Promise<ClientCommands[K]['result']> | ClientCommands[K]['result'];
};

/** Epoch ms with sub-ms precision: comparable across the bench's processes on one machine. */
export const now = (): number => performance.timeOrigin + performance.now();

interface Churn {
  timer: NodeJS.Timeout;
  started: number;
  connects: number;
  failures: number;
  pending: Set<Promise<void>>;
}

export function presenceHandlers(
  groups: Map<number, Socket[]>,
  connected: (socket: Socket) => Promise<void>,
): Handlers {
  const churns = new Map<number, Churn>();
  const samples = new Map<number, Socket>();
  let nextSample = 0;
  const open = (url: string, cookie: string | undefined): Socket =>
    io(url, {
      forceNew: true,
      reconnection: false,
      transports: ['websocket'],
      extraHeaders: cookie === undefined ? {} : { cookie },
    });
  return {
    churnStart({ group, url, nsp, perSecond }) {
      const sockets = groups.get(group);
      if (!sockets || sockets.length === 0) throw new Error(`no socket in group ${group}`);
      const churn: Churn = {
        timer: setInterval(() => {
          // One tab of a user closes and another opens with the same session: a disconnect and a
          // connect a tick, the group's size kept.
          const i = Math.floor(Math.random() * sockets.length);
          const old = sockets[i];
          // Not one still connecting: socket.io-client's disconnect() on it emits nothing, neither
          // connect nor connect_error, and its connect would never settle.
          if (!old?.connected) return;
          const cookie = old.io.opts.extraHeaders?.cookie;
          old.disconnect();
          const socket = open(`${url}${nsp}`, cookie);
          sockets[i] = socket;
          const done = connected(socket).then(
            () => {
              churn.connects++;
            },
            () => {
              churn.failures++;
            },
          );
          churn.pending.add(done);
          void done.finally(() => churn.pending.delete(done));
        }, 1000 / perSecond),
        started: now(),
        connects: 0,
        failures: 0,
        pending: new Set(),
      };
      churns.set(group, churn);
      return null;
    },

    async churnStop({ group }) {
      const churn = churns.get(group);
      if (!churn) throw new Error(`no churn on group ${group}`);
      clearInterval(churn.timer);
      churns.delete(group);
      const ms = now() - churn.started;
      // Bounded: a handshake that never answers is a figure to report, not a bench that hangs.
      await Promise.race([Promise.all(churn.pending), sleep(30_000)]);
      const { connects, failures, pending } = churn;
      return { connects, failures, unanswered: pending.size, ms };
    },

    async sampleConnect({ url, cookie }) {
      const socket = open(url, cookie);
      let at = 0;
      socket.once('connect', () => {
        at = now();
      });
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          reject(new Error('a sample socket not connected after 30 s'));
        }, 30_000);
      });
      try {
        await Promise.race([connected(socket), late]);
      } finally {
        clearTimeout(timer);
      }
      const id = nextSample++;
      samples.set(id, socket);
      return { id, at };
    },

    sampleDisconnect({ id }) {
      const socket = samples.get(id);
      if (!socket) throw new Error(`no sample socket ${id}`);
      samples.delete(id);
      const at = now();
      socket.disconnect();
      return at;
    },
  };
}
