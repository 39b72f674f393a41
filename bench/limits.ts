// The `limits` figure (issue 22): rateLimit's event limits against stock Socket.IO, in memory and
// in Redis; one session flooding from 20 sockets while others ack; a stranger's handshake flood
// refused by perIp. Run by bench/run.ts (`--only limits`); the children's parts are in
// bench/limits-child.ts.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createClient } from 'redis';
import { Child } from './ipc.js';
import { MAIN_BUDGET } from './limits-child.js';
import { median, medianRatio, percentile, type Column, type Row } from './report.js';
import { NSP, PACKAGE, STOCK, type ClientCommands, type Variant } from './variants.js';

export const PACKAGE_LIMITS: Variant = { ...PACKAGE, id: 'package-limits', limits: 'memory' };
export const PACKAGE_LIMITS_REDIS: Variant = {
  ...PACKAGE,
  id: 'package-limits-redis',
  limits: 'redis',
};

/** The server variants the figure needs started. */
export const limitVariants = (redis: boolean): Variant[] =>
  redis ? [PACKAGE_LIMITS, PACKAGE_LIMITS_REDIS] : [PACKAGE_LIMITS];

interface Server {
  variant: Variant;
  url: string;
  cookie: string;
}

/** What run.ts lends the figure: its bench, and its measuring helpers. */
export interface LimitsHost {
  quick: boolean;
  rounds: number;
  acks: { count: number; warmup: number; inflight: number };
  client: Child<ClientCommands>;
  /** Node flags of a client child (the flooder has one of its own: its sends do not slow the measured clients). */
  clientFlags: string[];
  server(variant: Variant): Server;
  addRow(row: Row, samples?: Partial<Record<Column, number[]>>): void;
  log(message: string): void;
  serverCpu(server: Server, settle: boolean, work: () => Promise<unknown>): Promise<number>;
}

const SECTION = '10. Limits (rateLimit events; perIp)';
/** One session's flood, from 20 sockets. */
const FLOOD = { sockets: 20, perSecond: 10_000 };
/** The other sessions: each acks at a steady rate, well inside its budget. */
const OTHERS = { sessions: 4, perSecond: 50 };

export async function limitsFigure(host: LimitsHost, url: string | undefined): Promise<void> {
  const redisUrl = url === '' ? undefined : url;
  await acksWithLimits(host, redisUrl);
  await flood(host, redisUrl);
  await handshakeFlood(host);
}

/** EVAL and EVALSHA calls Redis has run: the limiter's one script per counted event. */
async function evals(url: string | undefined): Promise<number> {
  if (!url) return NaN;
  const client = createClient({ url });
  await client.connect();
  const info = await client.sendCommand<string>(['INFO', 'commandstats']);
  await client.quit();
  let total = 0;
  for (const [, calls] of info.matchAll(/^cmdstat_eval(?:sha)?:calls=(\d+)/gm))
    total += Number(calls ?? 0);
  return total;
}

// (a) and (b): acks/s on one socket, a limit on every event, memory and Redis, against stock.
async function acksWithLimits(host: LimitsHost, redisUrl: string | undefined): Promise<void> {
  const { client, acks } = host;
  const variants = [STOCK, PACKAGE, PACKAGE_LIMITS, ...(redisUrl ? [PACKAGE_LIMITS_REDIS] : [])];
  const servers = variants.map((v) => host.server(v));
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
    await client.call('acks', { group, count: acks.warmup, inflight: acks.inflight });
  }
  const rates = new Map(variants.map((v) => [v.id, [] as number[]]));
  const trips: number[] = [];
  for (let round = 0; round < host.rounds; round++) {
    host.log(`limits: acks, round ${round + 1}/${host.rounds}`);
    for (let i = 0; i < servers.length; i++) {
      const server = servers[(i + round) % servers.length];
      if (!server) continue;
      const group = groups.get(server.variant.id) ?? -1;
      const redis = server.variant.limits === 'redis';
      const before = redis ? await evals(redisUrl) : 0;
      const { ms } = await client.call('acks', {
        group,
        count: acks.count,
        inflight: acks.inflight,
      });
      if (redis) trips.push(((await evals(redisUrl)) - before) / acks.count);
      rates.get(server.variant.id)?.push((acks.count * 1000) / ms);
    }
  }
  for (const group of groups.values()) await client.call('close', { group });
  const of = (v: Variant): number[] => rates.get(v.id) ?? [];
  const plain = median(of(PACKAGE));
  host.addRow(
    {
      section: SECTION,
      figure: `acks/s, ${acks.inflight} in flight on one socket, a memory limit on every event`,
      values: { stock: median(of(STOCK)), package: median(of(PACKAGE_LIMITS)) },
      ratio: medianRatio(of(PACKAGE_LIMITS), of(STOCK)),
      baseline: 'stock',
      target: { op: '>=', value: 0.97, of: 'ratio' },
      note: `the package without the limit: ${plain.toFixed(0)} acks/s (${medianRatio(of(PACKAGE), of(STOCK)).toFixed(2)}× stock)`,
    },
    { stock: of(STOCK), package: of(PACKAGE_LIMITS), recipe: of(PACKAGE) },
  );
  if (!redisUrl) {
    host.addRow({
      section: SECTION,
      figure: 'the Redis limiter',
      values: {},
      note: 'REDIS_URL not set',
    });
    return;
  }
  host.addRow(
    {
      section: SECTION,
      figure: 'acks/s, the same with the limit in Redis',
      values: { stock: median(of(STOCK)), package: median(of(PACKAGE_LIMITS_REDIS)) },
      ratio: medianRatio(of(PACKAGE_LIMITS_REDIS), of(STOCK)),
      baseline: 'stock',
    },
    { stock: of(STOCK), package: of(PACKAGE_LIMITS_REDIS) },
  );
  host.addRow({
    section: SECTION,
    figure: 'Redis round trips / event let through',
    values: { package: median(trips) },
    target: { op: '<=', value: 1, of: 'package' },
    note: 'EVAL/EVALSHA calls in INFO commandstats during the acks, per event',
  });
}

interface Window {
  cpu: number;
  p99: number;
  flood: { sent: number; served: number; refused: number; ms: number } | undefined;
  evals: number;
  /** Acks the other sessions sent. */
  others: number;
}

// (c): one session floods from 20 sockets while other sessions ack at a steady pace; the same
// windows without the flood, and on the package without limits (serving the flood).
async function flood(host: LimitsHost, redisUrl: string | undefined): Promise<void> {
  const file = resolve(__dirname, 'clients.ts');
  const { child: flooder } = await Child.start<ClientCommands>(
    'flooder',
    file,
    [],
    host.clientFlags,
  );
  const durationMs = host.quick ? 2000 : 5000;
  const rounds = Math.min(host.rounds, 5);
  const limited = host.server(PACKAGE_LIMITS);
  const served = host.server(PACKAGE);
  const viaRedis = redisUrl ? host.server(PACKAGE_LIMITS_REDIS) : undefined;
  const groups = new Map<string, { flood: number; others: number }>();
  for (const server of [limited, served, ...(viaRedis ? [viaRedis] : [])]) {
    const [own = ''] = await flooder.call('login', { base: server.url, count: 1, concurrency: 1 });
    const others = await host.client.call('login', {
      base: server.url,
      count: OTHERS.sessions,
      concurrency: 4,
    });
    const open = (client: Child<ClientCommands>, cookies: string[], count: number) =>
      client.call('open', { url: server.url, nsp: NSP.main, cookies, count, concurrency: 4 });
    groups.set(server.variant.id, {
      flood: await open(flooder, [own], FLOOD.sockets),
      others: await open(host.client, others, OTHERS.sessions),
    });
  }
  const window = async (server: Server, flooded: boolean): Promise<Window> => {
    const group = groups.get(server.variant.id) ?? { flood: -1, others: -1 };
    let p99 = NaN;
    let others = 0;
    let floodResult: Window['flood'];
    const before = server.variant.limits === 'redis' ? await evals(redisUrl) : 0;
    const cpu = await host.serverCpu(server, false, async () => {
      const paced = host.client.call('paced', {
        group: group.others,
        perSecond: OTHERS.perSecond,
        durationMs,
      });
      if (flooded) {
        floodResult = await flooder.call('flood', {
          group: group.flood,
          perSecond: FLOOD.perSecond,
          durationMs,
        });
      }
      const { latencies, refused } = await paced;
      if (refused > 0) throw new Error(`${refused} of the other sessions' acks were refused`);
      p99 = percentile(latencies, 99);
      others = latencies.length;
    });
    const evalCalls = server.variant.limits === 'redis' ? (await evals(redisUrl)) - before : NaN;
    return { cpu, p99, flood: floodResult, evals: evalCalls, others };
  };
  // Warm-up, not kept.
  await window(limited, true);
  await window(served, true);
  const runs = { quiet: [] as Window[], flooded: [] as Window[], servedQuiet: [] as Window[] };
  const servedFlooded: Window[] = [];
  const blocked: Window[] = [];
  for (let round = 0; round < rounds; round++) {
    host.log(`limits: flood, round ${round + 1}/${rounds}`);
    runs.quiet.push(await window(limited, false));
    runs.flooded.push(await window(limited, true));
    runs.servedQuiet.push(await window(served, false));
    servedFlooded.push(await window(served, true));
    if (viaRedis) blocked.push(await window(viaRedis, true));
  }
  await flooder.stop();
  for (const { others } of groups.values()) await host.client.call('close', { group: others });
  floodRows(host, runs.quiet, runs.flooded, runs.servedQuiet, servedFlooded);
  if (viaRedis) blockedRow(host, blocked);
}

function floodRows(
  host: LimitsHost,
  quiet: Window[],
  flooded: Window[],
  servedQuiet: Window[],
  servedFlooded: Window[],
): void {
  const sent = flooded.map((w) => w.flood?.sent ?? NaN);
  const rate = median(flooded.map((w) => ((w.flood?.sent ?? NaN) * 1000) / (w.flood?.ms ?? NaN)));
  const refusedShare = median(
    flooded.map((w) => (w.flood?.refused ?? NaN) / (w.flood?.sent ?? NaN)),
  );
  const flooding = `one session flooding from ${FLOOD.sockets} sockets at ${rate.toFixed(0)} events/s`;
  host.addRow(
    {
      section: SECTION,
      figure: `other sessions' ack p99, ms, ${flooding}`,
      values: { package: median(flooded.map((w) => w.p99)) },
      ratio: medianRatio(
        flooded.map((w) => w.p99),
        quiet.map((w) => w.p99),
      ),
      baselineLabel: 'unflooded',
      target: { op: '<=', value: 2, of: 'ratio' },
      note:
        `${OTHERS.sessions} sessions, ${OTHERS.perSecond} acks/s each; unflooded p99 ` +
        `${median(quiet.map((w) => w.p99)).toFixed(2)} ms; the flood asked ${FLOOD.perSecond} ` +
        `events/s (sent ${rate.toFixed(0)}/s), budget ${MAIN_BUDGET.points}/s per session, ` +
        `${(refusedShare * 100).toFixed(1)}% refused; with the flood served (no limit), their ` +
        `p99 was ${median(servedFlooded.map((w) => w.p99)).toFixed(2)} ms (` +
        `${median(servedQuiet.map((w) => w.p99)).toFixed(2)} ms unflooded)`,
    },
    { package: flooded.map((w) => w.p99), stock: quiet.map((w) => w.p99) },
  );
  // The CPU the flood adds to the same window without it, per flooder event.
  const perEvent = (on: Window[], off: Window[]): number[] =>
    on.map((w, i) => (w.cpu - (off[i]?.cpu ?? NaN)) / (w.flood?.sent ?? NaN));
  const refused = perEvent(flooded, quiet);
  const serving = perEvent(servedFlooded, servedQuiet);
  host.addRow(
    {
      section: SECTION,
      figure: 'server CPU µs / flooder event, refused by the limit',
      values: { package: median(refused) },
      ratio: medianRatio(refused, serving),
      baselineLabel: 'served',
      target: { op: '<', value: 1, of: 'ratio' },
      note:
        `the server's extra CPU in the flooded window over the same window unflooded, per event ` +
        `sent (median ${median(sent).toFixed(0)}); the package without the limit serving the ` +
        `flood: ${median(serving).toFixed(1)} µs`,
    },
    { package: refused, recipe: serving },
  );
}

function blockedRow(host: LimitsHost, blocked: Window[]): void {
  // Every let-through event is one EVAL; what is left is the refusals that asked Redis.
  const trips = blocked.map(
    (w) => (w.evals - (w.flood?.served ?? NaN) - w.others) / (w.flood?.refused ?? NaN),
  );
  // No target: the "0 while blocked" is what spec/nodes/limits-block-cache.spec.ts shows;
  // here the events already on their way to Redis when the first refusal comes back count too.
  host.addRow({
    section: SECTION,
    figure: 'Redis round trips / refused event, the flood on the Redis limiter',
    values: { package: median(trips) },
    note:
      "EVAL/EVALSHA calls beyond the events let through (the other sessions' and the " +
      "flooder's), per refused event: each window's refusals that reached Redis before its first " +
      'refusal came back (the flood keeps many on their way); the rest come from the in-memory ' +
      'block, with no round trip',
  });
}

/** One run of bench/ip-flood.ts: server CPU µs per refused attempt. */
function ipFlood(mode: 'plain' | 'ip', attempts: number): Promise<number> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', resolve(__dirname, 'ip-flood.ts'), mode, String(attempts)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.once('error', fail);
    child.once('exit', () => {
      const micros = /per refused attempt (\d+(?:\.\d+)?) µs/.exec(out)?.[1];
      if (micros === undefined) fail(new Error(`ip-flood ${mode}: ${out}`));
      else done(Number(micros));
    });
  });
}

// (d): a stranger's handshake flood from one address: perIp's refusal against requireAuth's.
async function handshakeFlood(host: LimitsHost): Promise<void> {
  const attempts = host.quick ? 300 : 2000;
  const rounds = host.quick ? 1 : 3;
  const plain: number[] = [];
  const ip: number[] = [];
  for (let round = 0; round < rounds; round++) {
    host.log(`limits: handshake flood, round ${round + 1}/${rounds}`);
    plain.push(await ipFlood('plain', attempts));
    ip.push(await ipFlood('ip', attempts));
  }
  host.addRow(
    {
      section: SECTION,
      figure: 'server CPU µs / refused handshake, one address flooding (perIp)',
      values: { package: median(ip) },
      ratio: medianRatio(ip, plain),
      baselineLabel: 'ordinary refusal',
      target: { op: '<=', value: 0.5, of: 'ratio' },
      note:
        `bench/ip-flood.ts (lib/ through tsx), ${attempts} websocket attempts one at a time; ` +
        `the ordinary refusal (requireAuth, one MemoryStore read, no user): ` +
        `${median(plain).toFixed(0)} µs. Both pay the engine's handshake and the namespace's ` +
        'connect_error, which the store read is a small part of',
    },
    { package: ip, stock: plain },
  );
}
