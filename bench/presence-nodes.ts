// 9b–9d: presence on two nodes over Redis (bench/presence.ts): many users' tabs connected and
// churning, single users timed from their connect and disconnect on node A to the events on node B,
// the accessors' costs, then node A killed with -9.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Child } from './ipc.js';
import { performance } from 'node:perf_hooks';
import type { PresenceBench, ServerHandle } from './presence.js';
import { percentile } from './report.js';
import {
  NODE_A,
  NSP,
  SEEDED_FROM,
  userKeyOf,
  type ClientCommands,
  type PresenceWaitArgs,
} from './variants.js';

export const NODE_SECTIONS = {
  latency: '9b. Presence on two nodes over Redis: connection on A → join on B, disconnect → leave',
  calls: '9c. Presence: count() and isOnline(), this node; countShared() and isOnlineShared()',
  crash: '9d. Presence: kill -9 of one of two nodes → its users’ leaves on the survivor',
};
const SECTION = NODE_SECTIONS;
/** Epoch ms with sub-ms precision: comparable across the bench's processes on one machine. */
const now = (): number => performance.timeOrigin + performance.now();
export const thousands = (n: number): string => n.toLocaleString('en-US');
const keys = (from: number, count: number): string[] =>
  Array.from({ length: count }, (_, i) => userKeyOf(from + i));

interface Nodes {
  a: ServerHandle;
  b: ServerHandle;
  /** The client children of node A's sockets and of node B's. */
  onA: Child<ClientCommands>;
  onB: Child<ClientCommands>;
  /** Each child's group of background tabs. */
  groups: number[];
  /** Logged in, not connected: the sampled users', then the killed node's users'. */
  spare: string[];
}

export async function twoNodes(bench: PresenceBench, took: (what: string) => void): Promise<void> {
  const { plan } = bench;
  const nodes = await background(bench);
  took(`background (${thousands(plan.users)} users × 3 tabs)`);
  await latency(bench, nodes);
  took(`latency (${plan.samples} samples)`);
  await calls(bench, nodes.a, plan.users);
  took('count() and friends');
  await crash(bench, nodes, nodes.spare.slice(plan.warmup + plan.samples));
  took('crash clean-up');
  await nodes.b.child.call('presenceClose', { seeded: false });
  await Promise.all([nodes.b.child.stop(), nodes.onA.stop(), nodes.onB.stop()]);
}

const wait = (
  node: ServerHandle,
  type: PresenceWaitArgs['type'],
  userKeys: string[],
  timeoutMs = 10_000,
): Promise<number[]> =>
  node.child.call('presenceWait', { type, userKeys, timeoutMs }, timeoutMs + 10_000);

// Two nodes over Redis, each with its own client child (a process holds at most 20,000 sockets
// here): tab 0 of each user on A, tab 1 on B, tab 2 on one or the other.
async function background(bench: PresenceBench): Promise<Nodes> {
  const { plan } = bench;
  const { users, heartbeatMs, expiryMs } = plan;
  const setup = { graceMs: 0, redis: { heartbeatMs, expiryMs } };
  const [a, b, onA, onB] = await Promise.all([
    bench.startServer({ ...NODE_A, id: 'presence-a', presence: setup }),
    bench.startServer({ ...NODE_A, id: 'presence-b', presence: setup }),
    bench.startClient(),
    bench.startClient(),
  ]);
  const extra = plan.warmup + plan.samples + plan.crashUsers;
  const half = Math.ceil(users / 2);
  bench.log(`presence: logging in ${users + extra} users`);
  const [first, second, spare] = await Promise.all([
    onA.call('login', { base: a.url, count: half, concurrency: 16, from: 0 }),
    onB.call('login', { base: b.url, count: users - half, concurrency: 16, from: half }),
    onA.call('login', { base: a.url, count: extra, concurrency: 16, from: users }),
  ]);
  const all = [...first, ...second];
  const third = (node: number): string[] => all.filter((_, i) => i % 2 === node);
  bench.log(`presence: opening ${users} users × 3 tabs`);
  const groups = await Promise.all(
    [
      { node: a, client: onA, cookies: [...all, ...third(0)] },
      { node: b, client: onB, cookies: [...all, ...third(1)] },
    ].map(async ({ node, client, cookies }) => {
      const group = await client.call('open', {
        url: node.url,
        nsp: NSP.main,
        cookies,
        count: cookies.length,
        concurrency: 32,
      });
      await node.child.call('waitConnections', { count: cookies.length, timeoutMs: 60_000 });
      return group;
    }),
  );
  await Promise.all([a, b].map((node) => wait(node, 'join', keys(0, users), 120_000)));
  return { a, b, onA, onB, groups, spare };
}

// A user's one tab opens on A: ms to B's join; it closes: ms to B's leave. Under churn.
async function latency(bench: PresenceBench, { a, b, onA, onB, groups, spare }: Nodes) {
  const { plan } = bench;
  const churners = [
    { node: a, client: onA, group: groups[0] ?? -1 },
    { node: b, client: onB, group: groups[1] ?? -1 },
  ];
  for (const { node, client, group } of churners) {
    const perSecond = plan.churnPerSecond / 2;
    await client.call('churnStart', { group, url: node.url, nsp: NSP.main, perSecond });
  }
  // From node A's connection (disconnect) event, and from the client's connect event (its
  // disconnect() call): the client's is later than A's admission, and may come after B's join.
  const joins = { server: [] as number[], client: [] as number[] };
  const leaves = { server: [] as number[], client: [] as number[] };
  await sleep(1000); // the churn under way first
  for (let s = 0; s < plan.warmup + plan.samples; s++) {
    const next = sleep(plan.sampleEveryMs);
    const userKey = userKeyOf(plan.users + s);
    const { id, at } = await onA.call('sampleConnect', { url: a.url, cookie: spare[s] ?? '' });
    const [admitted = NaN] = await wait(a, 'connection', [userKey]);
    const [joined = NaN] = await wait(b, 'join', [userKey]);
    const closed = await onA.call('sampleDisconnect', { id });
    const [gone = NaN] = await wait(a, 'disconnect', [userKey]);
    const [left = NaN] = await wait(b, 'leave', [userKey]);
    if (s >= plan.warmup) {
      joins.server.push(joined - admitted);
      joins.client.push(joined - at);
      leaves.server.push(left - gone);
      leaves.client.push(left - closed);
    }
    await next;
  }
  const churn = await Promise.all(
    churners.map(({ client, group }) => client.call('churnStop', { group })),
  );
  const rate = churn.reduce((sum, c) => sum + (c.connects * 1000) / c.ms, 0);
  const failures = churn.reduce((sum, c) => sum + c.failures, 0);
  const unanswered = churn.reduce((sum, c) => sum + c.unanswered, 0);
  const load = `${thousands(plan.users)} users × 3 tabs`;
  for (const [what, { server: list, client }] of [
    ['join', joins],
    ['leave (graceMs 0)', leaves],
  ] as const) {
    bench.addRow({
      section: SECTION.latency,
      figure: `${what}, ms, p50, ${load}`,
      values: { package: percentile(list, 50) },
    });
    const fromClient = `from the client's ${what === 'join' ? 'connect event' : 'disconnect() call'}: p50 ${percentile(client, 50).toFixed(2)} ms, p99 ${percentile(client, 99).toFixed(2)} ms`;
    bench.addRow(
      {
        section: SECTION.latency,
        figure: `${what}, ms, p99, ${load}`,
        values: { package: percentile(list, 99) },
        target: { op: '<', value: 500, of: 'package' },
        note:
          `${list.length} samples, ${plan.sampleEveryMs} ms apart, while ${rate.toFixed(0)} tabs/s ` +
          `closed and as many opened (asked: ${plan.churnPerSecond})` +
          (failures ? `; ${failures} churn connects refused` : '') +
          (unanswered ? `; ${unanswered} churn connects unanswered after 30 s` : '') +
          `; ${fromClient}`,
      },
      { package: list },
    );
  }
}

async function calls(bench: PresenceBench, a: ServerHandle, users: number): Promise<void> {
  const { plan } = bench;
  const base = { calls: plan.calls, sharedCalls: plan.sharedCalls };
  const local = await a.child.call('presenceCosts', {
    ...base,
    userKeys: keys(0, Math.min(users, 1000)),
    seeded: false,
  });
  const real = `${thousands(local.users.local)} users (real sockets)`;
  bench.addRow({
    section: SECTION.calls,
    figure: `count(), CPU ns / call, ${real}`,
    values: { package: local.count * 1000 },
  });
  bench.addRow({
    section: SECTION.calls,
    figure: `isOnline(), CPU ns / call, ${real}`,
    values: { package: local.isOnline * 1000 },
  });
  const shared = [{ label: `${thousands(local.users.shared)} users (real sockets)`, costs: local }];
  for (const level of plan.seeded) {
    bench.log(`presence: seeding ${level} users`);
    const ms = await a.child.call('presenceSeed', { users: level });
    const costs = await a.child.call('presenceCosts', {
      ...base,
      userKeys: keys(SEEDED_FROM, Math.min(level, 1000)),
      seeded: true,
    });
    const time = ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(1)} s`;
    const label = `${thousands(costs.users.shared)} users (seeded in ${time})`;
    shared.push({ label, costs });
  }
  await a.child.call('presenceClose', { seeded: true });
  for (const { label, costs } of shared) {
    for (const [name, cost] of [
      ['countShared()', costs.countShared],
      ['isOnlineShared()', costs.isOnlineShared],
    ] as const) {
      bench.addRow({
        section: SECTION.calls,
        figure: `${name}, µs / call, ${label}`,
        values: { package: cost.wall },
        note: `${cost.cpu.toFixed(1)} µs of the node's CPU per call, awaited one after the other`,
      });
      bench.addRow({
        section: SECTION.calls,
        figure: `${name}, Redis round trips / call, ${label}`,
        values: { package: cost.commands },
        // Commands sent while the calls run, one awaited after the other (the heartbeat's
        // scripts not counted: bench/presence-server.ts).
        target: { op: '<=', value: 1, of: 'package' },
      });
    }
  }
}

// Users on A only (their leaves must come from B's reap of A), and the background's users, still
// on B too (no leave for them): A killed with -9, s to B's last leave.
async function crash(bench: PresenceBench, { a, b, onA }: Nodes, cookies: string[]) {
  const { plan } = bench;
  const survivors = plan.users;
  const from = plan.users + plan.warmup + plan.samples;
  const victims = keys(from, cookies.length);
  await onA.call('open', {
    url: a.url,
    nsp: NSP.main,
    cookies,
    count: cookies.length,
    concurrency: 32,
  });
  await wait(b, 'join', victims, 60_000);
  const killed = now();
  a.child.process.kill('SIGKILL');
  const times = await wait(b, 'leave', victims, plan.expiryMs + plan.heartbeatMs + 30_000);
  const last = Math.max(...times) - killed;
  const after = await b.child.call('presenceCosts', {
    calls: 1,
    sharedCalls: 1,
    userKeys: [userKeyOf(0)],
    seeded: false,
  });
  const defaults = plan.heartbeatMs === 5000 && plan.expiryMs === 10_000;
  bench.addRow({
    section: SECTION.crash,
    figure:
      `s to the last of ${thousands(victims.length)} leaves, heartbeat ${plan.heartbeatMs / 1000} s, ` +
      `expiry ${plan.expiryMs / 1000} s${defaults ? ' (the defaults)' : ' (shortened, quick mode)'}`,
    values: { package: last / 1000 },
    target: { op: '<=', value: 15, of: 'package' },
    note:
      `one kill: between expiry − heartbeat and expiry + heartbeat, as the two nodes' ` +
      `heartbeats fell; first leave after ` +
      `${((Math.min(...times) - killed) / 1000).toFixed(2)} s; the node also held ` +
      `${thousands(survivors)} users still on the survivor: countShared() there after, ` +
      `${after.users.shared} (expected ${survivors})`,
  });
  if (after.users.shared !== survivors) {
    bench.log(
      `presence: WRONG: ${after.users.shared} users online after the crash, not ${survivors}`,
    );
  }
}
