// Setup mistakes a new user makes in the first hour, each answered with a message that names the
// fix (a process warning with a code of ours, once per process, or a TypeError at setup), instead
// of silence or a misleading refusal.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ERR_UNAUTHORIZED,
  disconnectOnLogout,
  requireAuth,
  sessionNamespace,
} from '../../lib/index.js';
import { connected, connectError } from '../support/bounded.js';
import { type CreateTestServerOptions, type TestContext, start } from '../support/server.js';
import { Server } from '../support/stack.js';
import { warningsOf } from '../support/warnings.js';

/** Resolves once `list` has an entry ('warning' events come on a later tick). */
async function emitted(list: string[], what: string): Promise<string> {
  const deadline = Date.now() + 5000;
  while (list.length === 0) {
    if (Date.now() > deadline) throw new Error(`no ${what} warning`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return list[0] ?? '';
}

function guarded(setup?: (ctx: TestContext) => void) {
  return (ctx: TestContext): void => {
    requireAuth(sessionNamespace(ctx.io.of('/chat'), ctx.session, { passport: ctx.passport }));
    setup?.(ctx);
  };
}

describe('setup mistakes, each with a message that names the fix', () => {
  test('a cookie path that does not cover /socket.io/: 401 and one warning, not a store outage', async (tc) => {
    const warnings = warningsOf(tc, 'SOCKET_IO_SESSION_AUTH_COOKIE_PATH');
    const skipped = warningsOf(tc, 'SOCKET_IO_SESSION_AUTH_SESSION_SKIPPED');
    const options: CreateTestServerOptions = { sessionOptions: { cookie: { path: '/app' } } };
    const t = await start(tc, guarded(), options);
    assert.match(await emitted(warnings, 'cookie path'), /`path` must be `\/` or a prefix/);
    // A browser would not even send the cookie there; a client that does gets no session either.
    const refused = await connectError(t.connect('/chat', { cookie: 'connect.sid=s%3Ax.y' }));
    assert.deepEqual(refused.data, { code: ERR_UNAUTHORIZED, status: 401 });
    // The skip follows from the mistake named at setup: not warned about again (a warning is
    // emitted on the tick after the session step, before the refusal is sent).
    assert.deepEqual(skipped, []);
  });

  test('sessionNamespace without { passport } while sessions hold a user', async (tc) => {
    const warnings = warningsOf(tc, 'SOCKET_IO_SESSION_AUTH_NO_PASSPORT');
    const t = await start(tc, ({ io, session }) => {
      requireAuth(sessionNamespace(io.of('/chat'), session));
    });
    const alice = await t.login('alice');
    const refused = await connectError(t.connect('/chat', { cookie: alice }));
    assert.equal(refused.data?.code, ERR_UNAUTHORIZED);
    assert.match(
      await emitted(warnings, 'no passport'),
      /sessionNamespace\(nsp, sessionMiddleware, \{ passport \}\)/,
    );
  });

  test('disconnectOnLogout mounted before the session middleware', async (tc) => {
    const warnings = warningsOf(tc, 'SOCKET_IO_SESSION_AUTH_LOGOUT_BEFORE_SESSION');
    const t = await start(tc, guarded(), {
      // Before the session middleware (configureApp runs first), with a server of its own.
      configureApp: (app) => {
        app.use(disconnectOnLogout(new Server()));
      },
    });
    await t.login('alice');
    assert.match(
      await emitted(warnings, 'logout before session'),
      /after the session middleware and passport\.session\(\)/,
    );
  });

  test('passport.session() passed where the session middleware belongs: a TypeError at setup', async (tc) => {
    await start(tc, ({ io, passport }) => {
      assert.throws(
        () => sessionNamespace(io.of('/chat'), passport.session() as never, { passport }),
        /^TypeError: sessionNamespace: session must be the session middleware .* not passport\.session\(\)/,
      );
    });
  });

  test('the session read by io.engine.use(session) as well: a warning about the double read', async (tc) => {
    const warnings = warningsOf(tc, 'SOCKET_IO_SESSION_AUTH_DOUBLE_READ');
    const t = await start(
      tc,
      guarded(({ io, session }) => {
        io.engine.use(session);
      }),
    );
    const alice = await t.login('alice');
    await connected(t.connect('/chat', { cookie: alice }));
    assert.match(await emitted(warnings, 'double read'), /reads the store twice/);
  });
});

describe('setup warnings', () => {
  test('connectionStateRecovery skipping middleware: what the package still guarantees', async (tc) => {
    const warnings = warningsOf(tc, 'SOCKET_IO_SESSION_AUTH_RECOVERY');
    await start(tc, guarded(), { serverOptions: { connectionStateRecovery: {} } });
    assert.match(
      await emitted(warnings, 'recovery'),
      /refuses to restore a socket whose session ended/,
    );
  });

  test('CORS letting any origin send credentials', async (tc) => {
    const warnings = warningsOf(tc, 'SOCKET_IO_SESSION_AUTH_CORS');
    await start(tc, guarded(), { serverOptions: { cors: { origin: true, credentials: true } } });
    assert.match(await emitted(warnings, 'cors'), /List your own origins/);
  });

  test('a Secure cookie on plain HTTP with no trusted proxy', async (tc) => {
    const warnings = warningsOf(tc, 'SOCKET_IO_SESSION_AUTH_SECURE_COOKIE');
    const t = await start(tc, guarded());
    const alice = await t.login('alice');
    // The stored session's cookie says Secure (as a login behind HTTPS would have written it).
    const sid =
      decodeURIComponent(/connect\.sid=([^;]+)/.exec(alice)?.[1] ?? '')
        .slice(2)
        .split('.')[0] ?? '';
    await new Promise<void>((resolve, reject) => {
      t.store.get(sid, (err, data) => {
        if (err || !data) {
          reject(new Error('no session'));
          return;
        }
        (data.cookie as unknown as { secure: boolean }).secure = true;
        t.store.set(sid, data, () => {
          resolve();
        });
      });
    });
    await connected(t.connect('/chat', { cookie: alice }));
    assert.match(await emitted(warnings, 'secure cookie'), /trust proxy/);
  });
});
