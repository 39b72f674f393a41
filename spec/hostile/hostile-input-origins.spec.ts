// Hostile Origin headers, each case a real socket.io-client connection: see spec/support/hostile.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ERR_ORIGIN_FORBIDDEN, sessionNamespace } from '../../lib/index.js';
import {
  assertHealthy,
  assertOutcome,
  attemptCase,
  checkCases,
  describeHostile,
  greet,
  headerString,
  startHostile,
} from '../support/hostile.js';

describeHostile('origins', 'Origin headers', () => {
  test('Origin headers: only the allowed origins connect, before any store read', async (tc) => {
    const listed = ['https://app.example', 'http://localhost:3000'];
    const server = await startHostile(tc, ({ io, session, passport }, onError) => {
      greet(sessionNamespace(io.of('/own'), session, { passport, onError }));
      greet(
        sessionNamespace(io.of('/listed'), session, { passport, onError, allowedOrigins: listed }),
      );
      greet(
        sessionNamespace(io.of('/strict'), session, {
          passport,
          onError,
          allowedOrigins: listed,
          requireOrigin: true,
        }),
      );
    });
    const { t } = server;
    const cookie = await t.login('alice');
    const allowed: Record<string, readonly string[]> = {
      '/own': [t.url],
      '/listed': listed,
      '/strict': listed,
    };
    // The WHATWG origin of the header ('null' is none): what a browser would have sent.
    const originOf = (header: string): string | undefined => {
      try {
        const { origin } = new URL(header);
        return origin === 'null' ? undefined : origin;
      } catch {
        return undefined;
      }
    };

    const structured = fc
      .tuple(
        fc.constantFrom(
          'http',
          'https',
          'HTTP',
          'HttPs',
          'ws',
          'wss',
          'file',
          'ftp',
          'data',
          'javascript',
          '',
        ),
        fc.constantFrom('', 'user@', 'user:pw@', '@'),
        fc.oneof(
          fc.constantFrom(
            '127.0.0.1',
            '127.1',
            '2130706433',
            'localhost',
            'LocalHost',
            'app.example',
            'APP.EXAMPLE',
            'app.example.',
            'evil.example',
            'app.example.evil.example',
            'sub.app.example',
            '[::1]',
            '',
          ),
          fc.domain(),
        ),
        fc.oneof(
          fc.constantFrom('', ':80', ':443', ':3000', `:${t.port}`, ':', ':0', ':65536'),
          fc.integer({ min: 1, max: 65535 }).map((port) => `:${port}`),
        ),
        fc.constantFrom('', '/', '/path', '?q', '#f', ' ', '\t', '/\u00e9'),
      )
      .map(
        ([scheme, userinfo, host, port, suffix]) =>
          `${scheme}://${userinfo}${host}${port}${suffix}`,
      );
    const origin = fc.oneof(
      fc.constant(undefined),
      fc.constantFrom('null', 'NULL', '', ' ', t.url, ...listed, 'https://evil.example'),
      structured,
      headerString(80),
    );

    const nspAndOrigin = fc.tuple(fc.constantFrom('/own', '/listed', '/strict'), origin);
    await checkCases('origins', nspAndOrigin, async ([nsp, header]) => {
      const gets = t.store.gets;
      const headers = { cookie, ...(header !== undefined && { origin: header }) };
      const outcome = await attemptCase('origins', t.url, nsp, { headers });
      const canonical = header === undefined ? undefined : originOf(header);
      const ok =
        header === undefined
          ? nsp !== '/strict'
          : canonical !== undefined && (allowed[nsp] ?? []).includes(canonical);
      assertOutcome(
        outcome,
        ok
          ? { kind: 'connected', user: 'alice' }
          : { kind: 'refused', code: ERR_ORIGIN_FORBIDDEN, status: 403 },
        `${nsp} Origin ${JSON.stringify(header)}`,
      );
      assert.equal(t.store.gets - gets, ok ? 1 : 0, 'refused before any store read');
    });
    await assertHealthy(server, {
      nsp: '/strict',
      headers: { cookie, origin: 'https://app.example' },
      user: 'alice',
    });
  });
});
