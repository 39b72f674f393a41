// 9: presence (issue 21). What `presence()` costs a node's handshakes and heap, on one node; then,
// on two nodes over Redis with many users' tabs connected and churning: how soon the other node
// hears a join and a leave, what count() and friends cost, and how soon a node killed with -9 has
// its users' leaves published by the survivor.
import { performance } from 'node:perf_hooks';
import type { Child } from './ipc.js';
import { NODE_SECTIONS, thousands, twoNodes } from './presence-nodes.js';
import { median, medianRatio, type Column, type Row } from './report.js';
import {
  NSP,
  PACKAGE,
  PACKAGE_PRESENCE,
  type ClientCommands,
  type ServerCommands,
  type Variant,
} from './variants.js';

export interface PresencePlan {
  /** Users with three tabs each (websocket), spread over the two nodes. */
  users: number;
  /** Tabs closed and opened again per second while sampling (as many of each). */
  churnPerSecond: number;
  warmup: number;
  samples: number;
  /** One sample every this many ms, so that the samples spread over the churn. */
  sampleEveryMs: number;
  /** Users written to the shared state, for countShared() and isOnlineShared(). */
  seeded: number[];
  /** Calls of count() and of isOnline() (no round trip), and of each shared one (awaited). */
  calls: number;
  sharedCalls: number;
  /** Handshakes per batch, and sockets for the heap, presence on and off (one user each). */
  handshakes: number;
  heapSockets: number;
  /** Users on the node that is killed, and the two nodes' heartbeat and expiry. */
  crashUsers: number;
  heartbeatMs: number;
  expiryMs: number;
}

export const PRESENCE_FULL: PresencePlan = {
  users: 10_000,
  churnPerSecond: 100,
  warmup: 20,
  samples: 300,
  sampleEveryMs: 50,
  seeded: [100_000], // 10,000: the background's real users
  calls: 10_000_000,
  sharedCalls: 5_000,
  handshakes: 400,
  heapSockets: 5_000,
  crashUsers: 1_000,
  heartbeatMs: 5_000, // the package's defaults
  expiryMs: 10_000,
};

export const PRESENCE_QUICK: PresencePlan = {
  users: 100,
  churnPerSecond: 20,
  warmup: 3,
  samples: 20,
  sampleEveryMs: 50,
  seeded: [1_000],
  calls: 1_000_000,
  sharedCalls: 200,
  handshakes: 40,
  heapSockets: 200,
  crashUsers: 20,
  heartbeatMs: 500,
  expiryMs: 1_500,
};

export interface ServerHandle {
  variant: Variant;
  child: Child<ServerCommands>;
  url: string;
}

/** What run.ts lends the presence figure. */
export interface PresenceBench {
  plan: PresencePlan;
  rounds: number;
  redis: boolean;
  client: Child<ClientCommands>;
  server(variant: Variant): ServerHandle;
  startServer(variant: Variant): Promise<ServerHandle>;
  startClient(): Promise<Child<ClientCommands>>;
  interleave(
    what: string,
    rounds: number,
    servers: readonly ServerHandle[],
    measure: (server: ServerHandle) => Promise<number>,
  ): Promise<Map<string, number[]>>;
  addRow(row: Row, samples?: Partial<Record<Column, number[]>>): void;
  log(message: string): void;
}

const SECTION =
  '9a. Presence on one node: presence(nsp, { graceMs: 0 }) on vs off, one user per socket';

export async function presence(bench: PresenceBench): Promise<void> {
  let started = performance.now();
  const took = (what: string): void => {
    bench.log(`presence: ${what} took ${((performance.now() - started) / 1000).toFixed(1)} s`);
    started = performance.now();
  };
  await onOff(bench);
  took('on vs off (handshakes, heap)');
  if (!bench.redis) {
    for (const section of Object.values(NODE_SECTIONS)) {
      bench.addRow({ section, figure: 'two nodes', values: {}, note: 'REDIS_URL not set' });
    }
    return;
  }
  await twoNodes(bench, took);
}

// Handshake CPU and heap per socket, the package with presence against the same without.
async function onOff(bench: PresenceBench): Promise<void> {
  const { plan, client } = bench;
  const off = bench.server(PACKAGE);
  const on = bench.server(PACKAGE_PRESENCE);
  const cookies = new Map<string, string[]>();
  for (const server of [off, on]) {
    const count = Math.max(plan.handshakes, plan.heapSockets);
    const list = await client.call('login', { base: server.url, count, concurrency: 16, from: 0 });
    cookies.set(server.variant.id, list);
  }
  const batch = async (server: ServerHandle): Promise<number> => {
    const before = await server.child.call('cpu', { settle: true });
    await client.call('handshakes', {
      url: server.url,
      cookie: undefined,
      cookies: cookies.get(server.variant.id)?.slice(0, plan.handshakes),
      transports: ['websocket'],
      namespaces: [NSP.main],
      count: plan.handshakes,
      concurrency: 8,
    });
    const after = await server.child.call('cpu', { settle: true });
    return (after.cpuMicros - before.cpuMicros) / plan.handshakes;
  };
  for (const server of [off, on]) await batch(server); // warm-up, not kept
  const cpu = await bench.interleave('presence: handshakes', bench.rounds, [off, on], batch);
  const samples = { package: cpu.get(on.variant.id) ?? [], stock: cpu.get(off.variant.id) ?? [] };
  const figure = 'server CPU µs / handshake, websocket (each a join and a leave)';
  bench.addRow(
    {
      section: SECTION,
      figure,
      values: { package: median(samples.package) },
      ratio: medianRatio(samples.package, samples.stock),
      baselineLabel: 'presence off',
      target: { op: '<=', value: 1.05, of: 'ratio' },
      note: `presence off: ${median(samples.stock).toFixed(0)} µs`,
    },
    samples,
  );
  const heap: number[] = [];
  for (const server of [off, on]) {
    heap.push(await heapPerSocket(bench, server, cookies.get(server.variant.id) ?? []));
  }
  const [offKiB = NaN, onKiB = NaN] = heap;
  bench.addRow({
    section: SECTION,
    figure: `KiB / socket, ${thousands(plan.heapSockets)} sockets`,
    values: { package: onKiB },
    ratio: onKiB / offKiB,
    baselineLabel: 'presence off',
    target: { op: '<=', value: 1.05, of: 'ratio' },
    note: `presence off: ${offKiB.toFixed(2)} KiB`,
  });
}

async function heapPerSocket(
  bench: PresenceBench,
  server: ServerHandle,
  cookies: string[],
): Promise<number> {
  const { client, plan } = bench;
  const count = plan.heapSockets;
  const open = (n: number): Promise<number> =>
    client.call('open', {
      url: server.url,
      nsp: NSP.main,
      cookies: cookies.slice(0, n),
      count: n,
      concurrency: 32,
    });
  bench.log(`presence: heap, ${server.variant.id}, ${count} sockets`);
  await client.call('close', { group: await open(Math.min(100, count)) }); // warm the paths up
  await server.child.call('waitConnections', { count: 0, timeoutMs: 30_000 });
  const base = (await server.child.call('heap', null)).heapUsed;
  const group = await open(count);
  await server.child.call('waitConnections', { count, timeoutMs: 120_000 });
  const { heapUsed } = await server.child.call('heap', null);
  await client.call('close', { group });
  await server.child.call('waitConnections', { count: 0, timeoutMs: 120_000 });
  return (heapUsed - base) / count / 1024;
}
