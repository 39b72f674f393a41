// A server child's presence (bench/presence.ts): `presence()` on the main namespace, when the
// variant asks for it, and the commands that time its events and price its accessors.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Server } from 'socket.io';
import type { Presence, PresenceRedisClient } from 'socket.io-session-auth';
import {
  NSP,
  SEEDED_FROM,
  userKeyOf,
  userName,
  type PresenceCosts,
  type PresenceWaitArgs,
  type PresenceSetup,
  type ServerCommands,
} from './variants.js';

type Package = typeof import('socket.io-session-auth');
type Command = 'presenceWait' | 'presenceCosts' | 'presenceSeed' | 'presenceClose';
type Handlers = {
  [K in Command]: (
    args: ServerCommands[K]['args'],
  ) => Promise<ServerCommands[K]['result']> | ServerCommands[K]['result'];
};

/** The package's own shared state (lib/presence/shared.ts), from the same build: the seeder. */
interface Seeder {
  joined(userKey: string, connections: number, user: unknown, since: number): void;
  close(): void;
}
type SharedModule = {
  SharedPresence: new (client: PresenceRedisClient, prefix: string, options: object) => Seeder;
};

/** Epoch ms with sub-ms precision: comparable across the bench's processes on one machine. */
const now = (): number => performance.timeOrigin + performance.now();
const SEEDED_NSP = '/presence-seeded';

/**
 * `client` with the commands it sends counted: what a round trip per call is checked by. Not the
 * scripts (EVAL): those are the heartbeat's and the reap's, on their own timer, and would land in
 * a window of calls or not by chance; the accessors measured send plain commands.
 */
function counted(client: PresenceRedisClient): { client: PresenceRedisClient; sent: () => number } {
  let sent = 0;
  return {
    client: {
      sendCommand: (args) => {
        if (args[0] !== 'EVAL') sent++;
        return client.sendCommand(args);
      },
      duplicate: () => client.duplicate(),
    },
    sent: () => sent,
  };
}

export async function presenceCommands(
  pkg: Package,
  entry: string,
  io: Server,
  setup: PresenceSetup | undefined,
  redis: PresenceRedisClient | undefined,
  runId: string,
): Promise<Handlers> {
  const none = (): never => {
    throw new Error('this variant runs no presence');
  };
  if (!setup)
    return { presenceWait: none, presenceCosts: none, presenceSeed: none, presenceClose: none };
  if (setup.redis && !redis) throw new Error('shared presence needs REDIS_URL');
  const { client, sent } = redis ? counted(redis) : { client: undefined, sent: () => 0 };
  const shared = (prefix: string) =>
    client && setup.redis
      ? { redis: client, redisPrefix: `bench:${runId}:${prefix}`, ...setup.redis }
      : {};
  const online = pkg.presence(io.of(NSP.main), { graceMs: setup.graceMs, ...shared('presence') });
  await online.ready();
  const heard: Record<PresenceWaitArgs['type'], Map<string, number>> = {
    join: new Map(),
    leave: new Map(),
    connection: new Map(),
    disconnect: new Map(),
  };
  // Two nodes only: on one node, the handshake's cost is presence's own, no listener's.
  if (setup.redis) {
    for (const type of ['join', 'leave'] as const) {
      online.on(type, ({ userKey }) => heard[type].set(userKey, now()));
    }
    io.of(NSP.main).on('connection', (socket) => {
      const userKey = (socket.request as { user?: { id?: string } }).user?.id ?? '';
      heard.connection.set(userKey, now());
      socket.on('disconnect', () => heard.disconnect.set(userKey, now()));
    });
  }
  let seeded: Seeded | undefined;
  const perCall = (calls: number, call: () => Promise<unknown>) => asyncPerCall(calls, call, sent);

  return {
    async presenceWait({ type, userKeys, timeoutMs }) {
      const until = Date.now() + timeoutMs;
      while (!userKeys.every((key) => heard[type].has(key))) {
        if (Date.now() > until) {
          const missing = userKeys.filter((key) => !heard[type].has(key)).length;
          throw new Error(`${missing} of ${userKeys.length} ${type}s not heard in ${timeoutMs} ms`);
        }
        await sleep(2);
      }
      const times = userKeys.map((key) => heard[type].get(key) ?? NaN);
      for (const key of userKeys) heard[type].delete(key);
      return times;
    },

    async presenceCosts({
      calls,
      sharedCalls,
      userKeys,
      seeded: onSeeded,
    }): Promise<PresenceCosts> {
      const target = onSeeded ? seeded?.presence : online;
      if (!target) throw new Error('nothing seeded');
      const key = (i: number): string => userKeys[i % userKeys.length] ?? '';
      let i = 0;
      return {
        users: { local: online.count(), shared: await target.countShared() },
        count: syncPerCall(calls, () => online.count()),
        isOnline: syncPerCall(calls, (n) => online.isOnline(key(n))),
        countShared: await perCall(sharedCalls, () => target.countShared()),
        isOnlineShared: await perCall(sharedCalls, () => target.isOnlineShared(key(i++))),
      };
    },

    async presenceSeed({ users }) {
      if (!redis || !client || !setup.redis) throw new Error('seeding needs shared presence');
      const started = now();
      seeded ??= await seeding(pkg, entry, io, redis, {
        ...setup.redis,
        prefix: `bench:${runId}:seeded`,
        client,
      });
      await seed(seeded, users, redis);
      return now() - started;
    },

    presenceClose({ seeded: seededOnly }) {
      seeded?.seeder.close();
      seeded?.presence.close();
      seeded = undefined;
      if (!seededOnly) online.close();
      return null;
    },
  };
}

/** CPU µs per call of a synchronous accessor. */
function syncPerCall(calls: number, call: (i: number) => unknown): number {
  let sink = 0;
  const cpu = process.cpuUsage();
  for (let i = 0; i < calls; i++) if (call(i)) sink++;
  const { user, system } = process.cpuUsage(cpu);
  return sink < 0 ? NaN : (user + system) / calls;
}

/** Per call of an accessor awaited one after the other: CPU µs, wall µs, commands sent. */
async function asyncPerCall(calls: number, call: () => Promise<unknown>, sent: () => number) {
  const cpu = process.cpuUsage();
  const wall = now();
  const commands = sent();
  for (let i = 0; i < calls; i++) await call();
  const { user, system } = process.cpuUsage(cpu);
  return {
    cpu: (user + system) / calls,
    wall: ((now() - wall) * 1000) / calls,
    commands: (sent() - commands) / calls,
  };
}

// Users online on the shared state of an empty namespace, written by the package's own
// SharedPresence (lib/presence/shared.ts: what a node's tracker writes through, its join script),
// as one more node would: no key layout is written here. The namespace's presence on this node
// reads them back, and countShared() must see them all, or the seeding and the package disagree.
interface Seeded {
  presence: Presence;
  seeder: Seeder;
  users: number;
}

async function seeding(
  pkg: Package,
  entry: string,
  io: Server,
  redis: PresenceRedisClient,
  options: { prefix: string; client: PresenceRedisClient; heartbeatMs: number; expiryMs: number },
): Promise<Seeded> {
  const { prefix, client, heartbeatMs, expiryMs } = options;
  const presence = pkg.presence(io.of(SEEDED_NSP), {
    graceMs: 0,
    redis: client,
    redisPrefix: prefix,
    heartbeatMs,
    expiryMs,
  });
  await presence.ready();
  const load = createRequire(__filename);
  const file = join(dirname(load.resolve(entry)), 'presence', 'shared.js');
  const { SharedPresence } = load(file) as SharedModule;
  // The scope's prefix as presence() makes it (lib/presence/presence.ts): checked by the count.
  const seeder = new SharedPresence(redis, `${prefix}:{${SEEDED_NSP}}`, {
    heartbeatMs,
    expiryMs,
    held: () => [],
    holds: () => true,
    onEvent: () => undefined,
    onSecret: () => undefined, // the client feed's, on a package that has one
  });
  return { presence, seeder, users: 0 };
}

async function seed(seeded: Seeded, users: number, redis: PresenceRedisClient): Promise<void> {
  for (; seeded.users < users; seeded.users++) {
    const n = SEEDED_FROM + seeded.users;
    const user = { id: userKeyOf(n), username: userName(n) };
    seeded.seeder.joined(userKeyOf(n), 1, user, Date.now());
    // Commands on one connection run in order: a PING answered, the joins before it are done.
    if (seeded.users % 5000 === 4999) await redis.sendCommand(['PING']);
  }
  await redis.sendCommand(['PING']);
  const count = await seeded.presence.countShared();
  if (count !== users) throw new Error(`seeded ${users} users, countShared() says ${count}`);
}
