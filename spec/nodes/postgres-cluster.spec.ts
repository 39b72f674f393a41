// Several nodes on Postgres: a throwaway PostgreSQL cluster (spec/support/postgres.ts), and each
// node a separate Node process (spec/support/cluster-node.ts with ENGINE=postgres) with a
// connect-pg-simple session store and @socket.io/postgres-adapter on one pg.Pool, guarded as the
// README shows (`pool.on('connect', (c) => c.on('error', …))`). The same machinery and the same
// way of driving it as spec/nodes/cluster.spec.ts (Redis): HTTP logins and logouts with cookies,
// websocket-only socket.io-client sockets.
//
// Nodes: A and B with revalidation off (only a broadcast can end a socket there), R revalidating
// every REVALIDATE_MS, and U without the README's error guard (the control of the restart test).
//
// Needs the PostgreSQL server binaries. Under CI=true their absence fails this spec; elsewhere it
// is skipped with a warning. Run it alone with:
//   node --import tsx --test --test-timeout=120000 spec/nodes/postgres-cluster.spec.ts
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  ERR_FORBIDDEN,
  ERR_SESSION_REVOKED,
  ERR_SESSION_UNAVAILABLE,
  ERR_UNAUTHORIZED,
} from '../../lib/index.js';
import { waitFor } from '../support/client.js';
import {
  ClusterNode,
  closeClients,
  expectAllEnded,
  killAll,
  label,
  login,
  logout,
  nodeNamed,
  open,
  endLatency,
  refusalOf,
  settle,
  startNodes,
  tabs,
  until,
} from '../support/cluster.js';
import type { NodeWho } from '../support/cluster-node.js';
import { postgresUnavailable, startPostgres, type PostgresServer } from '../support/postgres.js';
import { expectUntouched, sidOf, within } from '../support/session-ending.js';
import { whoami } from '../support/whoami.js';

// Throws under CI=true when Postgres is missing: the spec then fails instead of skipping.
const unavailable = postgresUnavailable();
if (unavailable !== undefined) {
  console.warn(
    `\n*** SKIPPED spec/nodes/postgres-cluster.spec.ts (the Postgres multi-node spec): ${unavailable}.\n` +
      '*** Install postgresql, then run it with:\n' +
      '***   node --import tsx --test --test-timeout=120000 spec/nodes/postgres-cluster.spec.ts ***\n',
  );
}
const skip = unavailable ?? false;

const REVALIDATE_MS = 500;

describe('cluster on Postgres: connect-pg-simple, @socket.io/postgres-adapter', { skip }, () => {
  let postgres: PostgresServer | undefined;
  let db: pg.Pool | undefined;
  const nodes: ClusterNode[] = [];
  const A = (): ClusterNode => nodeNamed(nodes, 'A');
  const B = (): ClusterNode => nodeNamed(nodes, 'B');
  const R = (): ClusterNode => nodeNamed(nodes, 'R');
  const U = (): ClusterNode => nodeNamed(nodes, 'U');

  /** The spec's own connection to the table every node reads. */
  const sql = (): pg.Pool => {
    assert.ok(db, 'the spec’s Postgres pool');
    return db;
  };
  const stored = async (cookie: string): Promise<number> => {
    const { rowCount } = await sql().query('SELECT 1 FROM session WHERE sid = $1', [sidOf(cookie)]);
    return rowCount ?? 0;
  };

  /**
   * Waits until A's `fetchSockets` counts `count` sockets of /chat: A's request reached every
   * node through Postgres and their answers came back, so every node LISTENs again.
   */
  const clusterAnswers = (count: number): Promise<unknown> =>
    until(
      () =>
        A()
          .call('fetchSockets', { nsp: '/chat' })
          .catch(() => []),
      (sockets) => sockets.length === count,
      30_000,
      `A's fetchSockets to count ${count} sockets of /chat across the nodes`,
    );

  before(async () => {
    postgres = await startPostgres();
    db = new pg.Pool({ connectionString: postgres.url, max: 2 });
    db.on('error', () => {}); // the spec stops the server: its idle clients fail then
    const common = { ENGINE: 'postgres', DATABASE_URL: postgres.url, ADAPTER_KEY: 'pg-cluster' };
    await Promise.all([
      startNodes(['A', 'B'], { ...common, REVALIDATE_MS: 'off' }, nodes),
      startNodes(['R'], { ...common, REVALIDATE_MS: String(REVALIDATE_MS) }, nodes),
      startNodes(['U'], { ...common, REVALIDATE_MS: 'off', PG_ERROR_GUARD: 'off' }, nodes),
    ]);
    nodes.sort((a, b) => a.name.localeCompare(b.name));
    // Every node hears the others before the first broadcast.
    const alice = await login(A(), 'alice');
    const onEach = await Promise.all(nodes.map((node) => tabs(node, alice, ['/chat'], 'alice')));
    await clusterAnswers(onEach.length);
    await logout(A(), alice);
    await expectAllEnded(onEach.flat(), ERR_SESSION_REVOKED);
  });
  // Registered before anything can fail, so that a failed start still cleans up.
  after(async () => {
    closeClients();
    await Promise.all(nodes.map((node) => node.stop()));
    killAll();
    await db?.end();
    await postgres?.destroy();
  });
  afterEach(() => settle(nodes));

  test('a logout through A ends the session’s sockets on B: session:ended, then disconnect', async () => {
    const [alice, bob] = await Promise.all([login(A(), 'alice'), login(B(), 'bob')]);
    const aliceTabs = [
      ...(await tabs(A(), alice, ['/chat'], 'alice')),
      ...(await tabs(B(), alice, ['/', '/chat'], 'alice')),
    ];
    const bobTabs = await tabs(B(), bob, ['/', '/chat'], 'bob');

    await logout(A(), alice);
    await expectAllEnded(aliceTabs, ERR_SESSION_REVOKED);
    for (const tab of bobTabs) expectUntouched(tab.socket, tab.seen, `bob: ${label(tab)}`);
    assert.equal(await stored(alice), 0, 'the logged-out session is gone from the table');
    const again = open(B(), '/chat', alice);
    await waitFor(() => again.errors.length > 0, 5000, 'a connect_error on B');
    assert.deepEqual(refusalOf(again.errors[0]), { code: ERR_UNAUTHORIZED, status: 401 });
  });

  test('disconnectUser on A ends the user’s sockets on B, in every session', async () => {
    const [aliceOnA, aliceOnB, bob] = await Promise.all([
      login(A(), 'alice'),
      login(B(), 'alice'),
      login(B(), 'bob'),
    ]);
    const aliceTabs = [
      ...(await tabs(B(), aliceOnA, ['/', '/chat'], 'alice')),
      ...(await tabs(B(), aliceOnB, ['/chat'], 'alice')),
    ];
    const bobTabs = await tabs(B(), bob, ['/chat'], 'bob');
    // Resolves once every node acknowledged.
    assert.equal(await A().call('disconnectUser', { key: '1' }), null);
    await expectAllEnded(aliceTabs, ERR_SESSION_REVOKED);
    for (const tab of bobTabs) expectUntouched(tab.socket, tab.seen, `bob: ${label(tab)}`);
  });

  test('refreshUser on A: a demoted admin’s /admin socket on B ends (ERR_FORBIDDEN); /chat stays', async () => {
    const alice = await login(A(), 'alice');
    const admin = await tabs(B(), alice, ['/admin'], 'alice');
    const [chat] = await tabs(B(), alice, ['/chat'], 'alice');
    assert.ok(chat);
    for (const node of nodes) await node.call('setRole', { username: 'alice', role: 'member' });
    try {
      assert.equal(await A().call('refreshUser', { key: '1' }), null);
      await expectAllEnded(admin, ERR_FORBIDDEN);
      // The refresh was acknowledged by B before the call resolved: nothing more is on its way.
      expectUntouched(chat.socket, chat.seen, label(chat));
      assert.equal((await whoami<NodeWho>(chat.socket, label(chat))).user, 'alice');
    } finally {
      for (const node of nodes) await node.call('setRole', { username: 'alice', role: 'admin' });
    }
  });

  test(`a session deleted straight from the table (DELETE FROM session) ends on R at its next revalidation (${REVALIDATE_MS} ms)`, async () => {
    const [alice, bob] = await Promise.all([login(A(), 'alice'), login(A(), 'bob')]);
    const aliceTabs = await tabs(R(), alice, ['/', '/chat'], 'alice');
    const bobTabs = await tabs(R(), bob, ['/chat'], 'bob');
    const since = Date.now();
    // No node hears of this: no logout, no broadcast.
    const { rowCount } = await sql().query('DELETE FROM session WHERE sid = $1', [sidOf(alice)]);
    assert.equal(rowCount, 1);
    await expectAllEnded(aliceTabs, ERR_SESSION_REVOKED);
    // Ended by a read of the session after the delete: R's revalidation, one read per session.
    const reads = await R().call('storeReads', { from: 0 });
    const after = reads.filter((read) => read.sid === sidOf(alice) && read.at >= since).length;
    assert.ok(after >= 1 && after <= 2, `R read the session ${after} times since the delete`);
    for (const tab of bobTabs) expectUntouched(tab.socket, tab.seen, `bob: ${label(tab)}`);
  });

  test('logout A → session:ended on B: latency over 20 logouts (measured, not asserted)', async (t) => {
    const opts = { from: A(), to: B(), code: ERR_SESSION_REVOKED } as const;
    t.diagnostic(await endLatency('logout POST on A', opts, (cookie) => logout(A(), cookie)));
  });

  // The next two stop Postgres: U, without the guard, dies at the first stop.
  test('a Postgres restart: A, B and R keep running and their sockets stay; U (no guard) crashes; then logout A → B works again', async () => {
    assert.ok(postgres);
    const alice = await login(A(), 'alice');
    const aliceTabs = [
      ...(await tabs(A(), alice, ['/chat'], 'alice')),
      ...(await tabs(B(), alice, ['/', '/chat'], 'alice')),
      ...(await tabs(R(), alice, ['/chat'], 'alice')),
    ];
    const unguarded = U();
    await postgres.restart();

    // The adapter's LISTEN client gets 57P01 (terminating connection due to administrator
    // command) with no 'error' listener on it: an unhandled 'error' event.
    const { code } = await within(unguarded.exit, 'U to exit', 15_000);
    assert.notEqual(code, 0, 'U’s exit code');
    for (const node of [A(), B(), R()]) assert.ok(node.running, `${node.name} is running`);
    // R revalidated through the restart: a failed read ends nothing. Each socket answers.
    for (const tab of aliceTabs) {
      assert.equal((await whoami<NodeWho>(tab.socket, label(tab))).user, 'alice');
      expectUntouched(tab.socket, tab.seen, label(tab));
    }

    // Every node LISTENs again (the adapter reconnects by itself within 1–3 s), then a logout.
    await clusterAnswers(aliceTabs.filter((tab) => tab.nsp === '/chat').length);
    await logout(A(), alice);
    await expectAllEnded(aliceTabs, ERR_SESSION_REVOKED);
  });

  test('a logout while Postgres is down answers 500; the session and its sockets survive, and a logout once it is back ends them', async () => {
    assert.ok(postgres);
    const alice = await login(A(), 'alice');
    const aliceTabs = [
      ...(await tabs(A(), alice, ['/chat'], 'alice')),
      ...(await tabs(B(), alice, ['/', '/chat'], 'alice')),
    ];
    await postgres.stop();
    try {
      // express-session cannot read the session: its error is the app's 500, before the logout.
      await logout(A(), alice, 500);
      // A new socket is refused while the store is down; connected ones keep working.
      const fresh = open(B(), '/chat', alice);
      await waitFor(() => fresh.errors.length > 0, 10_000, 'a connect_error on B');
      assert.deepEqual(refusalOf(fresh.errors[0]), { code: ERR_SESSION_UNAVAILABLE, status: 503 });
      // Nothing was broadcast (the logout never ran): these round trips come after anything A
      // could have sent, and every socket is still in, as alice.
      for (const tab of aliceTabs) {
        assert.equal((await whoami<NodeWho>(tab.socket, label(tab))).user, 'alice');
        expectUntouched(tab.socket, tab.seen, label(tab));
      }
    } finally {
      await postgres.start();
    }
    assert.equal(await stored(alice), 1, 'the session is still in the table');
    await clusterAnswers(aliceTabs.filter((tab) => tab.nsp === '/chat').length);
    await logout(A(), alice);
    await expectAllEnded(aliceTabs, ERR_SESSION_REVOKED);
  });
});
