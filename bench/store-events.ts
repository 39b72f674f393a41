// The `store-events` figure (issue 23), run by bench/run.ts (`--only store-events`): (a) what
// revalidation costs a node of a cluster with N idle sessions, polling against a store feed;
// (b) and (c) in bench/store-events-ends.ts: a session changed straight in the store → its
// socket's `session:ended` on another node, and endSessions for a user. The nodes are
// bench/store-events-node.ts, the client commands bench/store-events-clients.ts.
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Child } from './ipc.js';
import { median, type Column, type Row } from './report.js';
import { postgresChanges, redisChanges, userSessions } from './store-events-ends.js';
import type { FeedNode, FeedNodeCommands, FeedNodeInfo } from './store-events-node.js';
import type { ClientCommands } from './variants.js';

export interface StoreEventsPlan {
  /** (a): idle sessions with one socket each on the measured node. */
  sessions: number;
  /** (a): the window, and how many of them per mode; `pollMs` the polling node's interval (default: the package's). */
  windowMs: number;
  windows: number;
  pollMs: number | undefined;
  /** (b): samples per kind of store change. */
  samples: number;
  /** (b): other sessions with a TTL in the store, and lapses timed at once among them. */
  background: number;
  backgroundSamples: number;
  backgroundTimeoutMs: number;
  /** (c): endSessions calls, each for a new user with 20 sessions. */
  repetitions: number;
}

export const STORE_EVENTS_FULL: StoreEventsPlan = {
  sessions: 10_000,
  windowMs: 30_000,
  windows: 3,
  pollMs: undefined,
  samples: 200,
  background: 10_000,
  backgroundSamples: 20,
  backgroundTimeoutMs: 90_000,
  repetitions: 5,
};

// Quick mode keeps the figure from rotting in CI: short windows, so the polling node polls as often.
export const STORE_EVENTS_QUICK: StoreEventsPlan = {
  sessions: 200,
  windowMs: 2_000,
  windows: 2, // two: the noise of the feed-minus-off gap is their spread
  pollMs: 2_000,
  samples: 20,
  background: 200,
  backgroundSamples: 5,
  backgroundTimeoutMs: 20_000,
  repetitions: 2,
};

const SECTION = "11. Store events and a user's sessions";

/** What run.ts lends the figure. */
export interface StoreEventsHost {
  plan: StoreEventsPlan;
  client: Child<ClientCommands>;
  /** One more client child (a process holds at most 20,000 sockets here). */
  startClient: () => Promise<Child<ClientCommands>>;
  /** The package entry the nodes load (its tsc build, or lib/ through tsx). */
  entry: string;
  runId: string;
  addRow: (row: Row, samples?: Partial<Record<Column, number[]>>) => void;
  log: (message: string) => void;
}

export interface NodeHandle {
  node: FeedNode;
  child: Child<FeedNodeCommands>;
  url: string;
}

/** The host, with what the figure's parts share. */
export interface Figure extends StoreEventsHost {
  section: string;
  start: (node: FeedNode) => Promise<NodeHandle>;
}

const NODE_FILE = resolve(__dirname, 'store-events-node.ts');

async function startNode(host: StoreEventsHost, node: FeedNode): Promise<NodeHandle> {
  const { child, ready } = await Child.start<FeedNodeCommands>(
    `node ${node.id}`,
    NODE_FILE,
    [JSON.stringify(node), host.entry],
    ['--no-memory-reducer'],
  );
  return { node, child, url: `http://127.0.0.1:${(ready as FeedNodeInfo).port}` };
}

export async function storeEventsFigure(host: StoreEventsHost, redisUrl?: string): Promise<void> {
  if (!redisUrl) {
    host.addRow({ section: SECTION, figure: 'every row', values: {}, note: 'REDIS_URL not set' });
    return;
  }
  const figure: Figure = { ...host, section: SECTION, start: (node) => startNode(host, node) };
  await revalidationWindows(figure);
  await redisChanges(figure);
  await userSessions(figure);
  await postgresChanges(figure);
}

/** (a)'s three ways for a node to learn of sessions ended behind its back. */
type Mode = 'polling' | 'feed' | 'off';
const modes: readonly Mode[] = ['polling', 'feed', 'off'];

interface Windows {
  /** CPU ms of each window with no socket, per mode's node (all three at once). */
  idle: Record<Mode, number[]>;
  cpu: Record<Mode, number[]>;
  reads: Record<Mode, number[]>;
}

// (a): one node of a cluster (connect-redis + Redis adapter) with N idle sessions, one socket
// each: polling (revalidateIntervalMs), a feed (storeEvents, default revalidateWithEventsMs), and
// revalidation off (neither: what N sockets cost anyway, Socket.IO's heartbeats).
async function revalidationWindows(host: Figure): Promise<void> {
  const { plan, client, runId, log } = host;
  const base = {
    engine: 'redis' as const,
    registry: false,
    prefix: `bench:${runId}:sess:`,
    adapterKey: `bench:${runId}:store-events-a`,
    database: 0,
    // One heartbeat per socket per window, whatever its phase: with the default 25 s, a 30 s
    // window holds one or two of each socket's, as it falls (the first paired run's gaps moved
    // between 73 and 310 ms from that alone).
    pingIntervalMs: plan.windowMs,
  };
  const nodes = await Promise.all(
    modes.map((mode) =>
      host.start({
        ...base,
        id: `revalidation-${mode}`,
        feed: mode === 'feed',
        ...(mode === 'polling' && plan.pollMs !== undefined && { revalidateMs: plan.pollMs }),
        ...(mode === 'off' && { revalidateMs: false }),
      }),
    ),
  );
  const node = (mode: Mode): NodeHandle => nodes[modes.indexOf(mode)] as NodeHandle;
  const windows: Windows = {
    idle: { polling: [], feed: [], off: [] },
    cpu: { polling: [], feed: [], off: [] },
    reads: { polling: [], feed: [], off: [] },
  };
  const window = async (mode: Mode, into: Record<Mode, number[]>): Promise<void> => {
    const { child } = node(mode);
    const before = await child.call('cpu', null);
    await sleep(plan.windowMs);
    into[mode].push(((await child.call('cpu', null)) - before) / 1000);
  };
  log(`store-events: logging in ${plan.sessions} sessions`);
  const cookies = await client.call('login', {
    base: node('polling').url,
    count: plan.sessions,
    concurrency: 16,
  });
  for (let i = 0; i < plan.windows; i++) {
    log(`store-events: idle window ${i + 1}/${plan.windows} (3 nodes at once)`);
    await Promise.all(modes.map((mode) => window(mode, windows.idle)));
  }
  // The feed and off nodes at once, window for window: what differs between them is the feed
  // alone, under the same load. Polling first, alone (its rounds would weigh on the others). Then
  // each of the two in turn connects first and from the first client: measured, whichever did came
  // out 5 to 20 ms per 2 s window dearer (200 sockets), so both orders count alike.
  const second = await host.startClient();
  const phases = [['polling'], ['feed', 'off'], ['off', 'feed']] as const;
  for (const phase of phases) {
    const groups: [Child<ClientCommands>, number][] = [];
    for (const [i, mode] of phase.entries()) {
      const { child, url } = node(mode);
      log(`store-events: ${mode}, ${plan.sessions} sockets`);
      const opener = i === 0 ? client : second;
      const nsp = '/';
      const args = { url, nsp, cookies, count: plan.sessions, concurrency: 32 };
      groups.push([opener, await opener.call('open', args)]);
      await child.call('waitConnections', { count: plan.sessions, timeoutMs: 120_000 });
      if (mode === 'feed') await child.call('feedUp', { timeoutMs: 10_000 });
    }
    // What the connects left to do (GC, the first round under way) is not the windows'.
    await sleep(Math.min(plan.windowMs / 4, 5000));
    for (let i = 0; i < plan.windows; i++) {
      await Promise.all(
        phase.map(async (mode) => {
          const { child } = node(mode);
          await child.call('storeReads', { reset: true });
          await window(mode, windows.cpu);
          windows.reads[mode].push(await child.call('storeReads', { reset: true }));
        }),
      );
    }
    for (const [opener, group] of groups) await opener.call('close', { group });
    for (const mode of phase) {
      await node(mode).child.call('waitConnections', { count: 0, timeoutMs: 120_000 });
    }
  }
  await Promise.all([second.stop(), ...nodes.map((n) => n.child.stop())]);
  windowRows(host, windows);
}

const pct = (a: number, b: number): string => `${((a / b) * 100).toFixed(1)} %`;
const list = (values: number[], digits: number): string =>
  values.map((v) => v.toFixed(digits)).join(', ');

function windowRows(host: StoreEventsHost, w: Windows): void {
  const { plan } = host;
  const s = `${plan.windowMs / 1000} s`;
  const n = plan.sessions.toLocaleString('en-US');
  const poll = plan.pollMs === undefined ? 'default, 30 s' : `${plan.pollMs / 1000} s`;
  const above = (mode: Mode): number => median(w.cpu[mode]) - median(w.idle[mode]);
  const pollReads = median(w.reads.polling);
  host.addRow(
    {
      section: SECTION,
      figure: `store reads / ${s} window, ${n} idle sessions with a socket, feed on`,
      values: { package: median(w.reads.feed) },
      target: { op: '<=', value: 0, of: 'package' },
      note:
        `one node of a cluster (connect-redis, Redis adapter); polling (revalidateIntervalMs ` +
        `${poll}): ${pollReads.toFixed(0)} reads; the feed's full round every 10 min ` +
        `(revalidateWithEventsMs default); medians of ${w.reads.polling.length} and ` +
        `${w.reads.feed.length} windows`,
    },
    { package: w.reads.feed, recipe: w.reads.polling },
  );
  const feed = above('feed');
  const off = above('off');
  host.addRow(
    {
      section: SECTION,
      figure: `server CPU ms / ${s} window over the same window with no socket, feed on`,
      values: { package: feed },
      ratio: feed / above('polling'),
      baselineLabel: 'polling',
      note:
        `polling: ${above('polling').toFixed(1)} ms; revalidation off (no feed, no polling: ` +
        `Socket.IO's own heartbeats of ${n} sockets, pingInterval ${s}): ${off.toFixed(1)} ms; ` +
        `the idle window: ` +
        `${median(w.idle.feed).toFixed(1)} ms`,
    },
    { package: w.cpu.feed, recipe: w.cpu.polling, stock: w.cpu.off },
  );
  // Noise: how far apart two windows taken at once come out when nothing differs that should
  // show (the feed and off nodes idle), and how much the feed-minus-off gap moves between windows.
  const gaps = w.cpu.feed.map((cpu, i) => cpu - (w.cpu.off[i] ?? NaN));
  const idleGaps = w.idle.feed.map((cpu, i) => Math.abs(cpu - (w.idle.off[i] ?? NaN)));
  const noise = Math.max(...idleGaps, Math.max(...gaps) - Math.min(...gaps));
  host.addRow({
    section: SECTION,
    figure: `server CPU ms / ${s} window, feed on minus revalidation off`,
    values: { package: median(gaps) },
    target: { op: '<', value: noise, of: 'package' },
    note:
      `the feed's own cost on ${n} idle sockets: the median gap between the two nodes' ` +
      `windows taken at once, each connected first in half of them (${list(gaps, 0)} ms; ` +
      `${pct(median(gaps), median(w.cpu.off))} ` +
      `of the off node's window); the target is the noise: the widest of the gaps between ` +
      `the two idle nodes' windows (${list(idleGaps, 1)} ms) and the spread of the gaps above`,
  });
}
