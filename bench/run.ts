// npm run bench [-- --quick] [-- --readme]
//   [-- --only handshakes,acks,refused,latency,presence,limits,store-events,heap]
//                [-- --source]  (measure lib/ through tsx instead of its tsc build)
//
// Each server variant runs in its own child process, every client in one more. Server CPU is read
// with process.cpuUsage() inside the server child, around each batch. Variants take turns round
// by round; the table shows medians, and ratios computed per round. Memory comes last: forced GCs
// throw warm code away.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import jwt from 'jsonwebtoken';
import { Child, killChildren } from './ipc.js';
import { presence, PRESENCE_FULL, PRESENCE_QUICK, type PresencePlan } from './presence.js';
import { limitsFigure, limitVariants } from './limits.js';
import {
  STORE_EVENTS_FULL,
  STORE_EVENTS_QUICK,
  storeEventsFigure,
  type StoreEventsPlan,
} from './store-events.js';
import { RESULTS_FILE, writeReadme } from './readme.js';
import {
  judge,
  median,
  medianRatio,
  percentile,
  renderTable,
  describeRun,
  type Column,
  type Results,
  type Row,
} from './report.js';
import {
  NODE_A,
  NODE_B,
  NODE_REVAL,
  NSP,
  PACKAGE_DIAGNOSTICS,
  JWT_SECRET,
  USER,
  REVALIDATION_MS,
  PACKAGE,
  PACKAGE_PRESENCE,
  PACKAGE_REDIS,
  RECIPE,
  RECIPE_REDIS,
  STOCK,
  type ClientCommands,
  type ServerCommands,
  type ServerInfo,
  type Variant,
} from './variants.js';

interface Plan {
  rounds: number;
  handshakes: { websocket: number; polling: number; three: number; concurrency: number };
  acks: { count: number; warmup: number; inflight: number };
  refused: { clients: number; durationMs: number };
  heapLevels: number[];
  latency: { warmup: number; samples: number };
  revalidation: { sessions: number; rounds: number };
  presence: PresencePlan;
  storeEvents: StoreEventsPlan;
}

const FULL: Plan = {
  rounds: 9,
  handshakes: { websocket: 400, polling: 200, three: 200, concurrency: 8 },
  acks: { count: 20_000, warmup: 5_000, inflight: 64 },
  refused: { clients: 20, durationMs: 60_000 },
  heapLevels: [1_000, 10_000],
  latency: { warmup: 20, samples: 300 },
  revalidation: { sessions: 10_000, rounds: 3 },
  presence: PRESENCE_FULL,
  storeEvents: STORE_EVENTS_FULL,
};

const QUICK: Plan = {
  rounds: 2,
  handshakes: { websocket: 40, polling: 20, three: 20, concurrency: 8 },
  acks: { count: 500, warmup: 200, inflight: 64 },
  refused: { clients: 5, durationMs: 5_000 },
  heapLevels: [200],
  latency: { warmup: 3, samples: 20 },
  revalidation: { sessions: 200, rounds: 2 },
  presence: PRESENCE_QUICK,
  storeEvents: STORE_EVENTS_QUICK,
};

/** What `--only` selects, in the order they run: CPU figures first, memory last. */
const FIGURES = [
  'handshakes',
  'tokens',
  'acks',
  'diagnostics',
  'refused',
  'latency',
  'revalidation',
  'presence',
  'limits',
  'store-events',
  'heap',
] as const;
type Figure = (typeof FIGURES)[number];

const ROOT = resolve(__dirname, '..');
const SERVER_FLAGS = ['--expose-gc', '--no-memory-reducer'];
const CLIENT_FLAGS = ['--no-memory-reducer', '--max-old-space-size=4096'];
const CLIENT_FILE = resolve(__dirname, 'clients.ts');

interface ServerHandle {
  variant: Variant;
  child: Child<ServerCommands>;
  url: string;
  /** A logged-in session's Cookie header. */
  cookie: string;
}

type Client = Child<ClientCommands>;

const log = (message: string): void => {
  process.stderr.write(`bench: ${message}\n`);
};

/**
 * Compiles lib/ with the package's own build settings into a folder of this run: the servers load
 * what users run. (tsx's transform wraps every function in `__name()`, a defineProperty per closure
 * created, which costs the package a few per cent per event that its build does not.)
 */
function buildPackage(): string {
  // Under node_modules (which lint skips), so that the build still finds the dependencies.
  const outDir = resolve(
    ROOT,
    'node_modules',
    '.cache',
    'socket.io-session-auth-bench',
    `${process.pid}`,
  );
  process.once('exit', () => {
    rmSync(outDir, { recursive: true, force: true });
    try {
      rmdirSync(dirname(outDir)); // when no other run is using it
    } catch {
      // another run's build is still there
    }
  });
  const tsc = resolve(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const flags = ['--declaration', 'false', '--declarationMap', 'false', '--sourceMap', 'false'];
  const result = spawnSync(
    process.execPath,
    [tsc, '-p', 'tsconfig.build.json', '--outDir', outDir, ...flags],
    { cwd: ROOT, encoding: 'utf8' },
  );
  const entry = join(outDir, 'index.js');
  if (!existsSync(entry)) throw new Error(`tsc built nothing:\n${result.stdout}${result.stderr}`);
  if (result.status !== 0) {
    log(`tsc reported errors in lib/; measuring its output anyway:\n${result.stdout}`);
  }
  return entry;
}

async function startServer(variant: Variant, runId: string, entry: string): Promise<ServerHandle> {
  const { child, ready } = await Child.start<ServerCommands>(
    `server ${variant.id}`,
    resolve(__dirname, 'servers.ts'),
    [JSON.stringify(variant), runId, entry],
    SERVER_FLAGS,
  );
  const { port } = ready as ServerInfo;
  return { variant, child, url: `http://127.0.0.1:${port}`, cookie: '' };
}

/** Runs `measure` on each server, round after round, in an order that rotates every round. */
async function interleave(
  what: string,
  rounds: number,
  servers: readonly ServerHandle[],
  measure: (server: ServerHandle) => Promise<number>,
): Promise<Map<string, number[]>> {
  const out = new Map(servers.map((s) => [s.variant.id, [] as number[]]));
  for (let round = 0; round < rounds; round++) {
    log(`${what}: round ${round + 1}/${rounds}`);
    for (let i = 0; i < servers.length; i++) {
      const server = servers[(i + round) % servers.length];
      if (!server) continue;
      out.get(server.variant.id)?.push(await measure(server));
    }
  }
  return out;
}

/** Server CPU (µs) spent while `work` runs; `settle` waits for its connections to be gone. */
async function serverCpu(
  server: ServerHandle,
  settle: boolean,
  work: () => Promise<unknown>,
): Promise<number> {
  const before = await server.child.call('cpu', { settle });
  await work();
  const after = await server.child.call('cpu', { settle });
  return after.cpuMicros - before.cpuMicros;
}

/** The three columns of one store: stock, and the recipe and the package on that store. */
interface Trio {
  handshakeSection: string;
  eventSection: string;
  stock: ServerHandle;
  recipe: ServerHandle;
  package: ServerHandle;
}

function samplesOf(map: Map<string, number[]>, trio: Trio): Record<Column, number[]> {
  const of = (s: ServerHandle): number[] => map.get(s.variant.id) ?? [];
  return { stock: of(trio.stock), recipe: of(trio.recipe), package: of(trio.package) };
}

function medians(samples: Partial<Record<Column, number[]>>): Partial<Record<Column, number>> {
  const values: Partial<Record<Column, number>> = {};
  for (const [column, list] of Object.entries(samples) as [Column, number[]][]) {
    values[column] = median(list);
  }
  return values;
}

class Bench {
  readonly rows: Row[] = [];
  readonly samples: Results['samples'] = {};

  constructor(
    readonly plan: Plan,
    readonly client: Client,
    readonly servers: Map<string, ServerHandle>,
  ) {}

  server(variant: Variant): ServerHandle {
    const server = this.servers.get(variant.id);
    if (!server) throw new Error(`no server for ${variant.id}`);
    return server;
  }

  addRow(row: Row, samples?: Partial<Record<Column, number[]>>): void {
    this.rows.push(judge(row));
    if (samples) this.samples[`${row.section} / ${row.figure}`] = samples;
  }

  /** Refuses to measure a variant that does not guard what it should. */
  async preflight(): Promise<void> {
    for (const server of this.servers.values()) {
      const url = `${server.url}${NSP.main}`;
      const anonymous = await this.client.call('probe', { url, cookie: undefined });
      const loggedIn = await this.client.call('probe', { url, cookie: server.cookie });
      const guarded = server.variant.auth !== 'stock';
      if (loggedIn !== 'connected' || (anonymous === 'connected') === guarded) {
        throw new Error(
          `${server.variant.id} is not set up as expected: anonymous ${anonymous}, logged in ${loggedIn}`,
        );
      }
    }
  }

  // 1 and 6: server CPU per authenticated handshake.
  async handshakes(trios: readonly Trio[]): Promise<void> {
    const { plan, client } = this;
    const { concurrency } = plan.handshakes;
    const kinds = [
      {
        figure: 'server CPU µs / handshake, websocket',
        transports: ['websocket' as const],
        namespaces: [NSP.main],
        count: plan.handshakes.websocket,
      },
      {
        figure: 'server CPU µs / handshake, polling',
        transports: ['polling' as const],
        namespaces: [NSP.main],
        count: plan.handshakes.polling,
      },
      {
        figure: 'server CPU µs / connection, 3 namespaces (ws)',
        transports: ['websocket' as const],
        namespaces: NSP.three,
        count: plan.handshakes.three,
      },
    ];
    const servers = unique(trios.flatMap((t) => [t.stock, t.recipe, t.package]));
    for (const kind of kinds) {
      const batch = (server: ServerHandle, count: number): Promise<number> =>
        serverCpu(server, true, () =>
          client.call('handshakes', {
            url: server.url,
            cookie: server.cookie,
            transports: kind.transports,
            namespaces: kind.namespaces,
            count,
            concurrency,
          }),
        );
      for (const server of servers) await batch(server, kind.count); // warm-up, not kept
      const map = await interleave(kind.figure, plan.rounds, servers, async (server) => {
        return (await batch(server, kind.count)) / kind.count;
      });
      for (const trio of trios) {
        const samples = samplesOf(map, trio);
        this.addRow(
          {
            section: trio.handshakeSection,
            figure: kind.figure,
            values: medians(samples),
            ratio: medianRatio(samples.package, samples.recipe),
            baseline: 'recipe',
            // Three namespaces: the package reads the session at each namespace connect that does
            // not overlap another (a logout in between is honoured), the recipe once.
            target: { op: '<=', value: kind.namespaces.length > 1 ? 1.2 : 1, of: 'ratio' },
          },
          samples,
        );
      }
    }
  }

  // 3 and 6: acks/s with 64 in flight on one socket, and server CPU per event.
  async acks(trios: readonly Trio[]): Promise<void> {
    const { plan, client } = this;
    const { count, warmup, inflight } = plan.acks;
    const servers = unique(trios.flatMap((t) => [t.stock, t.recipe, t.package]));
    const groups = new Map<string, number>();
    for (const server of servers) {
      const group = await client.call('open', {
        url: server.url,
        nsp: NSP.events,
        cookies: [server.cookie],
        count: 1,
        concurrency: 1,
      });
      groups.set(server.variant.id, group);
      await client.call('acks', { group, count: warmup, inflight });
    }
    const rates = new Map(servers.map((s) => [s.variant.id, [] as number[]]));
    const cpu = await interleave('acks', plan.rounds, servers, async (server) => {
      const group = groups.get(server.variant.id) ?? -1;
      let ms = 0;
      const micros = await serverCpu(server, false, async () => {
        ({ ms } = await client.call('acks', { group, count, inflight }));
      });
      rates.get(server.variant.id)?.push((count * 1000) / ms);
      return micros / count;
    });
    for (const group of groups.values()) await client.call('close', { group });
    for (const trio of trios) {
      const rate = samplesOf(rates, trio);
      this.addRow(
        {
          section: trio.eventSection,
          figure: `acks/s, ${inflight} in flight on one socket`,
          values: medians(rate),
          ratio: medianRatio(rate.package, rate.stock),
          baseline: 'stock',
          target: { op: '>=', value: 0.97, of: 'ratio' },
        },
        rate,
      );
      const perEvent = samplesOf(cpu, trio);
      this.addRow(
        {
          section: trio.eventSection,
          figure: 'server CPU µs / event',
          values: medians(perEvent),
          ratio: medianRatio(perEvent.package, perEvent.stock),
          baseline: 'stock',
        },
        perEvent,
      );
    }
  }

  // 1b: a handshake authenticated by a JWT (passportNamespace), next to the cookie one.
  async tokens(): Promise<void> {
    const { plan, client } = this;
    const server = this.server(PACKAGE);
    const section = '1b. Authenticated handshake: a JWT (passport-jwt) next to the cookie session';
    const token = jwt.sign({ sub: USER.id }, JWT_SECRET, { expiresIn: 3600 });
    const count = plan.handshakes.websocket;
    const run = (how: 'cookie' | 'token'): Promise<number> =>
      serverCpu(server, true, () =>
        client.call('handshakes', {
          url: server.url,
          cookie: how === 'cookie' ? server.cookie : undefined,
          ...(how === 'token' && { token }),
          transports: ['websocket'],
          namespaces: [how === 'cookie' ? NSP.main : NSP.token],
          count,
          concurrency: plan.handshakes.concurrency,
        }),
      ).then((micros) => micros / count);
    await run('cookie');
    await run('token');
    const cookie: number[] = [];
    const tokens: number[] = [];
    for (let round = 0; round < plan.rounds; round++) {
      log(`tokens: round ${round + 1}/${plan.rounds}`);
      cookie.push(await run('cookie'));
      tokens.push(await run('token'));
    }
    this.addRow(
      {
        section,
        figure: 'server CPU µs / handshake, websocket, JWT',
        values: { package: median(tokens) },
        ratio: medianRatio(tokens, cookie),
        baselineLabel: 'cookie',
        note: `the same handshake with the cookie session: ${median(cookie).toFixed(0)} µs`,
      },
      { package: tokens, stock: cookie },
    );
  }

  // 8: what a subscriber on every diagnostics channel costs, against the package without one.
  async diagnostics(): Promise<void> {
    const { plan, client } = this;
    const plain = this.server(PACKAGE);
    const watched = this.server(PACKAGE_DIAGNOSTICS);
    const section = '8. Diagnostics channels: one subscriber on every channel';
    const count = plan.handshakes.websocket;
    const handshake = (server: ServerHandle): Promise<number> =>
      serverCpu(server, true, () =>
        client.call('handshakes', {
          url: server.url,
          cookie: server.cookie,
          transports: ['websocket'],
          namespaces: [NSP.main],
          count,
          concurrency: plan.handshakes.concurrency,
        }),
      ).then((micros) => micros / count);
    for (const server of [plain, watched]) await handshake(server);
    const cpu = await interleave(
      'diagnostics: handshakes',
      plan.rounds,
      [plain, watched],
      handshake,
    );
    const samples = {
      package: cpu.get(watched.variant.id) ?? [],
      stock: cpu.get(plain.variant.id) ?? [],
    };
    this.addRow({
      section,
      figure: 'server CPU µs / handshake, websocket',
      values: { package: median(samples.package) },
      ratio: medianRatio(samples.package, samples.stock),
      baselineLabel: 'no subscriber',
      note: `the package without a subscriber: ${median(samples.stock).toFixed(0)} µs`,
    });
  }

  // 2: unauthenticated clients with default reconnection, recipe vs package, in the same window.
  async refused(): Promise<void> {
    const { clients, durationMs } = this.plan.refused;
    const recipe = this.server(RECIPE);
    const pkg = this.server(PACKAGE);
    const section = `2. Refused unauthenticated clients (${clients} clients, ${durationMs / 1000} s)`;
    log(`refused clients: ${durationMs / 1000} s`);
    const both = [recipe, pkg];
    await Promise.all(both.map((s) => s.child.call('attempts', { reset: true })));
    const before = await Promise.all(both.map((s) => s.child.call('cpu', { settle: true })));
    const { connectErrors } = await this.client.call('refused', {
      urls: both.map((s) => s.url),
      clients,
      durationMs,
    });
    const after = await Promise.all(both.map((s) => s.child.call('cpu', { settle: true })));
    const attempts = await Promise.all(both.map((s) => s.child.call('attempts', { reset: true })));
    const perClientMinute = (n: number): number => (n / clients) * (60_000 / durationMs);
    const [recipeAttempts = NaN, pkgAttempts = NaN] = attempts.map(perClientMinute);
    const [recipeCpu = NaN, pkgCpu = NaN] = both.map((_, i) =>
      perClientMinute(((after[i]?.cpuMicros ?? NaN) - (before[i]?.cpuMicros ?? NaN)) / 1000),
    );
    this.addRow({
      section,
      figure: 'connection attempts / client / minute',
      values: { recipe: recipeAttempts, package: pkgAttempts },
      ratio: pkgAttempts / recipeAttempts,
      baseline: 'recipe',
      target: { op: '<=', value: 0.1, of: 'ratio' },
      note: `client-side connect_error events: recipe ${connectErrors[0] ?? 0}, package ${connectErrors[1] ?? 0}`,
    });
    this.addRow({
      section,
      figure: 'server CPU ms / client / minute',
      values: { recipe: recipeCpu, package: pkgCpu },
      ratio: pkgCpu / recipeCpu,
      baseline: 'recipe',
      target: { op: '<=', value: 1 / 3, of: 'ratio' },
    });
  }

  // 5: HTTP logout response received → the client's disconnect event.
  async latency(redis: boolean): Promise<void> {
    const { warmup, samples } = this.plan.latency;
    const section =
      '5. Logout or demotion → disconnect latency, ms (disconnectOnLogout, refreshUser)';
    const measure = async (
      httpNode: ServerHandle,
      socketNode: ServerHandle,
      action: 'logout' | 'demote' = 'logout',
    ) => {
      const nsp = action === 'logout' ? NSP.main : NSP.admin;
      const args = { httpBase: httpNode.url, socketBase: socketNode.url, nsp, action };
      await this.client.call('latency', { ...args, samples: warmup });
      return this.client.call('latency', { ...args, samples });
    };
    const rows = (
      figure: string,
      { afterResponse, afterRequest }: { afterResponse: number[]; afterRequest: number[] },
      bound: number,
    ): void => {
      const early = afterResponse.filter((ms) => ms <= 0).length / afterResponse.length;
      this.addRow({
        section,
        figure: `${figure}, p50`,
        values: { package: percentile(afterResponse, 50) },
      });
      this.addRow(
        {
          section,
          figure: `${figure}, p99`,
          values: { package: percentile(afterResponse, 99) },
          target: { op: '<', value: bound, of: 'package' },
          note:
            `the disconnect came before the HTTP response in ${(early * 100).toFixed(0)}% of ` +
            `${afterResponse.length} requests; from the request: p50 ` +
            `${percentile(afterRequest, 50).toFixed(2)} ms, p99 ${percentile(afterRequest, 99).toFixed(2)} ms`,
        },
        { package: afterResponse },
      );
    };
    log('logout latency: one node');
    const pkg = this.server(PACKAGE);
    rows('one node', await measure(pkg, pkg), 20);
    log('refreshUser latency: one node');
    rows('refreshUser (demoted admin), one node', await measure(pkg, pkg, 'demote'), 50);
    if (redis) {
      log('logout latency: two nodes');
      rows('two nodes over Redis', await measure(this.server(NODE_A), this.server(NODE_B)), 50);
      log('refreshUser latency: two nodes');
      rows(
        'refreshUser (demoted admin), two nodes over Redis',
        await measure(this.server(NODE_A), this.server(NODE_B), 'demote'),
        50,
      );
    } else {
      this.addRow({
        section,
        figure: 'two nodes over Redis, p99',
        values: {},
        target: { op: '<', value: 50, of: 'package' },
        note: 'REDIS_URL not set',
      });
    }
  }

  // 7: revalidation on a node of a cluster: what one round costs with many sessions on the node.
  async revalidation(): Promise<void> {
    const { sessions, rounds } = this.plan.revalidation;
    const server = this.server(NODE_REVAL);
    const section = `7. Revalidation on several nodes (connect-redis, one round every ${REVALIDATION_MS / 1000} s)`;
    const per10k = 10_000 / sessions;
    log(`revalidation: logging in ${sessions} sessions`);
    const cookies = await this.client.call('login', {
      base: server.url,
      count: sessions,
      concurrency: 16,
    });
    const window = async (): Promise<number> => {
      const before = await server.child.call('cpu', { settle: false });
      await new Promise((resolve) => setTimeout(resolve, rounds * REVALIDATION_MS));
      const after = await server.child.call('cpu', { settle: false });
      return after.cpuMicros - before.cpuMicros;
    };
    // The same window with no socket: what the node burns anyway (adapter heartbeats, timers).
    const idle = await window();
    const group = await this.client.call('open', {
      url: server.url,
      nsp: NSP.main,
      cookies,
      count: sessions,
      concurrency: 32,
    });
    await server.child.call('waitConnections', { count: sessions, timeoutMs: 120_000 });
    // Let the rounds under way when the sockets came finish before counting.
    await new Promise((resolve) => setTimeout(resolve, REVALIDATION_MS));
    await server.child.call('storeReads', { reset: true });
    const busy = await window();
    const { reads, peakPer100ms } = await server.child.call('storeReads', { reset: true });
    await this.client.call('close', { group });
    await server.child.call('waitConnections', { count: 0, timeoutMs: 120_000 });
    // Per store read (one per session per round), not per window: the window is not in phase with
    // the rounds, and held 23,008 to 33,136 reads for a nominal 30,000 in 24 runs (issue 19).
    this.addRow({
      section,
      figure: 'server CPU ms / round, per 10,000 sessions',
      values: { package: reads > 0 ? ((busy - idle) / 1000 / reads) * 10_000 : NaN },
      note: `${sessions.toLocaleString('en-US')} sessions with a socket each; ${reads.toLocaleString('en-US')} store reads in a window of ${rounds} rounds; CPU per 10,000 reads`,
    });
    this.addRow({
      section,
      figure: 'most store reads in any 100 ms, per 10,000 sessions',
      values: { package: peakPer100ms * per10k },
      note: 'all of a round at once would be 10,000',
    });
  }

  // 4: heap per connected authenticated socket, then what is left once they have all left.
  async heap(): Promise<void> {
    const { client, plan } = this;
    const levels = plan.heapLevels;
    const top = Math.max(...levels);
    const section = `4. Heap per authenticated socket (websocket, one session each)`;
    const perSocket = new Map<number, Partial<Record<Column, number>>>();
    const residual: Partial<Record<Column, number>> = {};
    for (const variant of [STOCK, RECIPE, PACKAGE]) {
      const server = this.server(variant);
      const column = variant.auth;
      log(`heap: ${variant.id}, logging in ${top} sessions`);
      const cookies = await client.call('login', { base: server.url, count: top, concurrency: 16 });
      const open = (count: number, from: number): Promise<number> =>
        client.call('open', {
          url: server.url,
          nsp: NSP.main,
          cookies: cookies.slice(from, from + count),
          count,
          concurrency: 32,
        });
      // Warm the paths up once, so that the baseline holds their code.
      await client.call('close', { group: await open(Math.min(100, top), 0) });
      await server.child.call('waitConnections', { count: 0, timeoutMs: 30_000 });
      const base = (await server.child.call('heap', null)).heapUsed;
      const groups: number[] = [];
      let opened = 0;
      for (const level of levels) {
        log(`heap: ${variant.id}, ${level} sockets`);
        groups.push(await open(level - opened, opened));
        opened = level;
        await server.child.call('waitConnections', { count: level, timeoutMs: 60_000 });
        const { heapUsed } = await server.child.call('heap', null);
        const values = perSocket.get(level) ?? {};
        values[column] = (heapUsed - base) / level / 1024;
        perSocket.set(level, values);
      }
      for (const group of groups) await client.call('close', { group });
      await server.child.call('waitConnections', { count: 0, timeoutMs: 120_000 });
      residual[column] = ((await server.child.call('heap', null)).heapUsed - base) / 1024;
    }
    for (const [level, values] of perSocket) {
      this.addRow({
        section,
        figure: `KiB / socket, ${level.toLocaleString('en-US')} sockets`,
        values,
        ratio: (values.package ?? NaN) / (values.stock ?? NaN),
        baseline: 'stock',
        target: { op: '<=', value: 1.15, of: 'ratio' },
      });
    }
    this.addRow({
      section,
      figure: `KiB left after all ${top.toLocaleString('en-US')} disconnect`,
      values: residual,
    });
  }
}

function unique<T>(list: readonly T[]): T[] {
  return [...new Set(list)];
}

function version(name: string): string {
  const file = resolve(ROOT, 'node_modules', name, 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const source = args.includes('--source');
  const readme = args.includes('--readme');
  const onlyAt = args.indexOf('--only');
  const only = onlyAt === -1 ? undefined : (args[onlyAt + 1] ?? '').split(',');
  const unknown = only?.filter((name) => !(FIGURES as readonly string[]).includes(name)) ?? [];
  if (unknown.length > 0) throw new Error(`--only takes some of ${FIGURES.join(',')}`);
  const want = (figure: Figure): boolean => !only || only.includes(figure);
  if (readme && (quick || only || source))
    throw new Error('--readme takes figures from a full run');
  const plan = quick ? QUICK : FULL;
  const started = performance.now();
  const loadStart = loadavg()[0] ?? NaN;
  const redis = (process.env.REDIS_URL ?? '') !== '';
  const runId = `${process.pid}-${Date.now()}`;
  const variants = [
    STOCK,
    RECIPE,
    PACKAGE,
    PACKAGE_DIAGNOSTICS,
    ...(want('presence') ? [PACKAGE_PRESENCE] : []),
    ...(redis ? [RECIPE_REDIS, PACKAGE_REDIS, NODE_A, NODE_B, NODE_REVAL] : []),
    ...(want('limits') ? limitVariants(redis) : []),
  ];

  log(`${quick ? 'quick' : 'full'} run: ${variants.length} server children and a client child`);
  const entry = source ? 'socket.io-session-auth' : buildPackage();
  const [{ child: client }, ...handles] = await Promise.all([
    Child.start<ClientCommands>('client', CLIENT_FILE, [], CLIENT_FLAGS),
    ...variants.map((variant) => startServer(variant, runId, entry)),
  ]);
  for (const server of handles) {
    const [cookie] = await client.call('login', { base: server.url, count: 1, concurrency: 1 });
    server.cookie = cookie ?? '';
  }
  const bench = new Bench(plan, client, new Map(handles.map((s) => [s.variant.id, s])));
  await bench.preflight();

  const trios: Trio[] = [
    {
      handshakeSection: '1. Authenticated handshake (MemoryStore)',
      eventSection: '3. Events on one socket (MemoryStore; package: authorizeEvent, expiry timer)',
      stock: bench.server(STOCK),
      recipe: bench.server(RECIPE),
      package: bench.server(PACKAGE),
    },
  ];
  if (redis) {
    trios.push({
      handshakeSection: '6. Redis session store: authenticated handshake',
      eventSection: '6. Redis session store: events on one socket',
      stock: bench.server(STOCK),
      recipe: bench.server(RECIPE_REDIS),
      package: bench.server(PACKAGE_REDIS),
    });
  }
  // CPU figures first, memory last.
  if (want('handshakes')) await bench.handshakes(trios);
  if (want('acks')) await bench.acks(trios);
  if (!redis && (want('handshakes') || want('acks'))) {
    bench.addRow({
      section: '6. Redis session store',
      figure: 'handshakes and events again',
      values: {},
      note: 'REDIS_URL not set',
    });
  }
  if (want('tokens')) await bench.tokens();
  if (want('diagnostics')) await bench.diagnostics();
  if (want('refused')) await bench.refused();
  if (want('latency')) await bench.latency(redis);
  if (want('revalidation')) {
    if (redis) await bench.revalidation();
    else {
      bench.addRow({
        section: '7. Revalidation on several nodes',
        figure: 'server CPU ms / round, per 10,000 sessions',
        values: {},
        note: 'REDIS_URL not set',
      });
    }
  }
  if (want('presence')) {
    await presence({
      plan: plan.presence,
      rounds: plan.rounds,
      redis,
      client,
      server: (variant) => bench.server(variant),
      startServer: (variant) => startServer(variant, runId, entry),
      startClient: async () =>
        (await Child.start<ClientCommands>('client', CLIENT_FILE, [], CLIENT_FLAGS)).child,
      interleave,
      addRow: (row, samples) => {
        bench.addRow(row, samples);
      },
      log,
    });
  }
  if (want('limits')) {
    const server = (v: Variant) => bench.server(v);
    const host = { ...plan, quick, client, log, serverCpu, server, clientFlags: CLIENT_FLAGS };
    await limitsFigure({ ...host, addRow: bench.addRow.bind(bench) }, process.env.REDIS_URL);
  }
  if (want('store-events')) {
    const startClient = async () =>
      (await Child.start<ClientCommands>('client', CLIENT_FILE, [], CLIENT_FLAGS)).child;
    const host = { plan: plan.storeEvents, client, startClient, entry, runId, log };
    await storeEventsFigure({ ...host, addRow: bench.addRow.bind(bench) }, process.env.REDIS_URL);
  }
  if (want('heap')) await bench.heap();

  const results: Results = {
    meta: {
      date: new Date().toISOString(),
      cpu: cpus()[0]?.model.trim() ?? 'unknown',
      cores: cpus().length,
      node: process.version,
      packageVersion: (
        JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { version: string }
      ).version,
      versions: Object.fromEntries(
        ['socket.io', 'express', 'express-session', 'passport'].map((name) => [
          name,
          version(name),
        ]),
      ),
      quick,
      only: only ?? null,
      build: source ? 'lib/ through tsx' : 'tsc build',
      redis,
      rounds: plan.rounds,
      durationS: Math.round((performance.now() - started) / 1000),
      loadAverage: { start: loadStart, end: loadavg()[0] ?? NaN },
    },
    rows: bench.rows,
    samples: bench.samples,
  };
  await Promise.all([client.stop(), ...handles.map((s) => s.child.stop())]);

  console.log(`${describeRun(results.meta)}\n`);
  console.log(renderTable(results));
  console.log(`\n${results.meta.durationS} s; results in ${RESULTS_FILE}`);
  mkdirSync(dirname(RESULTS_FILE), { recursive: true });
  writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
  if (readme) {
    await writeReadme(results);
    console.log('docs/performance.md: bench section rewritten');
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killChildren();
    process.exit(130);
  });
}

main().catch((error: unknown) => {
  console.error(error);
  killChildren();
  process.exit(1);
});
