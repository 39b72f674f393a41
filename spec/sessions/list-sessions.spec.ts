// listSessions / endSessions on one node, through the test kit: a user's devices with and without
// a socket, "sign out other devices", "sign out everywhere", logouts leaving the list, and never a
// session ID in what the app gets. With sessionRegistry's memory registry (express-session's
// MemoryStore) and with its scan of a store that can enumerate (memorystore).
import assert from 'node:assert/strict';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import session from 'express-session';
import createMemorystore from 'memorystore';
import type { Agent, TestKit, TestSocket } from 'socket.io-session-auth/testing';
import { expectEnded } from 'socket.io-session-auth/testing';
import {
  endSessions,
  listSessions,
  sessionHandle,
  sessionNamespace,
  sessionRegistry,
  type SessionInfo,
  type SessionRegistryOptions,
} from '../../lib/index.js';
import { MemoryBackend } from '../../lib/sessions/registry-backends.js';
import { registryOf } from '../../lib/sessions/session-registry.js';
import { logIn, startWithKit } from '../support/kit.js';
import type { TestServer } from '../support/server.js';

const MemoryStore = createMemorystore(session);
const ALICE = '1';

interface Mode {
  name: string;
  /** sessionRegistry's options; undefined: no sessionRegistry (sockets only). */
  registry: SessionRegistryOptions | undefined;
  store: () => session.Store;
}

const registry: Mode = {
  name: "memory registry (express-session's MemoryStore)",
  registry: {},
  store: () => new session.MemoryStore(),
};
const scan: Mode = {
  name: 'scan (memorystore, store.all())',
  registry: { scan: true },
  // No checkPeriod: no interval timer left running.
  store: () => new MemoryStore({}),
};

async function app(
  tc: NodeTestContext,
  mode: Mode,
): Promise<{ t: TestServer; kit: TestKit; store: session.Store }> {
  const store = mode.store();
  const started = await startWithKit(
    tc,
    ({ io, session: sessionMiddleware, passport }) => {
      sessionNamespace(io, sessionMiddleware, { passport });
      if (mode.registry) sessionRegistry(io, mode.registry);
      io.on('connection', (socket) => {
        socket.on('ping', (ack: (answer: string) => void) => {
          ack('pong');
        });
      });
    },
    {
      sessionOptions: { store, cookie: { maxAge: 10 * 60 * 1000 } },
      // What the app's own pages see of the session: its user and its handle.
      afterSession: () => [
        (req, res, next) => {
          if (req.path !== '/me') {
            next();
            return;
          }
          res.json({ user: req.user ?? null, handle: sessionHandle(req) ?? null });
        },
      ],
    },
  );
  return { ...started, store };
}

async function me(agent: Agent): Promise<{ user: unknown; handle: string | null }> {
  const res = await agent.fetch('/me');
  return (await res.json()) as { user: unknown; handle: string | null };
}

async function handleOf(agent: Agent): Promise<string> {
  const { handle } = await me(agent);
  assert.ok(handle, 'the agent has a session');
  return handle;
}

/** Every session ID the store holds (what must never appear in the package's answers). */
function storedIDs(store: session.Store): Promise<string[]> {
  return new Promise((resolve, reject) => {
    store.all?.((err, sessions) => {
      if (err) reject(err as Error);
      else resolve(Object.keys(sessions ?? {}));
    });
  });
}

function byHandle(list: SessionInfo[], handle: string): SessionInfo {
  return list.find((s) => s.handle === handle) ?? assert.fail(`no session ${handle} in the list`);
}

/** The socket still works: a round trip answered, so no `session:ended` came before it. */
async function stillUp(socket: TestSocket): Promise<void> {
  assert.equal(await socket.timeout(5000).emitWithAck('ping'), 'pong');
  await socket.refuteEvent('session:ended');
}

for (const mode of [registry, scan]) {
  describe(`listSessions / endSessions: ${mode.name}`, () => {
    test('two devices of alice, one with a socket: two entries, no session ID in them', async (tc) => {
      const { t, kit, store } = await app(tc, mode);
      const [laptop, phone, bob] = await Promise.all([
        logIn(kit, 'alice'),
        logIn(kit, 'alice'),
        logIn(kit, 'bob'),
      ]);
      await laptop.connect('/');
      const [laptopHandle, phoneHandle] = await Promise.all([handleOf(laptop), handleOf(phone)]);
      await handleOf(bob);

      const list = await listSessions(t.io, ALICE);

      assert.deepEqual(list.map((s) => s.handle).sort(), [laptopHandle, phoneHandle].sort());
      const onLaptop = byHandle(list, laptopHandle);
      const onPhone = byHandle(list, phoneHandle);
      assert.equal(onLaptop.sockets, 1);
      assert.equal(onPhone.sockets, 0);
      // The socket's device: Node's socket.io-client from this host.
      assert.equal(onLaptop.ip, '127.0.0.1');
      if (mode === registry) {
        // Written at the login (Node's fetch says `node`), through express-session's `req.ip`.
        for (const entry of [onLaptop, onPhone]) {
          assert.equal(entry.userAgent, 'node');
          assert.equal(entry.ip, '127.0.0.1');
          assert.equal(typeof entry.createdAt, 'number');
          assert.equal(typeof entry.lastSeenAt, 'number');
          assert.ok((entry.expiresAt ?? 0) > Date.now());
        }
      } else {
        // A scan knows the session and its expiry, not the device of a session without a socket.
        assert.equal(onPhone.userAgent, undefined);
        assert.ok((onPhone.expiresAt ?? 0) > Date.now());
      }
      const ids = await storedIDs(store);
      assert.equal(ids.length, 3);
      const text = JSON.stringify(list);
      for (const id of ids) assert.ok(!text.includes(id), 'a session ID in listSessions');
      assert.deepEqual(
        Object.keys(list[0] ?? {}).filter((k) => k === 'sid' || k === 'id'),
        [],
      );
    });

    test('endSessions except the current one: the other device is signed out, HTTP and socket', async (tc) => {
      const { t, kit } = await app(tc, mode);
      const [laptop, phone, tablet] = await Promise.all([
        logIn(kit, 'alice'),
        logIn(kit, 'alice'),
        logIn(kit, 'alice'),
      ]);
      const [laptopTab, phoneTab] = await Promise.all([laptop.connect('/'), phone.connect('/')]);
      const current = await handleOf(laptop);

      const result = await endSessions(t.io, ALICE, { except: current });

      assert.deepEqual(result, { sessions: 2, sockets: 1 });
      await expectEnded(phoneTab, 'ERR_SESSION_REVOKED');
      assert.equal((await me(phone)).user, null);
      assert.equal((await me(tablet)).user, null);
      assert.notEqual((await me(laptop)).user, null);
      await stillUp(laptopTab);
      const left = await listSessions(t.io, ALICE);
      assert.deepEqual(
        left.map((s) => [s.handle, s.sockets]),
        [[current, 1]],
      );
    });

    test('endSessions without except: every device signed out', async (tc) => {
      const { t, kit } = await app(tc, mode);
      const [laptop, phone, bob] = await Promise.all([
        logIn(kit, 'alice'),
        logIn(kit, 'alice'),
        logIn(kit, 'bob'),
      ]);
      const [laptopTab, bobTab] = await Promise.all([laptop.connect('/'), bob.connect('/')]);

      assert.deepEqual(await endSessions(t.io, ALICE), { sessions: 2, sockets: 1 });

      await expectEnded(laptopTab, 'ERR_SESSION_REVOKED');
      assert.equal((await me(laptop)).user, null);
      assert.equal((await me(phone)).user, null);
      assert.deepEqual(await listSessions(t.io, ALICE), []);
      // Bob's session is not alice's.
      assert.notEqual((await me(bob)).user, null);
      await stillUp(bobTab);
    });

    test('a logout leaves the list; N logins and logouts leave nothing behind', async (tc) => {
      const { t, kit } = await app(tc, mode);
      const [kept, leaving] = await Promise.all([logIn(kit, 'alice'), logIn(kit, 'alice')]);
      const keptHandle = await handleOf(kept);
      await leaving.logout();
      assert.deepEqual(
        (await listSessions(t.io, ALICE)).map((s) => s.handle),
        [keptHandle],
      );
      await kept.logout();
      for (let i = 0; i < 20; i++) {
        const agent = await logIn(kit, 'alice');
        await agent.logout();
      }
      // Before any listSessions (which drops what the store no longer has): the logouts did it.
      const { backend } = registryOf(t.io) ?? assert.fail('no registry');
      if (backend) {
        assert.ok(backend instanceof MemoryBackend);
        assert.equal(backend.size, 0);
      }
      assert.deepEqual(await listSessions(t.io, ALICE), []);
    });
  });
}

describe('listSessions / endSessions without a registry: sessions with sockets', () => {
  const socketsOnly: Mode = {
    name: 'sockets only',
    registry: undefined,
    store: () => new session.MemoryStore(),
  };

  test('a session known only by its socket is destroyed in the store by its socket', async (tc) => {
    const { t, kit } = await app(tc, socketsOnly);
    const [laptop, phone, tablet] = await Promise.all([
      logIn(kit, 'alice'),
      logIn(kit, 'alice'),
      logIn(kit, 'alice'),
    ]);
    const [laptopTab, phoneTab] = await Promise.all([laptop.connect('/'), phone.connect('/')]);
    const current = await handleOf(laptop);
    // The tablet has no socket: without a registry, the package does not know of it.
    assert.deepEqual(
      (await listSessions(t.io, ALICE)).map((s) => s.handle).sort(),
      [current, await handleOf(phone)].sort(),
    );

    assert.deepEqual(await endSessions(t.io, ALICE, { except: current }), {
      sessions: 1,
      sockets: 1,
    });

    await expectEnded(phoneTab, 'ERR_SESSION_REVOKED');
    assert.equal((await me(phone)).user, null);
    assert.notEqual((await me(tablet)).user, null);
    await stillUp(laptopTab);
  });
});

describe('sessionRegistry, listSessions, endSessions: setup mistakes and the write budget', () => {
  test('mistakes throw at once, a TypeError naming the helper', async (tc) => {
    const { t } = await app(tc, registry);
    assert.throws(() => {
      sessionRegistry(t.io);
    }, /^TypeError: sessionRegistry: already called for this server$/);
    const { io } = await app(tc, { ...registry, registry: undefined }).then(({ t: s }) => s);
    for (const [options, message] of [
      [{ scan: 'yes' }, /^TypeError: sessionRegistry: options\.scan must be a boolean$/],
      [{ redis: {} }, /^TypeError: sessionRegistry: options\.redis must be a node-redis client/],
      [{ keepMs: 0 }, /^TypeError: sessionRegistry: options\.keepMs must be a positive/],
    ] as const) {
      assert.throws(() => {
        sessionRegistry(io, options as SessionRegistryOptions);
      }, message);
    }
    assert.throws(() => {
      sessionRegistry(io.of('/x') as never);
    }, /^TypeError: sessionRegistry: io must be a Socket\.IO Server$/);
    assert.throws(() => listSessions(io, ''), /^TypeError: listSessions: userKey must be/);
    assert.throws(
      () => endSessions(io, ALICE, { except: [1] as never }),
      /^TypeError: endSessions: options\.except must be a handle or a list of handles$/,
    );
  });

  test("a device's requests within the minute write nothing more", async (tc) => {
    const { t, kit } = await app(tc, registry);
    const phone = await logIn(kit, 'alice');
    const [before] = await listSessions(t.io, ALICE);
    assert.equal(before?.userAgent, 'node');
    const res = await phone.fetch('/me', { headers: { 'user-agent': 'Other' } });
    assert.notEqual(((await res.json()) as { user: unknown }).user, null);
    // The touch at the end of that response reached the store before its body was sent.
    assert.deepEqual(await listSessions(t.io, ALICE), [before]);
  });
});
