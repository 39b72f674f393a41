// The `limits` figure's parts that run in the children (bench/limits.ts runs the figure): the
// server side of a variant with rateLimit on, and the client commands of a flood and of paced
// acks. Kept apart from servers.ts and clients.ts, which call in here in one line each.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Server } from 'socket.io';
import type { Socket } from 'socket.io-client';
import { ECHO_EVENT, NSP, type Variant } from './variants.js';

/** Every event of /events: a budget no ack run reaches, so that the figure is the check's cost. */
export const EVENTS_BUDGET = { points: 1_000_000, durationMs: 1000 };
/** Every event of `/`, per session (the bench has one user: a login is a session): floods refused. */
export const MAIN_BUDGET = { points: 200, durationMs: 1000 };

type RateLimit = typeof import('socket.io-session-auth').rateLimit;

/** Puts the variant's limits on the server: `/events` never refuses, `/` refuses a flood. */
export async function limitServer(
  io: Server,
  variant: Variant,
  rateLimit: RateLimit,
): Promise<void> {
  let redis: object | undefined;
  if (variant.limits === 'redis') {
    const url = process.env.REDIS_URL;
    if (!url) throw new Error(`variant ${variant.id} needs REDIS_URL`);
    const { createClient } = await import('redis');
    const client = createClient({ url });
    await client.connect();
    redis = client;
  }
  const prefix = `bench:${process.pid}:limit`;
  const store = redis ? { redis, redisPrefix: prefix } : {};
  rateLimit(io.of(NSP.events), { events: { default: EVENTS_BUDGET }, ...store });
  rateLimit(io.of(NSP.main), { events: { default: MAIN_BUDGET, by: 'session' }, ...store });
}

/** Whether an ack's reply is the limiter's refusal. */
const refused = (reply: unknown): boolean =>
  (reply as { error?: { code?: string } } | null)?.error?.code === 'ERR_RATE_LIMITED';

export interface RateArgs {
  group: number;
  /** Events per second from the whole group (flood), or from each socket (paced). */
  perSecond: number;
  durationMs: number;
}

export interface FloodResult {
  sent: number;
  /** Answered with the echo, and refused with ERR_RATE_LIMITED. */
  served: number;
  refused: number;
  ms: number;
}

/** Commands of the client child for the `limits` figure. */
export interface LimitsClientCommands {
  /** Events with acks from every socket of the group in turn, at a rate, not waiting on answers. */
  flood: { args: RateArgs; result: FloodResult };
  /** Each socket of the group: one event with an ack at a steady rate; each ack's latency, ms. */
  paced: { args: RateArgs; result: { latencies: number[]; refused: number } };
}

const TICK_MS = 10;

/** The client child's handlers, on its socket groups. */
export function limitsClientHandlers(groupOf: (group: number) => Socket[] | undefined) {
  const sockets = (group: number): Socket[] => {
    const list = groupOf(group);
    if (!list || list.length === 0) throw new Error(`no sockets in group ${group}`);
    return list;
  };
  return {
    async flood({ group, perSecond, durationMs }: RateArgs): Promise<FloodResult> {
      const list = sockets(group);
      const result = { sent: 0, served: 0, refused: 0, ms: 0 };
      const started = performance.now();
      // Sends what the rate owes at each tick: the timer's lateness does not lower the rate.
      while (performance.now() - started < durationMs) {
        const owed = Math.floor(((performance.now() - started) * perSecond) / 1000) - result.sent;
        for (let i = 0; i < owed; i++) {
          const socket = list[result.sent % list.length];
          result.sent++;
          socket?.emit(ECHO_EVENT, result.sent, (reply: unknown) => {
            if (refused(reply)) result.refused++;
            else result.served++;
          });
        }
        await sleep(TICK_MS);
      }
      result.ms = performance.now() - started;
      // The answers still on their way, bounded.
      const until = performance.now() + 5000;
      while (result.served + result.refused < result.sent && performance.now() < until) {
        await sleep(TICK_MS);
      }
      return result;
    },

    async paced({ group, perSecond, durationMs }: RateArgs) {
      const latencies: number[] = [];
      let refusedCount = 0;
      const one = async (socket: Socket): Promise<void> => {
        const started = performance.now();
        let next = 0;
        while (next < durationMs) {
          await sleep(Math.max(0, started + next - performance.now()));
          const sentAt = performance.now();
          const reply: unknown = await socket.timeout(10_000).emitWithAck(ECHO_EVENT, next);
          latencies.push(performance.now() - sentAt);
          if (refused(reply)) refusedCount++;
          next += 1000 / perSecond;
        }
      };
      await Promise.all(sockets(group).map(one));
      return { latencies, refused: refusedCount };
    },
  };
}
