// pgStoreEvents, the connect-pg-simple feed, alone against a real Postgres (spec/support/
// postgres.ts): the trigger's SQL, the LISTEN client it keeps checked out of the app's pool, and
// what it tells a sink. The sink here records its calls (the package's own sink is tested end to
// end in spec/nodes/store-events-postgres.spec.ts); rows are deleted as connect-pg-simple, an
// admin's psql or its prune would.
//
// Needs the PostgreSQL server binaries. Under CI=true their absence fails this spec; elsewhere it
// is skipped with a warning. Run it alone with:
//   node --import tsx --test --test-timeout=120000 spec/feeds/postgres.spec.ts
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import connectPgSimple from 'connect-pg-simple';
import session from 'express-session';
import pg from 'pg';
import { pgStoreEvents, pgStoreEventsSql, type PgStoreEventsOptions } from '../../lib/index.js';
import { sessionDigest } from '../../lib/core/state.js';
import type { StoreEventSink } from '../../lib/live/store-events.js';
import { within } from '../support/bounded.js';
import { postgresUnavailable, startPostgres, type PostgresServer } from '../support/postgres.js';

// Throws under CI=true when Postgres is missing: the spec then fails instead of skipping.
const skip = postgresUnavailable() ?? false;

type Call =
  | { type: 'ended'; session: { id: string } | { digest: string }; reason: string }
  | { type: 'up' }
  | { type: 'down'; reason: string }
  | { type: 'unavailable'; message: string };

/** A sink that records what the feed tells it, and waits for it. */
class RecordingSink implements StoreEventSink {
  readonly calls: Call[] = [];
  private readonly waiters = new Set<() => void>();

  ended(session: { id: string } | { digest: string }, reason: string): void {
    this.record({ type: 'ended', session, reason });
  }
  up(): void {
    this.record({ type: 'up' });
  }
  down(reason: string): void {
    this.record({ type: 'down', reason });
  }
  unavailable(message: string): void {
    this.record({ type: 'unavailable', message });
  }

  /** The calls from the `from`-th on, once there are `count` of them. */
  async next(count: number, from = this.calls.length, what = `${count} calls`): Promise<Call[]> {
    const enough = (): boolean => this.calls.length >= from + count;
    await within(
      new Promise<void>((resolve) => {
        if (enough()) {
          resolve();
          return;
        }
        const check = (): void => {
          if (!enough()) return;
          this.waiters.delete(check);
          resolve();
        };
        this.waiters.add(check);
      }),
      `${what} (so far: ${JSON.stringify(this.calls.slice(from))})`,
      15_000,
    );
    return this.calls.slice(from, from + count);
  }

  private record(call: Call): void {
    this.calls.push(call);
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** A session ID as express-session makes them (uid-safe, 24 bytes). */
const newSid = (): string => randomBytes(24).toString('base64url');

describe('pgStoreEvents: the connect-pg-simple feed on a real Postgres', { skip }, () => {
  let postgres: PostgresServer | undefined;
  /** The app's pool, which the feed checks a client out of. */
  let pool: pg.Pool;
  /** The spec's own connection: the admin who deletes rows and kills backends. */
  let admin: pg.Pool;
  const stops: (() => Promise<void>)[] = [];

  before(async () => {
    postgres = await startPostgres();
    pool = new pg.Pool({ connectionString: postgres.url });
    admin = new pg.Pool({ connectionString: postgres.url });
    // As the README shows: idle clients that fail are reported here, not thrown.
    pool.on('error', () => undefined);
    admin.on('error', () => undefined);
  });
  // Each feed keeps one of the pool's clients (10 at most) for as long as it runs.
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });
  after(async () => {
    await pool.end();
    await admin.end();
    await postgres?.destroy();
  });

  /** connect-pg-simple's table.sql under another name (and schema), empty. */
  async function table(name: string, schema?: string): Promise<string> {
    const qualified = schema === undefined ? `"${name}"` : `"${schema}"."${name}"`;
    if (schema !== undefined) await admin.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await admin.query(
      `CREATE TABLE ${qualified} ("sid" varchar NOT NULL COLLATE "default" PRIMARY KEY,
         "sess" json NOT NULL, "expire" timestamp(6) NOT NULL)`,
    );
    return qualified;
  }

  /** A session row as connect-pg-simple writes it, expiring in `seconds` (past when negative). */
  async function insert(qualified: string, sid: string, seconds = 600, db = admin): Promise<void> {
    await db.query(
      `INSERT INTO ${qualified} (sid, sess, expire) VALUES ($1, $2, to_timestamp($3))`,
      [sid, { cookie: {} }, Math.ceil(Date.now() / 1000 + seconds)],
    );
  }

  /** Starts the feed on a recording sink, stopped after the spec. */
  async function started(
    options: Partial<PgStoreEventsOptions>,
    from: PgStoreEventsOptions['pool'] = pool,
  ): Promise<{ sink: RecordingSink; first: Call; stop: () => Promise<void> }> {
    const sink = new RecordingSink();
    const stop = pgStoreEvents({ pool: from, ...options }).start(sink);
    stops.push(stop);
    const [first] = await sink.next(1, 0, 'up or unavailable at start');
    assert.ok(first);
    return { sink, first, stop };
  }

  /** Deletes rows of `sids` one by one: the feed tells each one's digest, and only that. */
  async function expectDigests(db: pg.Pool, sink: RecordingSink, qualified: string): Promise<void> {
    const sids = [newSid(), 'abc', 'été', '会话-ß-😀', `quote'"\\`, 'x'.repeat(300)];
    // The spec's own LISTEN sees the raw payloads.
    const raw = await db.connect();
    const payloads: string[] = [];
    raw.on('notification', (message) => payloads.push(message.payload ?? ''));
    await raw.query('LISTEN session_ended');
    try {
      for (const sid of sids) await insert(qualified, sid, 600, db);
      const from = sink.calls.length;
      for (const sid of sids) await db.query(`DELETE FROM ${qualified} WHERE sid = $1`, [sid]);
      const calls = await sink.next(sids.length, from, 'one end per deleted row');
      assert.deepEqual(
        calls,
        sids.map((sid) => ({
          type: 'ended',
          session: { digest: sessionDigest(sid) },
          reason: 'deleted',
        })),
      );
      // Our DELETEs were committed before the feed heard the last: so were the spec's NOTIFYs.
      await within(
        until(() => payloads.length === sids.length, raw),
        'the raw payloads',
      );
      assert.deepEqual(
        payloads.map((payload) => JSON.parse(payload) as unknown),
        sids.map((sid) => ({ digest: sessionDigest(sid), expired: false })),
      );
    } finally {
      raw.release();
    }
  }

  test('the trigger names a session by sessionDigest, computed in SQL, never by its ID', async () => {
    const qualified = await table('digests');
    await admin.query(pgStoreEventsSql({ table: 'digests' }));
    const { sink, first } = await started({ table: 'digests' });
    assert.deepEqual(first, { type: 'up' });
    // initdb --no-locale: bytes pass through convert_to unchanged, as pg wrote them (UTF-8).
    const { rows } = await admin.query('SHOW server_encoding');
    assert.deepEqual(rows, [{ server_encoding: 'SQL_ASCII' }]);
    await expectDigests(admin, sink, qualified);
  });

  test('the same digests in a UTF8 database (the spec cluster is SQL_ASCII)', async () => {
    assert.ok(postgres);
    await admin.query(
      "CREATE DATABASE utf8 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
    );
    const url = postgres.url.replace(/\/postgres$/, '/utf8');
    const db = new pg.Pool({ connectionString: url });
    db.on('error', () => undefined);
    try {
      const { rows } = await db.query('SHOW server_encoding');
      assert.deepEqual(rows, [{ server_encoding: 'UTF8' }]);
      await db.query(`CREATE TABLE "session" ("sid" varchar NOT NULL PRIMARY KEY,
        "sess" json NOT NULL, "expire" timestamp(6) NOT NULL)`);
      const { sink, first, stop } = await started({ createTrigger: true }, db);
      assert.deepEqual(first, { type: 'up' });
      await expectDigests(db, sink, '"session"');
      await stop();
    } finally {
      await db.end();
    }
  });

  test('connect-pg-simple: a destroy is "deleted", a row its prune deletes is "expired"', async () => {
    await table('pruned');
    await admin.query(pgStoreEventsSql({ table: 'pruned' }));
    const { sink } = await started({ table: 'pruned' });
    const PgStore = connectPgSimple(session);
    const store = new PgStore({ pool: admin, tableName: 'pruned', pruneSessionInterval: false });
    const [live, expired, destroyed, marker] = [newSid(), newSid(), newSid(), newSid()];
    const cookie = new session.Cookie();
    cookie.maxAge = 600_000;
    const set = promisify(store.set.bind(store));
    for (const sid of [live, destroyed, marker]) await set(sid, { cookie });
    await insert('"pruned"', expired, -60);

    let from = sink.calls.length;
    await promisify(store.destroy.bind(store))(destroyed);
    assert.deepEqual(await sink.next(1, from, 'the destroy'), [
      { type: 'ended', session: { digest: sessionDigest(destroyed) }, reason: 'deleted' },
    ]);

    from = sink.calls.length;
    await new Promise<void>((resolve) => {
      store.pruneSessions(() => {
        resolve();
      });
    });
    // The live row is not pruned, so not heard: the marker's DELETE, after the prune, is heard
    // next, with nothing but the expired row before it.
    await admin.query('DELETE FROM pruned WHERE sid = $1', [marker]);
    assert.deepEqual(await sink.next(2, from, 'the prune, then the marker'), [
      { type: 'ended', session: { digest: sessionDigest(expired) }, reason: 'expired' },
      { type: 'ended', session: { digest: sessionDigest(marker) }, reason: 'deleted' },
    ]);
    const { rows } = await admin.query('SELECT sid FROM pruned');
    assert.deepEqual(rows, [{ sid: live }]);
  });

  test('no trigger: unavailable, with the SQL to run; createTrigger: true creates it', async () => {
    const qualified = await table('bare');
    const { sink, first } = await started({ table: 'bare' });
    assert.equal(first.type, 'unavailable');
    const { message } = first as { message: string };
    assert.match(
      message,
      /^pgStoreEvents: the trigger socket_io_session_auth_ended is not on "bare"/,
    );
    assert.ok(message.includes('createTrigger: true'), message);
    assert.ok(message.includes(pgStoreEventsSql({ table: 'bare' })), message);
    // What an unavailable feed tells: nothing more, even when a row goes.
    await insert(qualified, newSid());
    await admin.query('DELETE FROM bare');

    const created = await started({ table: 'bare', createTrigger: true });
    assert.deepEqual(created.first, { type: 'up' });
    const sid = newSid();
    await insert(qualified, sid);
    await admin.query('DELETE FROM bare WHERE sid = $1', [sid]);
    assert.deepEqual(await created.sink.next(1, 1, 'the DELETE'), [
      { type: 'ended', session: { digest: sessionDigest(sid) }, reason: 'deleted' },
    ]);
    // Heard by the feed that was made unavailable? Never: it does not listen.
    assert.deepEqual(sink.calls, [first]);

    const other = await started({ table: 'bare', channel: 'other_channel' });
    assert.equal(other.first.type, 'unavailable');
    assert.match(
      (other.first as { message: string }).message,
      /^pgStoreEvents: the trigger socket_io_session_auth_ended on "bare" notifies another channel than "other_channel"/,
    );
    const missing = await started({ table: 'no_such_table' });
    assert.match(
      (missing.first as { message: string }).message,
      /^pgStoreEvents: there is no table "no_such_table"/,
    );
    await admin.query('ALTER TABLE bare DISABLE TRIGGER socket_io_session_auth_ended');
    const disabled = await started({ table: 'bare' });
    assert.match(
      (disabled.first as { message: string }).message,
      /^pgStoreEvents: the trigger socket_io_session_auth_ended on "bare" is disabled/,
    );
    await admin.query('ALTER TABLE bare ENABLE TRIGGER socket_io_session_auth_ended');
    await admin.query('DROP TRIGGER socket_io_session_auth_truncated ON bare');
    const noTruncate = await started({ table: 'bare' });
    assert.match(
      (noTruncate.first as { message: string }).message,
      /^pgStoreEvents: the trigger socket_io_session_auth_truncated is not on "bare"/,
    );
  });

  test('an app role that does not own the table: createTrigger fails (unavailable), yet once the owner ran the SQL it is heard', async () => {
    assert.ok(postgres);
    const qualified = await table('owned');
    await admin.query('CREATE ROLE app LOGIN');
    await admin.query('GRANT SELECT, INSERT, UPDATE, DELETE ON owned TO app');
    const asApp = new pg.Pool({ connectionString: postgres.url.replace('postgres@', 'app@') });
    asApp.on('error', () => undefined);
    try {
      const refused = await started({ table: 'owned', createTrigger: true }, asApp);
      assert.equal(refused.first.type, 'unavailable');
      // Postgres 15 on: the public schema refuses CREATE to other roles; before it, the trigger.
      assert.match(
        (refused.first as { message: string }).message,
        /^pgStoreEvents: the trigger socket_io_session_auth_ended is not on "owned", and createTrigger failed \((permission denied|must be owner)[^)]*\)/,
      );
      await refused.stop();
      // The owner's migration; the app's role needs nothing more to LISTEN and be heard.
      await admin.query(pgStoreEventsSql({ table: 'owned' }));
      const { sink, first } = await started({ table: 'owned' }, asApp);
      assert.deepEqual(first, { type: 'up' });
      const sid = newSid();
      await insert(qualified, sid);
      await asApp.query('DELETE FROM owned WHERE sid = $1', [sid]);
      assert.deepEqual(await sink.next(1, 1, 'the app role’s DELETE'), [
        { type: 'ended', session: { digest: sessionDigest(sid) }, reason: 'deleted' },
      ]);
    } finally {
      for (const stop of stops.splice(0)) await stop();
      await asApp.end();
    }
  });

  test('nodes starting at once with createTrigger: true each create it, one after another', async () => {
    await table('raced');
    const feeds = await Promise.all(
      Array.from({ length: 4 }, () => started({ table: 'raced', createTrigger: true })),
    );
    assert.deepEqual(
      feeds.map(({ first }) => first),
      feeds.map(() => ({ type: 'up' })),
    );
  });

  test('TRUNCATE: down, then up at once (the package then reads every session again)', async () => {
    const qualified = await table('truncated');
    const { sink } = await started({ table: 'truncated', createTrigger: true });
    await insert(qualified, newSid());
    await admin.query('TRUNCATE truncated');
    assert.deepEqual(await sink.next(2, 1, 'down, up'), [
      { type: 'down', reason: 'the session table was truncated' },
      { type: 'up' },
    ]);
    // Still listening: a DELETE after it is heard as before.
    const sid = newSid();
    await insert(qualified, sid);
    await admin.query(`DELETE FROM ${qualified}`);
    assert.deepEqual(await sink.next(1, 3, 'the DELETE'), [
      { type: 'ended', session: { digest: sessionDigest(sid) }, reason: 'deleted' },
    ]);
  });

  test('a schema and a mixed-case table, as connect-pg-simple quotes them', async () => {
    const qualified = await table('Sessions', 'Auth');
    const { sink, first } = await started({
      schema: 'Auth',
      table: 'Sessions',
      channel: 'Auth ended',
      createTrigger: true,
    });
    assert.deepEqual(first, { type: 'up' });
    const sid = newSid();
    await insert(qualified, sid);
    await admin.query(`DELETE FROM ${qualified}`);
    assert.deepEqual(await sink.next(1, 1, 'the DELETE'), [
      { type: 'ended', session: { digest: sessionDigest(sid) }, reason: 'deleted' },
    ]);
  });

  test('the LISTEN connection killed: down, then up again, and a DELETE after it is heard', async () => {
    const qualified = await table('killed');
    const channel = 'killed_ended';
    const { sink } = await started({ table: 'killed', channel, createTrigger: true });
    const listener = async (): Promise<number[]> => {
      const { rows } = await admin.query<{ pid: number }>(
        'SELECT pid FROM pg_stat_activity WHERE query = $1',
        [`LISTEN "${channel}"`],
      );
      return rows.map((row) => row.pid);
    };
    const [pid] = await listener();
    assert.ok(pid !== undefined, 'the feed’s LISTEN backend');
    const checkedOut = (): number => pool.totalCount - pool.idleCount;
    assert.equal(checkedOut(), 1, 'the LISTEN client, checked out');
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    const [down, up] = await sink.next(2, 1, 'down, then up');
    assert.equal(down?.type, 'down');
    assert.match((down as { reason: string }).reason, /LISTEN connection/);
    assert.deepEqual(up, { type: 'up' });
    const after = await listener();
    assert.equal(after.length, 1);
    assert.notEqual(after[0], pid);
    // Nothing leaked: one client checked out, the new one.
    assert.equal(checkedOut(), 1);

    const sid = newSid();
    await insert(qualified, sid);
    await admin.query(`DELETE FROM ${qualified}`);
    assert.deepEqual(await sink.next(1, 3, 'the DELETE after the reconnect'), [
      { type: 'ended', session: { digest: sessionDigest(sid) }, reason: 'deleted' },
    ]);
  });

  test('one LISTEN for every sink; the last stop gives its client back to the pool', async () => {
    assert.ok(postgres);
    const qualified = await table('shared');
    await admin.query(pgStoreEventsSql({ table: 'shared' }));
    const own = new pg.Pool({ connectionString: postgres.url });
    own.on('error', () => undefined);
    try {
      const feed = pgStoreEvents({ pool: own, table: 'shared' });
      const [a, b] = [new RecordingSink(), new RecordingSink()];
      const stopA = feed.start(a);
      await a.next(1, 0, 'up');
      const stopB = feed.start(b);
      assert.deepEqual(await b.next(1, 0, 'up for the second sink'), [{ type: 'up' }]);
      // One client, checked out for LISTEN (the trigger check's client, given back, then taken).
      assert.deepEqual([own.totalCount, own.idleCount], [1, 0]);

      const sids = [newSid(), newSid()];
      for (const sid of sids) await insert(qualified, sid);
      await admin.query('DELETE FROM shared WHERE sid = $1', [sids[0]]);
      const ended = {
        type: 'ended',
        session: { digest: sessionDigest(sids[0] as string) },
        reason: 'deleted',
      };
      assert.deepEqual(await a.next(1, 1, 'a'), [ended]);
      assert.deepEqual(await b.next(1, 1, 'b'), [ended]);

      await stopA();
      await admin.query('DELETE FROM shared WHERE sid = $1', [sids[1]]);
      await b.next(1, 2, 'b after a stopped');
      // Both sinks are told in one loop: had `a` been told, it would be by now.
      assert.equal(a.calls.length, 2);
      assert.deepEqual([own.totalCount, own.idleCount], [1, 0]);

      await stopB();
      assert.deepEqual([own.totalCount, own.idleCount], [1, 1]);
      const { rows } = await own.query('SELECT pg_listening_channels() AS channel');
      assert.deepEqual(rows, []);

      // Started again after the last stop: it listens again.
      const c = new RecordingSink();
      const stopC = feed.start(c);
      assert.deepEqual(await c.next(1, 0, 'up again'), [{ type: 'up' }]);
      await stopC();
      assert.deepEqual([own.totalCount, own.idleCount], [1, 1]);
    } finally {
      await own.end();
    }
  });

  // Last: it stops the server under every other test's pool.
  test('Postgres stopped: down, tries again after 1 s, 2 s, … while it is down, then up once it is back', async () => {
    assert.ok(postgres);
    const qualified = await table('restarted');
    await admin.query(pgStoreEventsSql({ table: 'restarted' }));
    // The app's pool, with each of the feed's connects (when, and whether it failed) noted.
    const connects: { at: number; failed?: boolean }[] = [];
    let noted: (() => void) | undefined;
    const watched: PgStoreEventsOptions['pool'] = {
      query: (text, values) => pool.query(text, values),
      async connect() {
        const attempt: { at: number; failed?: boolean } = { at: Date.now() };
        connects.push(attempt);
        try {
          return await pool.connect();
        } catch (error) {
          attempt.failed = true;
          throw error;
        } finally {
          noted?.();
        }
      },
    };
    const { sink } = await started({ table: 'restarted' }, watched);
    await postgres.stop();
    const [down] = await sink.next(1, 1, 'down');
    assert.equal(down?.type, 'down');
    // Two tries fail while it is stopped, 1 s then 2 s apart (timers never fire early).
    await within(
      new Promise<void>((resolve) => {
        noted = () => {
          if (connects.filter((c) => c.failed).length >= 2) resolve();
        };
      }),
      'two failed tries',
      10_000,
    );
    const [, first, second] = connects;
    assert.ok(first && second, JSON.stringify(connects));
    assert.ok(second.at - first.at >= 1900, `${second.at - first.at} ms between the tries`);
    assert.deepEqual(sink.calls.slice(1), [down], 'nothing told while it tries');
    await postgres.start();
    assert.deepEqual(await sink.next(1, 2, 'up once Postgres is back'), [{ type: 'up' }]);
    const sid = newSid();
    await insert(qualified, sid);
    await admin.query(`DELETE FROM ${qualified}`);
    assert.deepEqual(await sink.next(1, 3, 'the DELETE after the restart'), [
      { type: 'ended', session: { digest: sessionDigest(sid) }, reason: 'deleted' },
    ]);
  });

  test('setup mistakes throw a TypeError naming the helper, at once', () => {
    const bad: [unknown, RegExp][] = [
      [undefined, /^pgStoreEvents: options must be an object with a pool$/],
      [{}, /^pgStoreEvents: options.pool must be a pg Pool/],
      [{ pool: { query() {} } }, /^pgStoreEvents: options.pool must be a pg Pool/],
      [{ pool, table: '' }, /^pgStoreEvents: options.table must be a non-empty string/],
      [{ pool, schema: 5 }, /^pgStoreEvents: options.schema must be a non-empty string/],
      [{ pool, channel: 'c'.repeat(64) }, /^pgStoreEvents: options.channel must be .* 63 bytes$/],
      [{ pool, createTrigger: 'yes' }, /^pgStoreEvents: options.createTrigger must be a boolean$/],
    ];
    for (const [options, message] of bad) {
      assert.throws(() => pgStoreEvents(options as PgStoreEventsOptions), {
        name: 'TypeError',
        message,
      });
    }
    assert.throws(() => pgStoreEventsSql({ table: 'é'.repeat(32) }), {
      name: 'TypeError',
      message: /^pgStoreEventsSql: options.table must be a non-empty string of at most 63 bytes$/,
    });
    assert.throws(() => pgStoreEventsSql(null as never), {
      name: 'TypeError',
      message: 'pgStoreEventsSql: options must be an object',
    });
  });
});

/** Resolves once `done()` holds, checked at once and at each notification `client` receives. */
function until(done: () => boolean, client: pg.PoolClient): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (!done()) return;
      client.removeListener('notification', check);
      resolve();
    };
    client.on('notification', check);
    check();
  });
}
