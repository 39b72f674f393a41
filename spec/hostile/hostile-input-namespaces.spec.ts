// Hostile namespace names, each case a real socket.io-client connection: see
// spec/support/hostile.ts.
import { test } from 'node:test';
import fc from 'fast-check';
import { ERR_FORBIDDEN, requireAuth, sessionNamespace } from '../../lib/index.js';
import {
  assertHealthy,
  assertOutcome,
  attemptCase,
  checkCases,
  describeHostile,
  type Expected,
  greet,
  startHostile,
  unauthorized,
} from '../support/hostile.js';

describeHostile('namespaces', 'namespace names', () => {
  test('namespace names: a guarded dynamic namespace /^\\/tenant-\\w+$/, arbitrary names', async (tc) => {
    const tenantPattern = /^\/tenant-\w+$/;
    const server = await startHostile(tc, ({ io, session, passport }, onError) => {
      const tenants = requireAuth(
        sessionNamespace(io.of(tenantPattern), session, { passport, onError }),
        {
          authorize: (user, socket) =>
            user.tenants.includes(socket.nsp.name.slice('/tenant-'.length)),
          onError,
        },
      );
      greet(sessionNamespace(io.of('/'), session, { passport, onError }));
      greet(tenants);
    });
    const { t } = server;
    const cookies = { alice: await t.login('alice'), bob: await t.login('bob') };
    const tenantsOf: Record<string, readonly string[]> = { alice: ['acme'], bob: ['globex'] };

    // A name as the client sends it: '/' and a path. A ',' ends the name in Socket.IO's packet
    // encoding, so a name holding one cannot be sent (Socket.IO's parser, not this package).
    // Lone surrogates are left out too: they do not survive UTF-8, so the server would answer
    // for another name than the client waits on.
    const nameChar = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom('a', 'z', 'A', '0', '9', '_', '-', '/', '.', ' ') },
      { weight: 4, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
      {
        weight: 1,
        arbitrary: fc.constantFrom('\n', '\t', '\0', '\u00e9', '\uff41', '\u{1f600}', '%2F', '..'),
      },
    );
    const path = fc.array(nameChar, { maxLength: 24 }).map((parts) => parts.join(''));
    const name = fc
      .oneof(
        path.map((p) => `/${p}`),
        path.map((p) => `/tenant-${p}`),
        fc.stringMatching(/^\w{1,16}$/).map((w) => `/tenant-${w}`),
        fc.constantFrom(
          '/',
          '/tenant-acme',
          '/tenant-globex',
          '/tenant-',
          '/tenant-acme/',
          '/tenant-acme\n',
          '/Tenant-acme',
          '//tenant-acme',
          '/tenant-ac me',
          '/tenant-acme/../admin',
          '/admin',
          '/socket.io',
        ),
      )
      .filter((n) => !n.includes(','));

    const whoAndName = fc.tuple(fc.constantFrom('alice', 'bob', null), name);
    await checkCases('namespaces', whoAndName, async ([who, nsp]) => {
      const outcome = await attemptCase('namespaces', t.url, nsp, {
        ...(who !== null && { headers: { cookie: cookies[who] } }),
      });
      let expected: Expected;
      if (nsp === '/') expected = { kind: 'connected', user: who };
      else if (!tenantPattern.test(nsp)) expected = { kind: 'invalid namespace' };
      else if (who === null) expected = unauthorized();
      else if ((tenantsOf[who] ?? []).includes(nsp.slice('/tenant-'.length))) {
        expected = { kind: 'connected', user: who };
      } else expected = { kind: 'refused', code: ERR_FORBIDDEN, status: 403 };
      assertOutcome(outcome, expected, `${who ?? 'anonymous'} on ${JSON.stringify(nsp)}`);
    });
    await assertHealthy(server, {
      nsp: '/tenant-acme',
      headers: { cookie: cookies.alice },
      user: 'alice',
    });
  });
});
