import assert from 'node:assert/strict';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import type { Namespace, Socket as ServerSocket } from 'socket.io';
import {
  ERR_AUTHORIZE_ERROR,
  ERR_FORBIDDEN,
  ERR_UNAUTHORIZED,
  requireAuth,
  sessionNamespace,
  type RequireAuthOptions,
} from '../../lib/index.js';
import { delay, request, shown } from '../support/client.js';
import { expectRefused, type Refusal, type TestSocket } from 'socket.io-session-auth/testing';
import { type TestContext, sidOf, start } from '../support/server.js';
import { logIn, startWithKit } from '../support/kit.js';
import { connectError } from '../support/bounded.js';
import { throwsNaming } from '../support/assertions.js';
import { reporting, whoami, type Who } from '../support/whoami.js';
import { Server } from '../support/stack.js';

// ---------------------------------------------------------------------------------------------
// Helpers (local to this spec)
// ---------------------------------------------------------------------------------------------

/** A guarded namespace: session + Passport, then requireAuth with these options. */
function guarded(ctx: TestContext, name: string, options?: RequireAuthOptions): Namespace {
  const { io, session, passport } = ctx;
  return reporting(requireAuth(sessionNamespace(io.of(name), session, { passport }), options));
}

/**
 * The kit's expectRefused (the code, and no retry by the client), and the whole refusal the
 * client saw: its message and data, exactly.
 */
async function refusedWith(
  connecting: Promise<TestSocket>,
  expected: { message: string; data: { code: string; status: number } },
): Promise<Refusal> {
  const refusal = await expectRefused(connecting, expected.data.code);
  assert.deepEqual(refusal, expected);
  return refusal;
}

const UNAUTHORIZED = { message: 'Unauthorized', data: { code: ERR_UNAUTHORIZED, status: 401 } };
const FORBIDDEN = { message: 'Forbidden', data: { code: ERR_FORBIDDEN, status: 403 } };
const AUTHORIZE_ERROR = {
  message: 'Internal Server Error',
  data: { code: ERR_AUTHORIZE_ERROR, status: 500 },
};

/** Collects the process warnings with this package's code while the test runs. */
function collectWarnings(tc: NodeTestContext): Error[] {
  const seen: Error[] = [];
  const listener = (warning: Error & { code?: string }): void => {
    if (warning.code === 'SOCKET_IO_SESSION_AUTH_NO_USER') seen.push(warning);
  };
  process.on('warning', listener);
  tc.after(() => {
    process.off('warning', listener);
  });
  return seen;
}

// ---------------------------------------------------------------------------------------------
// Refusals and admissions
// ---------------------------------------------------------------------------------------------

describe('requireAuth: who gets in', () => {
  test('no user: 401 Unauthorized', async (tc) => {
    const { kit } = await startWithKit(tc, (ctx) => {
      guarded(ctx, '/private');
    });
    await refusedWith(kit.anonymous().connect('/private'), UNAUTHORIZED);
  });

  test('a logged-in user with no authorize option connects', async (tc) => {
    const { kit } = await startWithKit(tc, (ctx) => {
      guarded(ctx, '/private');
    });
    const bob = await logIn(kit, 'bob');
    const info = await whoami(await bob.connect('/private'));
    assert.deepEqual(info, { nsp: '/private', user: 'bob', sessionID: sidOf(bob.cookie) });
  });

  test('authorize returns false (sync): 403 Forbidden; true: connects', async (tc) => {
    const { kit } = await startWithKit(tc, (ctx) => {
      guarded(ctx, '/admin', { authorize: (user) => user.role === 'admin' });
    });
    await refusedWith((await logIn(kit, 'bob')).connect('/admin'), FORBIDDEN);
    const alice = await logIn(kit, 'alice');
    const who = await whoami(await alice.connect('/admin'));
    assert.deepEqual(who, { nsp: '/admin', user: 'alice', sessionID: sidOf(alice.cookie) });
    await refusedWith(kit.anonymous().connect('/admin'), UNAUTHORIZED);
  });

  test('authorize resolves false (async): 403 Forbidden; resolves true: connects', async (tc) => {
    const { kit } = await startWithKit(tc, (ctx) => {
      guarded(ctx, '/admin', {
        authorize: async (user) => {
          // Decided later than the handshake's own turn (pacing, not an assertion).
          await delay(5);
          return user.role === 'admin';
        },
      });
    });
    await refusedWith((await logIn(kit, 'bob')).connect('/admin'), FORBIDDEN);
    const alice = await whoami(await (await logIn(kit, 'alice')).connect('/admin'));
    assert.equal(alice.user, 'alice');
  });

  test('authorize gets the user and the socket (socket.nsp.name)', async (tc) => {
    const calls: { user: string; nsp: string; sameUser: boolean }[] = [];
    const { kit } = await startWithKit(tc, (ctx) => {
      guarded(ctx, '/seen', {
        authorize: (user, socket: ServerSocket) => {
          calls.push({
            user: user.username,
            nsp: socket.nsp.name,
            sameUser: socket.request.user === user,
          });
          return true;
        },
      });
    });
    await whoami(await (await logIn(kit, 'alice')).connect('/seen'));
    assert.deepEqual(calls, [{ user: 'alice', nsp: '/seen', sameUser: true }]);
  });

  test('authorize is not called when there is no user', async (tc) => {
    let calls = 0;
    const { kit } = await startWithKit(tc, (ctx) => {
      guarded(ctx, '/seen', {
        authorize: () => {
          calls++;
          return true;
        },
      });
    });
    await refusedWith(kit.anonymous().connect('/seen'), UNAUTHORIZED);
    assert.equal(calls, 0);
  });

  const notTrue: { label: string; value: unknown }[] = [
    { label: "'yes'", value: 'yes' },
    { label: '1', value: 1 },
    { label: 'an object', value: {} },
    { label: 'a promise of 1', value: Promise.resolve(1) },
    { label: 'a promise of undefined', value: Promise.resolve(undefined) },
    { label: 'undefined', value: undefined },
  ];
  for (const { label, value } of notTrue) {
    test(`only true allows: authorize returning ${label} is refused 403`, async (tc) => {
      const { kit } = await startWithKit(tc, (ctx) => {
        guarded(ctx, '/strict', { authorize: () => value as boolean });
      });
      await refusedWith((await logIn(kit, 'alice')).connect('/strict'), FORBIDDEN);
    });
  }
});

describe('requireAuth: authorize failures', () => {
  const failures: { label: string; authorize: () => boolean | Promise<boolean> }[] = [
    {
      label: 'throws',
      authorize: () => {
        throw new Error('db password is hunter2');
      },
    },
    {
      label: 'rejects',
      authorize: () => Promise.reject(new Error('db password is hunter2')),
    },
    {
      label: 'rejects after a while',
      authorize: async () => {
        // Fails on a later turn (pacing, not an assertion).
        await delay(5);
        throw new Error('db password is hunter2');
      },
    },
  ];
  for (const { label, authorize } of failures) {
    test(`authorize ${label}: 500 ERR_AUTHORIZE_ERROR, no internals shown, onError gets it`, async (tc) => {
      const reported: { error: unknown; nsp: string }[] = [];
      const { kit } = await startWithKit(tc, (ctx) => {
        guarded(ctx, '/fragile', {
          authorize,
          onError: (error, socket) => {
            reported.push({ error, nsp: socket.nsp.name });
          },
        });
      });
      // expectRefused also checks that the client does not retry (socket.active is false).
      const refusal = await refusedWith(
        (await logIn(kit, 'alice')).connect('/fragile'),
        AUTHORIZE_ERROR,
      );
      assert.doesNotMatch(JSON.stringify(refusal), /hunter2/);
      assert.equal(reported.length, 1);
      const [first] = reported;
      assert.ok(first);
      assert.ok(first.error instanceof Error);
      assert.equal(first.error.message, 'db password is hunter2');
      assert.equal(first.nsp, '/fragile');
    });
  }

  test('authorize rejects with no reason: still 500 ERR_AUTHORIZE_ERROR', async (tc) => {
    const reported: unknown[] = [];
    const { kit } = await startWithKit(tc, (ctx) => {
      guarded(ctx, '/fragile', {
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        authorize: () => Promise.reject(undefined),
        onError: (error) => {
          reported.push(error);
        },
      });
    });
    await refusedWith((await logIn(kit, 'alice')).connect('/fragile'), AUTHORIZE_ERROR);
    assert.equal(reported.length, 1);
  });

  test('the very error object thrown reaches onError', async (tc) => {
    const failure = new Error('boom');
    const reported: unknown[] = [];
    const { kit } = await startWithKit(tc, (ctx) => {
      guarded(ctx, '/fragile', {
        authorize: () => {
          throw failure;
        },
        onError: (error) => {
          reported.push(error);
        },
      });
    });
    await expectRefused((await logIn(kit, 'bob')).connect('/fragile'));
    assert.equal(reported[0], failure);
  });
});

// ---------------------------------------------------------------------------------------------
// Realistic layouts
// ---------------------------------------------------------------------------------------------

describe('requireAuth: admin and per-tenant namespaces', () => {
  test('admin namespace: alice (admin) in, bob (member) 403, anonymous 401', async (tc) => {
    const { kit } = await startWithKit(tc, (ctx) => {
      guarded(ctx, '/admin', { authorize: (user) => user.role === 'admin' });
    });
    const [alice, bob] = await Promise.all([logIn(kit, 'alice'), logIn(kit, 'bob')]);
    assert.equal((await whoami(await alice.connect('/admin'))).user, 'alice');
    await refusedWith(bob.connect('/admin'), FORBIDDEN);
    await refusedWith(kit.anonymous().connect('/admin'), UNAUTHORIZED);
  });

  test('per-tenant dynamic namespaces: each user only in their tenants', async (tc) => {
    const { kit } = await startWithKit(tc, ({ io, session, passport }) => {
      reporting(
        requireAuth(sessionNamespace(io.of(/^\/tenant-\w+$/), session, { passport }), {
          authorize: (user, socket) =>
            user.tenants.includes(socket.nsp.name.slice('/tenant-'.length)),
        }),
      );
    });
    const [alice, bob] = await Promise.all([logIn(kit, 'alice'), logIn(kit, 'bob')]);
    assert.deepEqual(await whoami(await alice.connect('/tenant-acme')), {
      nsp: '/tenant-acme',
      user: 'alice',
      sessionID: sidOf(alice.cookie),
    });
    assert.deepEqual(await whoami(await bob.connect('/tenant-globex')), {
      nsp: '/tenant-globex',
      user: 'bob',
      sessionID: sidOf(bob.cookie),
    });
    await refusedWith(alice.connect('/tenant-globex'), FORBIDDEN);
    await refusedWith(bob.connect('/tenant-acme'), FORBIDDEN);
    await refusedWith(alice.connect('/tenant-initech'), FORBIDDEN);
    await refusedWith(kit.anonymous().connect('/tenant-acme'), UNAUTHORIZED);
  });

  test('a function parent namespace is guarded child by child', async (tc) => {
    const { kit } = await startWithKit(tc, ({ io, session, passport }) => {
      const parent = io.of((name, _auth, next) => {
        next(null, name.startsWith('/tenant-'));
      });
      reporting(
        requireAuth(sessionNamespace(parent, session, { passport }), {
          authorize: async (user, socket) => {
            // Decided on a later turn (pacing, not an assertion).
            await delay(1);
            return user.tenants.includes(socket.nsp.name.slice('/tenant-'.length));
          },
        }),
      );
    });
    const alice = await logIn(kit, 'alice');
    assert.equal((await whoami(await alice.connect('/tenant-acme'))).user, 'alice');
    await refusedWith(alice.connect('/tenant-globex'), FORBIDDEN);
  });

  test('one connection: "/" open, "/admin" refused for bob, "/" stays connected', async (tc) => {
    const t = await start(tc, (ctx) => {
      reporting(sessionNamespace(ctx.io, ctx.session, { passport: ctx.passport }));
      guarded(ctx, '/admin', { authorize: (user) => user.role === 'admin' });
    });
    const cookie = await t.login('bob');
    const root = t.connect('/', { cookie });
    assert.equal((await whoami(root)).user, 'bob');
    const admin = root.io.socket('/admin');
    const err = await connectError(admin);
    assert.deepEqual(shown(err), FORBIDDEN);
    // A round trip on / after the refusal: / was not disconnected along with /admin.
    assert.equal((await request<Who>(root, 'whoami')).user, 'bob');
    assert.equal(root.connected, true);
  });
});

// ---------------------------------------------------------------------------------------------
// The client stops after a refusal
// ---------------------------------------------------------------------------------------------

describe('requireAuth: refusals are namespace-level, the client stops', () => {
  test('401, 403 and 500: socket.active false, so no reconnection attempt', async (tc) => {
    let engineConnections = 0;
    const runs = new Map<string, number>();
    const t = await start(tc, (ctx) => {
      ctx.io.engine.on('connection', () => {
        engineConnections++;
      });
      for (const name of ['/unauthorized', '/forbidden', '/failing']) {
        ctx.io.of(name).use((socket, next) => {
          runs.set(socket.nsp.name, (runs.get(socket.nsp.name) ?? 0) + 1);
          next();
        });
      }
      guarded(ctx, '/unauthorized');
      guarded(ctx, '/forbidden', { authorize: () => false });
      guarded(ctx, '/failing', {
        authorize: () => {
          throw new Error('nope');
        },
        onError: () => undefined,
      });
    });
    const cookie = await t.login('alice');
    const retrying = { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 100 };
    const sockets = [
      t.connect('/unauthorized', retrying),
      t.connect('/forbidden', { cookie, ...retrying }),
      t.connect('/failing', { cookie, ...retrying }),
    ];
    // How each client's Manager closed its connection: 'forced close' is socket.io-client giving
    // up on purpose (skipReconnect), once its last socket is inactive; any other reason would be
    // followed by reconnection attempts.
    const closes = sockets.map((s) => {
      const reasons: string[] = [];
      s.io.on('close', (reason) => {
        reasons.push(reason);
      });
      return reasons;
    });
    const errors = await Promise.all(sockets.map((s) => connectError(s)));
    assert.deepEqual(errors.map(shown), [UNAUTHORIZED, FORBIDDEN, AUTHORIZE_ERROR]);
    assert.deepEqual(
      sockets.map((s) => s.active),
      [false, false, false],
    );
    // Each Manager closed before its socket's connect_error was emitted: the proof that no
    // attempt follows, instead of a 1.5 s watch for one.
    assert.deepEqual(closes, [['forced close'], ['forced close'], ['forced close']]);
    assert.equal(engineConnections, 3, 'one engine connection per client, no retries');
    assert.deepEqual(Object.fromEntries(runs), {
      '/unauthorized': 1,
      '/forbidden': 1,
      '/failing': 1,
    });
    assert.deepEqual(
      sockets.map((s) => s.active),
      [false, false, false],
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Where the user comes from
// ---------------------------------------------------------------------------------------------

describe('requireAuth: the user may come from engine-level middleware', () => {
  for (const transports of [['polling', 'websocket'], ['websocket']] as const) {
    test(`io.engine.use sets socket.request.user, no sessionNamespace (${transports.join('+')})`, async (tc) => {
      const warnings = collectWarnings(tc);
      const t = await start(tc, ({ io }) => {
        io.engine.use(
          (
            req: { user?: Express.User; headers: Record<string, unknown> },
            _res: unknown,
            next: () => void,
          ) => {
            if (req.headers['x-user'] === 'eve') {
              req.user = { id: '9', username: 'eve', role: 'admin', tenants: [] };
            }
            next();
          },
        );
        reporting(requireAuth(io.of('/engine'), { authorize: (user) => user.role === 'admin' }));
      });
      const info = await whoami(
        t.connect('/engine', { transports: [...transports], extraHeaders: { 'x-user': 'eve' } }),
      );
      // An engine-level user, no session: no session ID on the request.
      assert.deepEqual(info, { nsp: '/engine', user: 'eve', sessionID: null });
      // A warning would have been emitted during the handshake, before the connection answered.
      assert.equal(warnings.length, 0);
    });
  }
});

describe('requireAuth: neither sessionNamespace nor an engine-level user', () => {
  test('refuses 401 and emits one process warning, once for several sockets', async (tc) => {
    const warnings = collectWarnings(tc);
    const t = await start(tc, ({ io }) => {
      reporting(requireAuth(io.of('/bare')));
    });
    const cookie = await t.login('alice');
    for (let i = 0; i < 3; i++) {
      const err = await connectError(t.connect('/bare', i === 0 ? {} : { cookie }));
      assert.deepEqual(shown(err), UNAUTHORIZED);
    }
    // process.emitWarning emits on the next tick of the refused handshake, long before the
    // client reads its connect_error.
    assert.equal(warnings.length, 1);
    const [warning] = warnings;
    assert.ok(warning);
    assert.match(warning.message, /sessionNamespace/);
    assert.match(warning.message, /\/bare/);
  });

  test('no warning when sessionNamespace is there and nobody is logged in', async (tc) => {
    const warnings = collectWarnings(tc);
    const { kit } = await startWithKit(tc, (ctx) => {
      guarded(ctx, '/private');
      reporting(requireAuth(sessionNamespace(ctx.io.of('/sessions-only'), ctx.session)));
    });
    await refusedWith(kit.anonymous().connect('/private'), UNAUTHORIZED);
    // Sessions but no passport: logged in over HTTP, still no user on the socket.
    await refusedWith((await logIn(kit, 'alice')).connect('/sessions-only'), UNAUTHORIZED);
    assert.equal(warnings.length, 0, 'none for the two refusals, each answered after its warning');
  });
});

describe('requireAuth: Express 4', () => {
  test('admin namespace on an Express 4 app', async (tc) => {
    const { kit } = await startWithKit(
      tc,
      (ctx) => {
        guarded(ctx, '/admin', { authorize: (user) => user.role === 'admin' });
      },
      { express: 'express4' },
    );
    const [alice, bob] = await Promise.all([logIn(kit, 'alice'), logIn(kit, 'bob')]);
    assert.equal((await whoami(await alice.connect('/admin'))).user, 'alice');
    await refusedWith(bob.connect('/admin'), FORBIDDEN);
    await refusedWith(kit.anonymous().connect('/admin'), UNAUTHORIZED);
  });
});

// ---------------------------------------------------------------------------------------------
// Setup errors
// ---------------------------------------------------------------------------------------------

describe('requireAuth: setup errors', () => {
  const io = new Server();

  test('returns the namespace (Server → "/", Namespace → itself)', () => {
    const server = new Server();
    assert.equal(requireAuth(server), server.of('/'));
    assert.equal(requireAuth(server.of('/x')), server.of('/x'));
    const parent = server.of(/^\/t-\w+$/);
    assert.equal(requireAuth(parent), parent);
  });

  test('bad target', () => {
    for (const bad of [null, undefined, {}, '/admin', 42, { name: '/admin' }]) {
      throwsNaming(() => requireAuth(bad as never), 'requireAuth');
    }
  });

  test('authorize is not a function', () => {
    for (const bad of ['admin', 42, true, {}, null]) {
      throwsNaming(() => requireAuth(io.of('/x'), { authorize: bad as never }), 'requireAuth');
    }
  });

  test('onError is not a function', () => {
    throwsNaming(() => requireAuth(io.of('/x'), { onError: 'log' as never }), 'requireAuth');
  });

  test('options is not an object', () => {
    for (const bad of [null, 'admin', 42, true]) {
      throwsNaming(() => requireAuth(io.of('/x'), bad as never), 'requireAuth');
    }
  });
});
