// The `store-events` figure, (b) and (c) (bench/store-events.ts runs them): a session deleted or
// lapsing straight in the store (Redis DEL, PEXPIRE; Postgres DELETE) → `session:ended` on a
// socket on another node; endSessions for a user with 20 sessions over two nodes.
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createClient } from 'redis';
import {
  postgresBinDir,
  SCHEMA,
  startPostgres,
  type PostgresServer,
} from '../spec/support/postgres.js';
import { median, percentile } from './report.js';
import type { FeedNode } from './store-events-node.js';
import type { Figure, NodeHandle } from './store-events.js';

/** Epoch ms with sub-ms precision: comparable across the bench's processes on one machine. */
const now = (): number => performance.timeOrigin + performance.now();

/** The session ID in a Cookie header's `connect.sid=s:<id>.<signature>` (URL-encoded). */
export function sidOf(cookie: string): string {
  const raw = /(?:^|;\s*)connect\.sid=([^;]+)/.exec(cookie)?.[1];
  const value = decodeURIComponent(raw ?? '');
  if (!value.startsWith('s:')) throw new Error(`no signed connect.sid in ${cookie}`);
  return value.slice(2, value.lastIndexOf('.'));
}

/** How long a PEXPIRE gives a session before it lapses. */
const LAPSE_MS = 100;
/** The Redis database of (b) and (c): no other key of the bench (its TTLs slow Redis's expiry). */
const DATABASE = 1;

/** One kind of store change: does it to a session, returns when its socket is due to end. */
interface Change {
  name: string;
  code: string;
  change(sid: string): Promise<number>;
}

type RedisClient = ReturnType<typeof createClient>;

interface Pair {
  a: NodeHandle;
  b: NodeHandle;
}

// One after the other: pgStoreEvents's createTrigger of one must not race the other's.
async function startPair(host: Figure, node: Omit<FeedNode, 'id'>): Promise<Pair> {
  const a = await host.start({ ...node, id: `${node.engine}-a` });
  const b = await host.start({ ...node, id: `${node.engine}-b` });
  return { a, b };
}

/** Ends of `count` sessions logged in on A, their sockets on B, `change` done to each in turn. */
async function timed(
  host: Figure,
  { a, b }: Pair,
  change: Change,
  count: number,
): Promise<{ ms: number[]; codes: string[] }> {
  const { client } = host;
  const ms: number[] = [];
  const codes: string[] = [];
  for (let i = 0; i < count; i++) {
    // One at a time: no other session with a TTL in the database while one lapses.
    const [cookie = ''] = await client.call('login', { base: a.url, count: 1, concurrency: 1 });
    const group = await client.call('open', {
      url: b.url,
      nsp: '/',
      cookies: [cookie],
      count: 1,
      concurrency: 1,
    });
    await client.call('endsWatch', { group });
    await b.child.call('feedUp', { timeoutMs: 10_000 });
    const due = await change.change(sidOf(cookie));
    const [ended] = await client.call('endsWait', { group, count: 1, timeoutMs: 10_000 });
    await client.call('close', { group });
    if (!ended) throw new Error(`${change.name}: no session:ended on node B within 10 s`);
    ms.push(ended.at - due);
    if (ended.code !== change.code) codes.push(ended.code);
  }
  return { ms, codes };
}

function latencyRows(
  host: Figure,
  change: Pick<Change, 'name' | 'code'>,
  { ms, codes }: { ms: number[]; codes: string[] },
  more = '',
): void {
  const figure = `${change.name} → session:ended on another node, ms`;
  host.addRow({ section: host.section, figure: `${figure}, p50`, values: { package: median(ms) } });
  host.addRow(
    {
      section: host.section,
      figure: `${figure}, p99`,
      values: { package: percentile(ms, 99) },
      target: { op: '<', value: 200, of: 'package' },
      note:
        `${ms.length} samples, max ${Math.max(...ms).toFixed(1)} ms${more}` +
        (codes.length > 0 ? `; ${codes.length} came with another code than ${change.code}` : ''),
    },
    { package: ms },
  );
}

// (b): Redis (connect-redis, redisStoreEvents on both nodes) and Postgres (connect-pg-simple,
// pgStoreEvents), each on two nodes: the socket on B, the change made in the store itself.
export async function redisChanges(host: Figure): Promise<void> {
  const { plan, runId, log } = host;
  const prefix = `bench:${runId}:feed:`;
  const redis: RedisClient = createClient({ url: process.env.REDIS_URL, database: DATABASE });
  await redis.connect();
  const pair = await startPair(host, {
    engine: 'redis',
    feed: true,
    registry: false,
    prefix,
    adapterKey: `bench:${runId}:store-events-b`,
    database: DATABASE,
  });
  const del: Change = {
    name: 'Redis DEL of the session key',
    code: 'ERR_SESSION_REVOKED',
    async change(sid) {
      const at = now();
      await redis.del(`${prefix}${sid}`);
      return at;
    },
  };
  const lapse: Change = {
    name: `Redis PEXPIRE ${LAPSE_MS} ms of the session key (from the due time)`,
    code: 'ERR_SESSION_EXPIRED',
    async change(sid) {
      const at = now();
      await redis.pExpire(`${prefix}${sid}`, LAPSE_MS);
      return at + LAPSE_MS;
    },
  };
  log('store-events: Redis DEL');
  await timed(host, pair, del, 2); // warm-up
  latencyRows(host, del, await timed(host, pair, del, plan.samples));
  log('store-events: Redis PEXPIRE');
  latencyRows(
    host,
    lapse,
    await timed(host, pair, lapse, plan.samples),
    ', no other key with a TTL in the database',
  );
  await lapsesAmongOthers(host, pair, redis, prefix);
  await Promise.all([pair.a.child.stop(), pair.b.child.stop()]);
  await redis.quit();
}

// Redis sends `expired` when it expires a key: when the key is read, or when its background cycle
// (10 times a second, a sample of the keys with a TTL) finds it. Among many sessions with a TTL,
// a lapsed one can wait long for that.
async function lapsesAmongOthers(
  host: Figure,
  { a, b }: Pair,
  redis: RedisClient,
  prefix: string,
): Promise<void> {
  const { plan, client, runId, log } = host;
  const others = `bench:${runId}:ttl:`;
  log(`store-events: PEXPIRE among ${plan.background} keys with a TTL`);
  for (let i = 0; i < plan.background; i += 1000) {
    const batch = redis.multi();
    for (let j = i; j < Math.min(plan.background, i + 1000); j++) {
      batch.set(`${others}${j}`, 'x', { EX: 3600 });
    }
    await batch.exec();
  }
  const count = plan.backgroundSamples;
  const cookies = await client.call('login', { base: a.url, count, concurrency: 8 });
  const group = await client.call('open', { url: b.url, nsp: '/', cookies, count, concurrency: 8 });
  await client.call('endsWatch', { group });
  const due: number[] = [];
  for (const cookie of cookies) {
    const at = now();
    await redis.pExpire(`${prefix}${sidOf(cookie)}`, LAPSE_MS);
    due.push(at + LAPSE_MS);
  }
  const timeoutMs = plan.backgroundTimeoutMs;
  const ended = await client.call('endsWait', { group, count, timeoutMs });
  await client.call('close', { group });
  for (let i = 0; i < plan.background; i += 1000) {
    const keys = Array.from(
      { length: Math.min(1000, plan.background - i) },
      (_, j) => `${others}${i + j}`,
    );
    await redis.unlink(keys);
  }
  // A socket that got nothing within the timeout counts as the timeout: the p99 is then a bound.
  const ms = ended.map((end, i) => (end ? end.at : (due[i] ?? NaN) + timeoutMs) - (due[i] ?? NaN));
  const missing = ended.filter((end) => end === null).length;
  const codes = ended.flatMap((end) =>
    end && end.code !== 'ERR_SESSION_EXPIRED' ? [end.code] : [],
  );
  const otherKeys = plan.background.toLocaleString('en-US');
  latencyRows(
    host,
    {
      name: `Redis PEXPIRE ${LAPSE_MS} ms among ${otherKeys} other keys with a TTL`,
      code: 'ERR_SESSION_EXPIRED',
    },
    { ms, codes },
    `, ${count} lapsing at once` +
      (missing > 0 ? `; ${missing} not ended within ${timeoutMs / 1000} s (counted as that)` : ''),
  );
}

export async function postgresChanges(host: Figure): Promise<void> {
  const { plan, runId, log } = host;
  const name = 'Postgres DELETE FROM session WHERE sid';
  let server: PostgresServer | undefined;
  let url = process.env.DATABASE_URL;
  if (!url) {
    if (postgresBinDir() === undefined) {
      host.addRow({
        section: host.section,
        figure: `${name} → session:ended on another node, ms, p99`,
        values: {},
        note: 'not measured: no DATABASE_URL and no PostgreSQL server installed',
      });
      return;
    }
    log('store-events: starting a Postgres');
    server = await startPostgres();
    url = server.url;
  }
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    if (!server) await db.query(SCHEMA); // DATABASE_URL: connect-pg-simple's table, if missing
    const pair = await startPair(host, {
      engine: 'postgres',
      feed: true,
      registry: false,
      prefix: '',
      adapterKey: `bench_${runId.replace(/\W/g, '_')}`,
      database: 0,
      databaseUrl: url,
    });
    const del: Change = {
      name,
      code: 'ERR_SESSION_REVOKED',
      async change(sid) {
        const at = now();
        await db.query('DELETE FROM session WHERE sid = $1', [sid]);
        return at;
      },
    };
    log('store-events: Postgres DELETE');
    await timed(host, pair, del, 2);
    latencyRows(host, del, await timed(host, pair, del, plan.samples));
    await Promise.all([pair.a.child.stop(), pair.b.child.stop()]);
  } finally {
    await db.end();
    await server?.destroy();
  }
}

// (c): endSessions on node A for a user with 20 sessions: 5 with a socket on A, 5 on B, 10 with
// none; the registry in Redis. Until every socket got session:ended and every key is gone.
export async function userSessions(host: Figure): Promise<void> {
  const { plan, client, runId, log } = host;
  const prefix = `bench:${runId}:users:`;
  const redis: RedisClient = createClient({ url: process.env.REDIS_URL, database: DATABASE });
  await redis.connect();
  const { a, b } = await startPair(host, {
    engine: 'redis',
    feed: true,
    registry: true,
    prefix,
    adapterKey: `bench:${runId}:store-events-c`,
    database: DATABASE,
  });
  const totals: number[] = [];
  const answers: string[] = [];
  for (let rep = 0; rep < plan.repetitions; rep++) {
    log(`store-events: endSessions ${rep + 1}/${plan.repetitions}`);
    const user = 3_000_000 + rep;
    const cookies: string[] = [];
    for (let i = 0; i < 20; i++) {
      const base = i % 2 === 0 ? a.url : b.url;
      cookies.push(...(await client.call('login', { base, count: 1, concurrency: 1, from: user })));
    }
    const open = (url: string, from: number): Promise<number> =>
      client.call('open', {
        url,
        nsp: '/',
        cookies: cookies.slice(from, from + 5),
        count: 5,
        concurrency: 5,
      });
    const groups = [await open(a.url, 0), await open(b.url, 5)];
    for (const group of groups) await client.call('endsWatch', { group });
    const keys = cookies.map((cookie) => `${prefix}${sidOf(cookie)}`);
    const result = await a.child.call('endSessions', { userKey: `u${user}` });
    answers.push(`${result.sessions}/${result.sockets}`);
    let goneAt = NaN;
    for (const deadline = now() + 10_000; now() < deadline;) {
      if ((await redis.exists(keys)) === 0) {
        goneAt = now();
        break;
      }
    }
    const ends = await Promise.all(
      groups.map((group) => client.call('endsWait', { group, count: 5, timeoutMs: 10_000 })),
    );
    for (const group of groups) await client.call('close', { group });
    const at = ends.flat().flatMap((end) => (end ? [end.at] : []));
    if (at.length < 10 || Number.isNaN(goneAt)) {
      throw new Error(
        `endSessions: ${at.length} of 10 sockets ended, keys gone: ${!Number.isNaN(goneAt)}`,
      );
    }
    totals.push(Math.max(goneAt, ...at) - result.calledAt);
  }
  await Promise.all([a.child.stop(), b.child.stop()]);
  await redis.quit();
  const figure = 'endSessions, 20 sessions (10 with a socket on 2 nodes), ms until all ended';
  const note =
    `${plan.repetitions} calls on node A, registry in Redis; every socket's session:ended and ` +
    `every sess: key gone (EXISTS polled from the bench); endSessions answered sessions/sockets: ` +
    answers.join(', ');
  host.addRow({
    section: host.section,
    figure: `${figure}, median`,
    values: { package: median(totals) },
  });
  host.addRow(
    {
      section: host.section,
      figure: `${figure}, max`,
      values: { package: Math.max(...totals) },
      note,
    },
    { package: totals },
  );
}
