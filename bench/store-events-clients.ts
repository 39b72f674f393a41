// The client child's commands of the `store-events` figure (bench/store-events.ts): when each
// socket of a group received `session:ended`, and with which code. Kept apart from clients.ts,
// which calls in here in one line.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Socket } from 'socket.io-client';

/** One socket's `session:ended`: when (epoch ms, sub-ms) and its code. */
export interface Ended {
  at: number;
  code: string;
}

/** Commands of the client child for the `store-events` figure. */
export interface StoreEventsClientCommands {
  /** Starts noting each socket's `session:ended` in the group (opened with `open`). */
  endsWatch: { args: { group: number }; result: null };
  /**
   * Waits until `count` sockets of the group got `session:ended` or `timeoutMs` passed; what each
   * socket got, in the group's order (null: nothing yet).
   */
  endsWait: {
    args: { group: number; count: number; timeoutMs: number };
    result: (Ended | null)[];
  };
}

/** Epoch ms with sub-ms precision: comparable across the bench's processes on one machine. */
const now = (): number => performance.timeOrigin + performance.now();

export function storeEventsClientHandlers(groupOf: (group: number) => Socket[] | undefined) {
  const seen = new Map<number, Map<Socket, Ended>>();
  const sockets = (group: number): Socket[] => {
    const list = groupOf(group);
    if (!list) throw new Error(`no group ${group}`);
    return list;
  };
  return {
    endsWatch({ group }: { group: number }): null {
      const ends = new Map<Socket, Ended>();
      seen.set(group, ends);
      for (const socket of sockets(group)) {
        socket.once('session:ended', (payload: { data?: { code?: string } } | undefined) => {
          ends.set(socket, { at: now(), code: payload?.data?.code ?? 'none' });
        });
      }
      return null;
    },
    async endsWait(args: {
      group: number;
      count: number;
      timeoutMs: number;
    }): Promise<(Ended | null)[]> {
      const { group, count, timeoutMs } = args;
      const ends = seen.get(group);
      if (!ends) throw new Error(`group ${group} is not watched`);
      const deadline = performance.now() + timeoutMs;
      while (ends.size < count && performance.now() < deadline) await sleep(1);
      return sockets(group).map((socket) => ends.get(socket) ?? null);
    },
  };
}
