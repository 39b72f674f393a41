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
import { type TestContext, sidOf, start } from '../support/server.js';
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
    const t = await start(tc, (ctx) => {
      guarded(ctx, '/private');
    });
    const err = await connectError(t.connect('/private'));
    assert.deepEqual(shown(err), UNAUTHORIZED);
  });

  test('a logged-in user with no authorize option connects', async (tc) => {
    const t = await start(tc, (ctx) => {
      guarded(ctx, '/private');
    });
    const cookie = await t.login('bob');
    const info = await whoami(t.connect('/private', { cookie }));
    assert.deepEqual(info, { nsp: '/private', user: 'bob', sessionID: sidOf(cookie) });
  });

  test('authorize returns false (sync): 403 Forbidden; true: connects', async (tc) => {
    const t = await start(tc, (ctx) => {
      guarded(ctx, '/admin', { authorize: (user) => user.role === 'admin' });
    });
    const bob = await connectError(t.connect('/admin', { cookie: await t.login('bob') }));
    assert.deepEqual(shown(bob), FORBIDDEN);
    const aliceCookie = await t.login('alice');
    const alice = await whoami(t.connect('/admin', { cookie: aliceCookie }));
    assert.deepEqual(alice, { nsp: '/admin', user: 'alice', sessionID: sidOf(aliceCookie) });
    const anon = await connectError(t.connect('/admin'));
    assert.deepEqual(shown(anon), UNAUTHORIZED);
  });

  test('authorize resolves false (async): 403 Forbidden; resolves true: connects', async (tc) => {
    const t = await start(tc, (ctx) => {
      guarded(ctx, '/admin', {
        authorize: async (user) => {
          await delay(5);
          return user.role === 'admin';
        },
      });
    });
    const bob = await connectError(t.connect('/admin', { cookie: await t.login('bob') }));
    assert.deepEqual(shown(bob), FORBIDDEN);
    const alice = await whoami(t.connect('/admin', { cookie: await t.login('alice') }));
    assert.equal(alice.user, 'alice');
  });

  test('authorize gets the user and the socket (socket.nsp.name)', async (tc) => {
    const calls: { user: string; nsp: string; sameUser: boolean }[] = [];
    const t = await start(tc, (ctx) => {
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
    await whoami(t.connect('/seen', { cookie: await t.login('alice') }));
    assert.deepEqual(calls, [{ user: 'alice', nsp: '/seen', sameUser: true }]);
  });

  test('authorize is not called when there is no user', async (tc) => {
    let calls = 0;
    const t = await start(tc, (ctx) => {
      guarded(ctx, '/seen', {
        authorize: () => {
          calls++;
          return true;
        },
      });
    });
    assert.deepEqual(shown(await connectError(t.connect('/seen'))), UNAUTHORIZED);
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
      const t = await start(tc, (ctx) => {
        guarded(ctx, '/strict', { authorize: () => value as boolean });
      });
      const err = await connectError(t.connect('/strict', { cookie: await t.login('alice') }));
      assert.deepEqual(shown(err), FORBIDDEN);
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
        await delay(5);
        throw new Error('db password is hunter2');
      },
    },
  ];
  for (const { label, authorize } of failures) {
    test(`authorize ${label}: 500 ERR_AUTHORIZE_ERROR, no internals shown, onError gets it`, async (tc) => {
      const reported: { error: unknown; nsp: string }[] = [];
      const t = await start(tc, (ctx) => {
        guarded(ctx, '/fragile', {
          authorize,
          onError: (error, socket) => {
            reported.push({ error, nsp: socket.nsp.name });
          },
        });
      });
      const socket = t.connect('/fragile', { cookie: await t.login('alice') });
      const err = await connectError(socket);
      assert.deepEqual(shown(err), AUTHORIZE_ERROR);
      assert.doesNotMatch(JSON.stringify(shown(err)), /hunter2/);
      assert.equal(socket.active, false);
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
    const t = await start(tc, (ctx) => {
      guarded(ctx, '/fragile', {
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        authorize: () => Promise.reject(undefined),
        onError: (error) => {
          reported.push(error);
        },
      });
    });
    const err = await connectError(t.connect('/fragile', { cookie: await t.login('alice') }));
    assert.deepEqual(shown(err), AUTHORIZE_ERROR);
    assert.equal(reported.length, 1);
  });

  test('the very error object thrown reaches onError', async (tc) => {
    const failure = new Error('boom');
    const reported: unknown[] = [];
    const t = await start(tc, (ctx) => {
      guarded(ctx, '/fragile', {
        authorize: () => {
          throw failure;
        },
        onError: (error) => {
          reported.push(error);
        },
      });
    });
    await connectError(t.connect('/fragile', { cookie: await t.login('bob') }));
    assert.equal(reported[0], failure);
  });
});

// ---------------------------------------------------------------------------------------------
// Realistic layouts
// ---------------------------------------------------------------------------------------------

describe('requireAuth: admin and per-tenant namespaces', () => {
  test('admin namespace: alice (admin) in, bob (member) 403, anonymous 401', async (tc) => {
    const t = await start(tc, (ctx) => {
      guarded(ctx, '/admin', { authorize: (user) => user.role === 'admin' });
    });
    const [aliceCookie, bobCookie] = await Promise.all([t.login('alice'), t.login('bob')]);
    assert.equal((await whoami(t.connect('/admin', { cookie: aliceCookie }))).user, 'alice');
    assert.deepEqual(
      shown(await connectError(t.connect('/admin', { cookie: bobCookie }))),
      FORBIDDEN,
    );
    assert.deepEqual(shown(await connectError(t.connect('/admin'))), UNAUTHORIZED);
  });

  test('per-tenant dynamic namespaces: each user only in their tenants', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(
        requireAuth(sessionNamespace(io.of(/^\/tenant-\w+$/), session, { passport }), {
          authorize: (user, socket) =>
            user.tenants.includes(socket.nsp.name.slice('/tenant-'.length)),
        }),
      );
    });
    const [aliceCookie, bobCookie] = await Promise.all([t.login('alice'), t.login('bob')]);
    assert.deepEqual(await whoami(t.connect('/tenant-acme', { cookie: aliceCookie })), {
      nsp: '/tenant-acme',
      user: 'alice',
      sessionID: sidOf(aliceCookie),
    });
    assert.deepEqual(await whoami(t.connect('/tenant-globex', { cookie: bobCookie })), {
      nsp: '/tenant-globex',
      user: 'bob',
      sessionID: sidOf(bobCookie),
    });
    assert.deepEqual(
      shown(await connectError(t.connect('/tenant-globex', { cookie: aliceCookie }))),
      FORBIDDEN,
    );
    assert.deepEqual(
      shown(await connectError(t.connect('/tenant-acme', { cookie: bobCookie }))),
      FORBIDDEN,
    );
    assert.deepEqual(
      shown(await connectError(t.connect('/tenant-initech', { cookie: aliceCookie }))),
      FORBIDDEN,
    );
    assert.deepEqual(shown(await connectError(t.connect('/tenant-acme'))), UNAUTHORIZED);
  });

  test('a function parent namespace is guarded child by child', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      const parent = io.of((name, _auth, next) => {
        next(null, name.startsWith('/tenant-'));
      });
      reporting(
        requireAuth(sessionNamespace(parent, session, { passport }), {
          authorize: async (user, socket) => {
            await delay(1);
            return user.tenants.includes(socket.nsp.name.slice('/tenant-'.length));
          },
        }),
      );
    });
    const aliceCookie = await t.login('alice');
    assert.equal((await whoami(t.connect('/tenant-acme', { cookie: aliceCookie }))).user, 'alice');
    assert.deepEqual(
      shown(await connectError(t.connect('/tenant-globex', { cookie: aliceCookie }))),
      FORBIDDEN,
    );
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
    const t = await start(tc, (ctx) => {
      guarded(ctx, '/private');
      reporting(requireAuth(sessionNamespace(ctx.io.of('/sessions-only'), ctx.session)));
    });
    assert.deepEqual(shown(await connectError(t.connect('/private'))), UNAUTHORIZED);
    // Sessions but no passport: logged in over HTTP, still no user on the socket.
    const cookie = await t.login('alice');
    assert.deepEqual(
      shown(await connectError(t.connect('/sessions-only', { cookie }))),
      UNAUTHORIZED,
    );
    assert.equal(warnings.length, 0, 'none for the two refusals, each answered after its warning');
  });
});

describe('requireAuth: Express 4', () => {
  test('admin namespace on an Express 4 app', async (tc) => {
    const t = await start(
      tc,
      (ctx) => {
        guarded(ctx, '/admin', { authorize: (user) => user.role === 'admin' });
      },
      { express: 'express4' },
    );
    assert.equal(
      (await whoami(t.connect('/admin', { cookie: await t.login('alice') }))).user,
      'alice',
    );
    assert.deepEqual(
      shown(await connectError(t.connect('/admin', { cookie: await t.login('bob') }))),
      FORBIDDEN,
    );
    assert.deepEqual(shown(await connectError(t.connect('/admin'))), UNAUTHORIZED);
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
