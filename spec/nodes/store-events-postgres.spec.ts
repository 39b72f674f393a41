// Store events on Postgres, end to end: two node processes (spec/support/cluster-node.ts with
// ENGINE=postgres and STORE_EVENTS=on: connect-pg-simple, @socket.io/postgres-adapter, and
// `pgStoreEvents({ pool, createTrigger: true })` on the app's pool) and a throwaway PostgreSQL
// cluster. A session row deleted behind the package's back (an admin's DELETE, connect-pg-simple's
// prune) ends its sockets on the other node at once, with no revalidation round: the nodes keep
// the default revalidation (30 s between rounds, 10 minutes while the feed is up), and the node's
// own store reads show it read nothing.
//
// Each node's pool names itself (application_name), so the spec finds each node's LISTEN backend.
//
// Needs the PostgreSQL server binaries. Under CI=true their absence fails this spec; elsewhere it
// is skipped with a warning. Run it alone with:
//   node --import tsx --test --test-timeout=120000 spec/nodes/store-events-postgres.spec.ts
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { ERR_SESSION_EXPIRED, ERR_SESSION_REVOKED, ERR_SESSION_ROTATED } from '../../lib/index.js';
import {
  ClusterNode,
  closeClients,
  expectAllEnded,
  killAll,
  label,
  login,
  nodeNamed,
  endLatency,
  settle,
  startNodes,
  tabs,
  until,
} from '../support/cluster.js';
import { postgresUnavailable, startPostgres, type PostgresServer } from '../support/postgres.js';
import { expectUntouched, sidOf, within } from '../support/session-ending.js';

// Throws under CI=true when Postgres is missing: the spec then fails instead of skipping.
const skip = postgresUnavailable() ?? false;

describe('store events on Postgres: pgStoreEvents on two nodes', { skip }, () => {
  let postgres: PostgresServer | undefined;
  let db: pg.Pool | undefined;
  const nodes: ClusterNode[] = [];
  const A = (): ClusterNode => nodeNamed(nodes, 'A');
  const B = (): ClusterNode => nodeNamed(nodes, 'B');

  /** The spec's own connection: the admin who deletes rows behind the nodes' backs. */
  const sql = (): pg.Pool => {
    assert.ok(db, 'the spec’s Postgres pool');
    return db;
  };
  /** The pids of the backends a node's feed LISTENs on. */
  const listeners = async (node: string): Promise<number[]> => {
    const { rows } = await sql().query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query = $2`,
      [node, 'LISTEN "session_ended"'],
    );
    return rows.map((row) => row.pid);
  };
  const listening = (node: string): Promise<number[]> =>
    until(
      () => listeners(node),
      (pids) => pids.length === 1,
      15_000,
      `${node}'s feed to LISTEN`,
    );
  /** B's reads of the session since `since`. */
  const readsOnB = async (cookie: string, since: number): Promise<number> => {
    const reads = await B().call('storeReads', { from: 0 });
    return reads.filter((read) => read.sid === sidOf(cookie) && read.at >= since).length;
  };

  before(async () => {
    postgres = await startPostgres();
    db = new pg.Pool({ connectionString: postgres.url, max: 2 });
    db.on('error', () => {});
    // The login route answers 300 ms after Passport's login (an app's own work after it): a
    // rotation's END, sent after the response, comes long after the old row's NOTIFY.
    const common = {
      ENGINE: 'postgres',
      ADAPTER_KEY: 'pg-events',
      STORE_EVENTS: 'on',
      LOGIN_DELAY_MS: '300',
    };
    await Promise.all(
      ['A', 'B'].map((name) =>
        startNodes(
          [name],
          { ...common, DATABASE_URL: `${postgres?.url ?? ''}?application_name=${name}` },
          nodes,
        ),
      ),
    );
    nodes.sort((a, b) => a.name.localeCompare(b.name));
    await Promise.all([listening('A'), listening('B')]);
    // Each node must know the other before a rotation's END: the Postgres adapter learns of nodes
    // from their heartbeats, and sends a broadcast with an ack to none it has not heard yet.
    const alice = await login(A(), 'alice');
    await Promise.all([tabs(A(), alice, ['/chat'], 'alice'), tabs(B(), alice, ['/chat'], 'alice')]);
    for (const node of [A(), B()]) {
      await until(
        () => node.call('fetchSockets', { nsp: '/chat' }).catch(() => []),
        (sockets) => sockets.length === 2,
        30_000,
        `${node.name}'s fetchSockets to count both nodes' sockets`,
      );
    }
    await settle(nodes);
  });
  after(async () => {
    closeClients();
    await Promise.all(nodes.map((node) => node.stop()));
    killAll();
    await db?.end();
    await postgres?.destroy();
  });
  afterEach(() => settle(nodes));

  test('DELETE FROM session: the sockets on B end (ERR_SESSION_REVOKED), B read nothing', async () => {
    const [alice, bob] = await Promise.all([login(A(), 'alice'), login(A(), 'bob')]);
    const aliceTabs = await tabs(B(), alice, ['/', '/chat'], 'alice');
    const bobTabs = await tabs(B(), bob, ['/chat'], 'bob');
    const since = Date.now();
    const endedBefore = (await B().call('sessionsEnded', { from: 0 })).length;
    // No node hears of this but through the trigger: no logout, no broadcast.
    const { rowCount } = await sql().query('DELETE FROM session WHERE sid = $1', [sidOf(alice)]);
    assert.equal(rowCount, 1);
    await within(expectAllEnded(aliceTabs, ERR_SESSION_REVOKED), 'the ends on B', 5000);
    assert.equal(await readsOnB(alice, since), 0, 'B read the deleted session');
    const ended = await B().call('sessionsEnded', { from: endedBefore });
    assert.deepEqual(
      ended.map(({ how }) => how),
      aliceTabs.map(() => 'store-event'),
    );
    for (const tab of bobTabs) expectUntouched(tab.socket, tab.seen, `bob: ${label(tab)}`);
  });

  test('a login again on A (a rotation): ERR_SESSION_ROTATED on B, not REVOKED', async () => {
    const alice = await login(A(), 'alice');
    const aliceTabs = await tabs(B(), alice, ['/chat'], 'alice');
    // connect-pg-simple's destroy of the old row commits (and NOTIFYs) before A has its reply.
    const rotated = await login(A(), 'alice', alice);
    assert.notEqual(sidOf(rotated), sidOf(alice));
    await expectAllEnded(aliceTabs, ERR_SESSION_ROTATED);
  });

  test('a prune of expired rows: ERR_SESSION_EXPIRED on B', async () => {
    const alice = await login(A(), 'alice');
    const aliceTabs = await tabs(B(), alice, ['/chat'], 'alice');
    // What connect-pg-simple's prune does, for a row whose expiry has passed (a TTL lapse).
    await sql().query(`UPDATE session SET expire = now() - interval '1 minute' WHERE sid = $1`, [
      sidOf(alice),
    ]);
    await sql().query('DELETE FROM session WHERE expire < to_timestamp($1)', [Date.now() / 1000]);
    await expectAllEnded(aliceTabs, ERR_SESSION_EXPIRED);
  });

  test('B’s LISTEN connection killed: a DELETE meanwhile is found by one full round, then events again', async () => {
    const [alice, bob, carol] = await Promise.all([
      login(A(), 'alice'),
      login(A(), 'bob'),
      login(A(), 'bob'),
    ]);
    const aliceTabs = await tabs(B(), alice, ['/chat'], 'alice');
    const bobTabs = await tabs(B(), bob, ['/chat'], 'bob');
    const carolTabs = await tabs(B(), carol, ['/chat'], 'bob');
    assert.equal((await listeners('B')).length, 1);
    const since = Date.now();
    const statesBefore = (await B().call('storeEvents', { from: 0 })).length;
    // B's feed must not listen again before the DELETE: the database takes no new connection
    // meanwhile, and B's LISTEN backend and idle pool clients go (the adapter's own LISTEN stays),
    // so the feed's tries fail until it is let in again. The spec keeps one connection of its own.
    const admin = await sql().connect();
    const database = (await admin.query<{ db: string }>('SELECT current_database() AS db')).rows[0]
      ?.db;
    assert.ok(database && postgres);
    // A database cannot be closed to connections from inside it: from template1.
    const outside = new pg.Client({
      connectionString: postgres.url.replace(/\/[^/]*$/, '/template1'),
    });
    await outside.connect();
    const allow = (on: boolean) =>
      outside.query(`ALTER DATABASE "${database}" ALLOW_CONNECTIONS ${on ? 'true' : 'false'}`);
    try {
      await allow(false);
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE application_name = 'B' AND (query = $1 OR query NOT ILIKE 'LISTEN%')`,
        ['LISTEN "session_ended"'],
      );
      await until(
        async () =>
          (
            await admin.query<{ pid: number }>(
              'SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query = $2',
              ['B', 'LISTEN "session_ended"'],
            )
          ).rows,
        (rows) => rows.length === 0,
        5000,
        'B’s LISTEN backend to be gone',
      );
      await admin.query('DELETE FROM session WHERE sid = $1', [sidOf(alice)]);
    } finally {
      await allow(true);
      await outside.end();
      admin.release();
    }
    await expectAllEnded(aliceTabs, ERR_SESSION_REVOKED);
    // Found by the full round once B listened again: one read of each session with sockets.
    assert.equal((await listening('B')).length, 1);
    assert.equal(await readsOnB(alice, since), 1, 'B read alice’s session');
    await until(
      () => readsOnB(bob, since),
      (reads) => reads === 1,
      5000,
      'the full round to read bob’s session',
    );
    for (const tab of bobTabs) expectUntouched(tab.socket, tab.seen, `bob: ${label(tab)}`);
    const states = await until(
      () => B().call('storeEvents', { from: statesBefore }),
      (messages) => messages.at(-1)?.state === 'up',
      5000,
      'B’s feed up after its round',
    );
    assert.deepEqual(
      states.map(({ feed, state }) => [feed, state]),
      [
        ['postgres', 'down'],
        ['postgres', 'resync'],
        ['postgres', 'up'],
      ],
    );
    assert.match(states[0]?.message ?? '', /LISTEN connection/);

    // Events again: carol's session (bob's second) deleted, and ended without a read.
    const deleted = Date.now();
    await sql().query('DELETE FROM session WHERE sid = $1', [sidOf(carol)]);
    await expectAllEnded(carolTabs, ERR_SESSION_REVOKED);
    assert.equal(await readsOnB(carol, deleted), 0, 'B read the deleted session');
    for (const tab of bobTabs) expectUntouched(tab.socket, tab.seen, `bob: ${label(tab)}`);
  });

  test('TRUNCATE session: every session’s sockets on B end, found by one full round', async () => {
    const [alice, bob] = await Promise.all([login(A(), 'alice'), login(A(), 'bob')]);
    const all = [
      ...(await tabs(B(), alice, ['/', '/chat'], 'alice')),
      ...(await tabs(B(), bob, ['/chat'], 'bob')),
    ];
    const since = Date.now();
    // No row trigger fires: the statement trigger says the table was emptied.
    await sql().query('TRUNCATE session');
    await expectAllEnded(all, ERR_SESSION_REVOKED);
    assert.deepEqual(
      [await readsOnB(alice, since), await readsOnB(bob, since)],
      [1, 1],
      'B read each session once',
    );
  });

  test('DELETE → session:ended on B: latency over 20 deletes (measured, not asserted)', async (t) => {
    const delete_ = (cookie: string) =>
      sql().query('DELETE FROM session WHERE sid = $1', [sidOf(cookie)]);
    const opts = { from: A(), to: B(), code: ERR_SESSION_REVOKED } as const;
    t.diagnostic(await endLatency("DELETE FROM session (spec's client)", opts, delete_));
  });
});
