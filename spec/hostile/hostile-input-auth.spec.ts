// Hostile handshake `auth` payloads, each case a real socket.io-client connection: see
// spec/support/hostile.ts.
import { test } from 'node:test';
import fc from 'fast-check';
import {
  assertHealthy,
  assertOutcome,
  attemptCase,
  checkCases,
  describeHostile,
  guardedPrivate,
  show,
  sidOf,
  startHostile,
  unauthorized,
} from '../support/hostile.js';

describeHostile('auth', 'handshake auth payloads', () => {
  test('handshake auth payloads: arbitrary JSON never authenticates, never breaks the handshake', async (tc) => {
    const server = await startHostile(tc, guardedPrivate);
    const { t } = server;
    const aliceCookie = await t.login('alice');
    const aliceSid = sidOf(aliceCookie);
    // What someone might hope the server takes from `auth` instead of the cookie.
    const forged = fc.constantFrom<Record<string, unknown>>(
      { sessionID: aliceSid },
      { sid: aliceSid, 'connect.sid': aliceCookie },
      { cookie: aliceCookie },
      { headers: { cookie: aliceCookie } },
      { session: { passport: { user: '1' } } },
      { user: { id: '1', username: 'alice', role: 'admin', tenants: ['acme'] } },
      { passport: { user: '1' } },
      JSON.parse('{"__proto__": {"user": {"id": "1"}, "isAuthenticated": true}}') as Record<
        string,
        unknown
      >,
      { constructor: { prototype: { user: '1' } } },
      { toJSON: 'x', then: 'y', valueOf: 1 },
    );
    const keys = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 12 }),
      fc.constantFrom(
        '__proto__',
        'constructor',
        'prototype',
        'sessionID',
        'session',
        'user',
        'cookie',
        'pid',
        'offset',
      ),
    );
    const arbitrary = fc.dictionary(keys, fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' }), {
      maxKeys: 12,
    });
    const auth = fc.oneof(
      forged,
      arbitrary,
      fc.tuple(forged, arbitrary).map(([a, b]) => ({ ...b, ...a })),
    );

    await checkCases('auth', fc.tuple(fc.boolean(), auth), async ([withCookie, payload]) => {
      const outcome = await attemptCase('auth', t.url, '/private', {
        ...(withCookie && { headers: { cookie: aliceCookie } }),
        auth: payload,
      });
      assertOutcome(
        outcome,
        withCookie ? { kind: 'connected', user: 'alice' } : unauthorized(),
        `auth ${show(payload).slice(0, 300)}`,
      );
    });
    await assertHealthy(server, {
      nsp: '/private',
      headers: { cookie: aliceCookie },
      user: 'alice',
    });
  });
});
