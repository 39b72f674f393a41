// Cross-site WebSocket hijacking: a page of another origin opens a socket and the browser sends the
// victim's cookie with it. Socket.IO's `cors` option covers long-polling only, so sessionNamespace
// checks the Origin header itself, before it reads anything from the session store.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import session from 'express-session';
import type { Socket as ClientSocket } from 'socket.io-client';
import { ERR_ORIGIN_FORBIDDEN, requireAuth, sessionNamespace } from '../../lib/index.js';
import { type TestServer, start } from '../support/server.js';
import { connected, connectError } from '../support/bounded.js';
import { reporting, expectUser } from '../support/whoami.js';
import { Server, Passport } from '../support/stack.js';

type Transports = ('polling' | 'websocket')[];

/** A client sending these headers (a browser would add its page's Origin). */
function open(
  t: TestServer,
  nsp: string,
  headers: Record<string, string>,
  transports?: Transports,
): ClientSocket {
  return t.connect(nsp, {
    extraHeaders: headers,
    ...(transports !== undefined && { transports }),
  });
}

const FORBIDDEN = { code: ERR_ORIGIN_FORBIDDEN, status: 403 };

/** Expects an ERR_ORIGIN_FORBIDDEN refusal that read nothing from the store. */
async function expectForbidden(t: TestServer, socket: ClientSocket, what: string): Promise<void> {
  const gets = t.store.gets;
  const deserialized = t.deserializeCount();
  const refused = await connectError(socket);
  assert.deepEqual(refused.data, FORBIDDEN, what);
  assert.equal(refused.message, 'Forbidden', what);
  assert.equal(socket.active, false, `${what}: a namespace-level refusal, no reconnect loop`);
  assert.equal(t.store.gets, gets, `${what}: refused before any session store read`);
  assert.equal(t.deserializeCount(), deserialized, `${what}: no deserializeUser`);
}

describe('origin check: cross-site WebSocket hijacking', () => {
  const transportsCases: [string, Transports | undefined][] = [
    ['websocket only', ['websocket']],
    ['polling only', ['polling']],
    ['polling, then upgrade', undefined],
  ];
  for (const [label, transports] of transportsCases) {
    test(`a logged-in cookie from https://evil.example is refused (${label}); the own origin connects`, async (tc) => {
      const seen: string[] = [];
      const t = await start(tc, ({ io, session, passport }) => {
        reporting(requireAuth(sessionNamespace(io.of('/chat'), session, { passport })), { seen });
      });
      const cookie = await t.login('alice');

      // The hijack: evil.example's page opens a socket, the browser attaches alice's cookie.
      const evil = open(t, '/chat', { origin: 'https://evil.example', cookie }, transports);
      await expectForbidden(t, evil, 'evil.example with a logged-in cookie');
      assert.deepEqual(seen, [], 'no connection event for the refused socket');

      // The app's own page (same scheme, host and port as the request) is let in as alice.
      const gets = t.store.gets;
      const own = open(t, '/chat', { origin: t.url, cookie }, transports);
      await expectUser(own, 'alice', 'own origin');
      assert.equal(t.store.gets, gets + 1, 'one store read for the accepted socket');
      assert.deepEqual(seen, ['/chat']);
    });
  }

  test('a refused origin on one namespace does not affect another namespace of the connection', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io.of('/checked'), session, { passport }));
      reporting(io.of('/plain'));
    });
    const cookie = await t.login('bob');
    const plain = open(t, '/plain', { origin: 'https://evil.example', cookie }, ['websocket']);
    await connected(plain);
    const checked = open(t, '/checked', { origin: 'https://evil.example', cookie }, ['websocket']);
    await expectForbidden(t, checked, 'evil origin on /checked');
    assert.equal(plain.connected, true);
  });
});

describe('origin check: which origins are allowed', () => {
  test("'null' and unparseable origins are refused", async (tc) => {
    const called: string[] = [];
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io.of('/own'), session, { passport }));
      reporting(
        sessionNamespace(io.of('/fn'), session, {
          passport,
          allowedOrigins: (origin) => {
            called.push(origin);
            return true;
          },
        }),
      );
    });
    const cookie = await t.login('alice');
    for (const origin of ['null', 'NULL', '', '127.0.0.1', 'not an origin', 'file://']) {
      for (const nsp of ['/own', '/fn']) {
        const socket = open(t, nsp, { origin, cookie }, ['websocket']);
        await expectForbidden(t, socket, `${nsp} Origin ${JSON.stringify(origin)}`);
      }
    }
    assert.deepEqual(called, [], 'the function is called only with real origins');
  });

  test('the own origin is compared canonically: scheme and host case, default port', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io.of('/own'), session, { passport }));
    });
    const cookie = await t.login('alice');
    for (const origin of [t.url, `HTTP://127.0.0.1:${t.port}`]) {
      await expectUser(
        open(t, '/own', { origin, cookie }, ['websocket']),
        'alice',
        `own origin ${origin}`,
      );
    }
    for (const origin of [
      `https://127.0.0.1:${t.port}`,
      `http://127.0.0.1:${t.port + 1 === 65536 ? 1 : t.port + 1}`,
      'http://127.0.0.1',
      `http://localhost:${t.port}`,
      `http://127.0.0.1.evil.example:${t.port}`,
    ]) {
      await expectForbidden(
        t,
        open(t, '/own', { origin, cookie }, ['websocket']),
        `other origin ${origin}`,
      );
    }
    // The Host header names the own origin: a request to "localhost" is own-origin from there.
    await expectUser(
      open(
        t,
        '/own',
        { origin: `http://localhost:${t.port}`, host: `localhost:${t.port}`, cookie },
        ['websocket'],
      ),
      'alice',
      'Host: localhost',
    );
  });

  test("allowedOrigins: ['https://app.example'] lets that origin in, and only it", async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(
        sessionNamespace(io.of('/listed'), session, {
          passport,
          allowedOrigins: ['https://app.example'],
        }),
      );
      reporting(
        sessionNamespace(io.of('/listed-loosely'), session, {
          passport,
          // Case and a trailing slash are accepted in the list and compared canonically.
          allowedOrigins: ['HTTPS://App.Example/', 'http://localhost:3000'],
        }),
      );
    });
    const cookie = await t.login('alice');
    for (const nsp of ['/listed', '/listed-loosely']) {
      for (const origin of [
        'https://app.example',
        'HTTPS://APP.EXAMPLE',
        'https://app.example:443',
      ]) {
        await expectUser(
          open(t, nsp, { origin, cookie }, ['websocket']),
          'alice',
          `${nsp} ${origin}`,
        );
      }
      for (const origin of [
        'https://evil.example',
        'http://app.example',
        'https://app.example:8443',
        'https://sub.app.example',
        'https://app.example.evil.example',
        t.url, // with a list, the own origin is not implicitly allowed
        'null',
      ]) {
        await expectForbidden(
          t,
          open(t, nsp, { origin, cookie }, ['websocket']),
          `${nsp} ${origin}`,
        );
      }
    }
    await expectUser(
      open(t, '/listed-loosely', { origin: 'http://localhost:3000', cookie }, ['polling']),
      'alice',
      'second listed origin, polling',
    );
  });

  test('allowedOrigins as a function: gets the canonical origin and the request; only true allows', async (tc) => {
    const calls: { origin: string; url: string | undefined }[] = [];
    const t = await start(tc, ({ io, session, passport }) => {
      const check = (origin: string, req: IncomingMessage): boolean => {
        calls.push({ origin, url: req.url });
        if (origin === 'https://throws.example') throw new Error('origin check bug');
        // A truthy non-boolean is not `true`: refused.
        if (origin === 'https://truthy.example') return 'yes' as unknown as boolean;
        return origin.endsWith('.trusted.example');
      };
      reporting(sessionNamespace(io.of('/fn'), session, { passport, allowedOrigins: check }));
    });
    const cookie = await t.login('bob');
    await expectUser(
      open(t, '/fn', { origin: 'HTTPS://A.Trusted.Example:443', cookie }, ['websocket']),
      'bob',
      'function allows',
    );
    const [first] = calls;
    assert.ok(first, 'the function was called');
    assert.equal(first.origin, 'https://a.trusted.example', 'canonical origin');
    assert.match(first.url ?? '', /^\/socket\.io\//, 'the handshake request');
    for (const origin of [
      'https://trusted.example.evil.example',
      'https://throws.example',
      'https://truthy.example',
    ]) {
      await expectForbidden(t, open(t, '/fn', { origin, cookie }, ['websocket']), origin);
    }
    assert.equal(calls.length, 4);
  });

  test('a dynamic namespace: every child is checked', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(
        sessionNamespace(io.of(/^\/tenant-\w+$/), session, {
          passport,
          allowedOrigins: ['https://app.example'],
        }),
      );
    });
    const cookie = await t.login('alice');
    await expectForbidden(
      t,
      open(t, '/tenant-acme', { origin: 'https://evil.example', cookie }, ['websocket']),
      'child of a dynamic namespace',
    );
    await expectUser(
      open(t, '/tenant-acme', { origin: 'https://app.example', cookie }, ['websocket']),
      'alice',
      'allowed origin on a child',
    );
  });
});

describe('origin check: behind a proxy', () => {
  const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example' };

  test('trust proxy: X-Forwarded-Proto and X-Forwarded-Host make https://app.example the own origin', async (tc) => {
    const t = await start(
      tc,
      ({ io, session, passport, app }) => {
        reporting(sessionNamespace(io.of('/proxied'), session, { passport, app }));
      },
      {
        configureApp: (app) => {
          app.set('trust proxy', true);
        },
      },
    );
    const cookie = await t.login('alice');
    for (const transports of [['websocket'], ['polling']] as Transports[]) {
      await expectUser(
        open(t, '/proxied', { ...forwarded, origin: 'https://app.example', cookie }, transports),
        'alice',
        `forwarded own origin over ${transports.join()}`,
      );
    }
    // The first value of a list is the client-facing one.
    await expectUser(
      open(
        t,
        '/proxied',
        {
          'x-forwarded-proto': 'https, http',
          'x-forwarded-host': 'app.example, internal:8080',
          origin: 'https://app.example',
          cookie,
        },
        ['websocket'],
      ),
      'alice',
      'forwarded lists',
    );
    // The proxy's view replaces the socket's: the raw address is no longer the own origin.
    await expectForbidden(
      t,
      open(t, '/proxied', { ...forwarded, origin: t.url, cookie }, ['websocket']),
      'raw origin when the proxy says otherwise',
    );
    await expectForbidden(
      t,
      open(t, '/proxied', { ...forwarded, origin: 'http://app.example', cookie }, ['websocket']),
      'forwarded scheme is https',
    );
    // No forwarded headers: the request's own scheme and Host.
    await expectUser(
      open(t, '/proxied', { origin: t.url, cookie }, ['websocket']),
      'alice',
      'direct',
    );
  });

  test('trust proxy on a hop that is not the peer: forwarded headers are ignored', async (tc) => {
    const t = await start(
      tc,
      ({ io, session, passport, app }) => {
        reporting(sessionNamespace(io.of('/proxied'), session, { passport, app }));
      },
      {
        configureApp: (app) => {
          app.set('trust proxy', '10.0.0.1'); // our clients come from 127.0.0.1
        },
      },
    );
    const cookie = await t.login('alice');
    await expectForbidden(
      t,
      open(t, '/proxied', { ...forwarded, origin: 'https://app.example', cookie }, ['websocket']),
      'untrusted peer',
    );
    await expectUser(
      open(t, '/proxied', { ...forwarded, origin: t.url, cookie }, ['websocket']),
      'alice',
      'own origin',
    );
  });

  test('without trust proxy (app or default app), forwarded headers are ignored', async (tc) => {
    const t = await start(tc, ({ io, session, passport, app }) => {
      reporting(sessionNamespace(io.of('/with-app'), session, { passport, app }));
      reporting(sessionNamespace(io.of('/default-app'), session, { passport }));
    });
    const cookie = await t.login('alice');
    for (const nsp of ['/with-app', '/default-app']) {
      await expectForbidden(
        t,
        open(t, nsp, { ...forwarded, origin: 'https://app.example', cookie }, ['websocket']),
        `${nsp}: forged forwarded headers`,
      );
      await expectUser(
        open(t, nsp, { ...forwarded, origin: t.url, cookie }, ['websocket']),
        'alice',
        `${nsp}: own origin despite forwarded headers`,
      );
    }
  });
});

describe('origin check: clients that send no Origin', () => {
  test('allowed by default (Node clients); requireOrigin: true refuses them before any store read', async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      reporting(sessionNamespace(io.of('/default'), session, { passport }));
      reporting(sessionNamespace(io.of('/strict'), session, { passport, requireOrigin: true }));
    });
    const cookie = await t.login('alice');
    for (const transports of [['websocket'], ['polling']] as Transports[]) {
      await expectUser(open(t, '/default', { cookie }, transports), 'alice', 'no Origin, default');
      await expectForbidden(t, open(t, '/strict', { cookie }, transports), 'no Origin, strict');
      await expectUser(
        open(t, '/strict', { cookie, origin: t.url }, transports),
        'alice',
        'own Origin, strict',
      );
    }
    await expectForbidden(
      t,
      open(t, '/strict', { cookie, origin: 'https://evil.example' }, ['websocket']),
      'evil Origin, strict',
    );
  });
});

describe('origin check: setup errors', () => {
  const io = new Server();
  const sessionMiddleware = session({ secret: 's', resave: false, saveUninitialized: false });
  const passport = new Passport();
  // Never attached to an HTTP server: nothing to close.
  let n = 0;
  const setup = (options: Record<string, unknown>): void => {
    sessionNamespace(io.of(`/setup-${++n}`), sessionMiddleware, { passport, ...options });
  };

  test('allowedOrigins must be exact origins, in an array, or a function', () => {
    const bad: unknown[] = [
      'https://app.example', // a string, not an array
      {},
      42,
      null,
      true,
      ['example.com'], // no scheme
      ['app.example:443'],
      ['https://app.example/path'], // a path
      ['https://app.example?x=1'],
      ['https://app.example#x'],
      ['null'],
      [''],
      [42],
      [undefined],
      ['https://app.example', 'example.com'],
    ];
    for (const allowedOrigins of bad) {
      assert.throws(
        () => {
          setup({ allowedOrigins });
        },
        (error: unknown) =>
          error instanceof TypeError &&
          /^sessionNamespace: options\.allowedOrigins must /.test(error.message),
        `allowedOrigins ${JSON.stringify(allowedOrigins)}`,
      );
    }
    for (const allowedOrigins of [
      [],
      ['https://app.example'],
      ['https://app.example/'],
      ['HTTPS://App.Example'],
      ['http://localhost:3000', 'https://app.example:8443'],
      () => true,
      undefined,
    ]) {
      assert.doesNotThrow(
        () => {
          setup({ allowedOrigins });
        },
        `allowedOrigins ${String(allowedOrigins)}`,
      );
    }
  });

  test('requireOrigin must be a boolean', () => {
    for (const requireOrigin of ['yes', 1, null, {}]) {
      assert.throws(
        () => {
          setup({ requireOrigin });
        },
        (error: unknown) =>
          error instanceof TypeError &&
          /^sessionNamespace: options\.requireOrigin/.test(error.message),
        `requireOrigin ${JSON.stringify(requireOrigin)}`,
      );
    }
  });
});
