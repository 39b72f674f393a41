// Hostile Cookie headers, each case a real socket.io-client connection: see spec/support/hostile.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  assertDocumented,
  assertHealthy,
  assertOutcome,
  attempt,
  attemptCase,
  checkCases,
  cookieValue,
  CURRENT_SECRET,
  describeHostile,
  type Expected,
  expire,
  guardedPrivate,
  headerChar,
  headerString,
  MAX_COOKIE_HEADER,
  OLD_SECRET,
  sidOf,
  sign,
  startHostile,
  unauthorized,
  UNKNOWN_SECRET,
} from '../support/hostile.js';

describeHostile('cookies', 'Cookie headers', () => {
  test('Cookie headers: malformed, huge, many cookies, non-UTF-8 bytes, wrong or rotated signatures, unknown or expired sessions', async (tc) => {
    const server = await startHostile(tc, guardedPrivate);
    const { t } = server;
    const aliceCookie = await t.login('alice');
    const aliceSid = sidOf(aliceCookie);
    const bobSid = sidOf(await t.login('bob'));
    const expiredSid = sidOf(await t.login('alice'));
    await expire(t, expiredSid);
    const users = new Map([
      [aliceSid, 'alice'],
      [bobSid, 'bob'],
    ]);

    // A model of express-session + Passport for one connect.sid value, as decoded: who the
    // socket is, and whether the signature is good (the only case that costs a store read).
    const model = (value: string): { user: string | null; storeRead: boolean } => {
      if (!value.startsWith('s:')) return { user: null, storeRead: false };
      const signed = value.slice(2);
      const sid = signed.slice(0, signed.lastIndexOf('.'));
      const good = [CURRENT_SECRET, OLD_SECRET].some((secret) => sign(sid, secret) === signed);
      return { user: good ? (users.get(sid) ?? null) : null, storeRead: good };
    };

    // The value of a connect.sid cookie, before it is encoded in the header.
    const aliceValue = `s:${sign(aliceSid, CURRENT_SECRET)}`;
    const sidValue = fc.oneof(
      { weight: 3, arbitrary: fc.constant(aliceValue) },
      { weight: 2, arbitrary: fc.constant(`s:${sign(bobSid, OLD_SECRET)}`) }, // rotated secret
      fc.constant(`s:${sign(aliceSid, UNKNOWN_SECRET)}`),
      fc.constant(`s:${sign(bobSid, UNKNOWN_SECRET)}`),
      fc.constant(`s:${sign(expiredSid, CURRENT_SECRET)}`),
      fc.constant(aliceSid), // unsigned
      fc.constant(`s:${aliceSid}`), // no signature
      fc.constant(`s:${aliceSid}.`),
      fc.constant(`s:${sign(aliceSid, CURRENT_SECRET)}x`),
      fc.constant(` s:${sign(aliceSid, CURRENT_SECRET)}`),
      // An unknown session ID, properly signed.
      fc
        .string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 40 })
        .filter((sid) => !sid.includes(';'))
        .map((sid) => `s:${sign(sid, CURRENT_SECRET)}`),
      // Alice's cookie with one character changed.
      fc
        .tuple(
          fc.nat(),
          headerChar.filter((c) => c !== ';'),
        )
        .map(([at, c]) => {
          const i = at % aliceValue.length;
          return aliceValue.slice(0, i) + c + aliceValue.slice(i + 1);
        }),
      headerString(60, ';'),
    );
    // How the value is written in the header. None holds a ';', so each stays one cookie.
    const encodedSid = fc
      .tuple(sidValue, fc.constantFrom('plain', 'uri', 'quoted', 'spaced'))
      .map(([value, how]) =>
        how === 'uri'
          ? encodeURIComponent(value)
          : how === 'quoted'
            ? `"${value}"`
            : how === 'spaced'
              ? ` \t${value} `
              : value,
      );
    type Pair = { kind: 'sid'; text: string; written: string } | { kind: 'other'; text: string };
    const sidName = fc.constantFrom(
      'connect.sid',
      ' connect.sid',
      'connect.sid\t',
      '  connect.sid ',
    );
    const decoyName = fc.constantFrom(
      'Connect.sid',
      'CONNECT.SID',
      'connect_sid',
      'connect.sid2',
      'xconnect.sid',
      'connect.si',
      'connect%2Esid',
      '"connect.sid"',
    );
    const pair: fc.Arbitrary<Pair> = fc.oneof(
      { weight: 2, arbitrary: fc.tuple(sidName, encodedSid).map(([name, v]) => sidPair(name, v)) },
      { weight: 4, arbitrary: fc.tuple(otherName(), headerString(40, ';')).map(otherPair) },
      fc.tuple(decoyName, encodedSid).map(otherPair),
      // A segment without '=': cookie.parse skips it.
      headerString(20, ';=').map((text): Pair => ({ kind: 'other', text })),
      // A huge value (several KB) of one character.
      fc
        .tuple(
          fc.integer({ min: 500, max: 9000 }),
          headerChar.filter((c) => c !== ';'),
        )
        .map(([n, c]) => otherPair(['big', c.repeat(n)])),
    );
    function otherName(): fc.Arbitrary<string> {
      return headerString(12, ';=').filter(
        (name) => name.replace(/^[ \t]+|[ \t]+$/g, '') !== 'connect.sid',
      );
    }
    function otherPair([name, value]: [string, string]): Pair {
      return { kind: 'other', text: `${name}=${value}` };
    }
    function sidPair(name: string, written: string): Pair {
      return { kind: 'sid', text: `${name}=${written}`, written };
    }
    const header = fc.oneof(
      // Well-formed lists of cookies: up to 150 of them.
      {
        weight: 4,
        arbitrary: fc
          .tuple(fc.array(pair, { maxLength: 150 }), fc.constantFrom('; ', ';', ' ; ', ';\t', ';;'))
          .map(([pairs, separator]) => {
            const kept = [...pairs];
            const join = (): string => kept.map((p) => p.text).join(separator);
            while (kept.length > 0 && join().length > MAX_COOKIE_HEADER) kept.pop();
            return { header: join(), first: kept.find((p) => p.kind === 'sid') };
          }),
      },
      // Anything at all, as long as it does not name connect.sid.
      {
        weight: 1,
        arbitrary: headerString(300)
          .filter((h) => !h.includes('connect.sid'))
          .map((h) => ({ header: h, first: undefined })),
      },
    );

    await checkCases('cookies', header, async ({ header: cookie, first }) => {
      const gets = t.store.gets;
      const outcome = await attemptCase('cookies', t.url, '/private', { headers: { cookie } });
      assertDocumented(outcome);
      const { user, storeRead } =
        first?.kind === 'sid'
          ? model(cookieValue(first.written))
          : { user: null, storeRead: false };
      assertOutcome(
        outcome,
        user === null ? unauthorized() : { kind: 'connected', user },
        `cookie ${JSON.stringify(cookie.slice(0, 300))}`,
      );
      // A bad signature costs no store read; a good one, exactly one.
      assert.equal(t.store.gets - gets, storeRead ? 1 : 0, 'store reads');
    });
    await assertHealthy(server, {
      nsp: '/private',
      headers: { cookie: aliceCookie },
      user: 'alice',
    });
  });

  test('Cookie headers, by example: rotated secret accepted, unknown secret / expired / unknown ID are no session', async (tc) => {
    const server = await startHostile(tc, guardedPrivate);
    const { t } = server;
    const aliceSid = sidOf(await t.login('alice'));
    const expiredSid = sidOf(await t.login('bob'));
    await expire(t, expiredSid);
    const cookie = (value: string): Record<string, string> => ({
      cookie: `connect.sid=${encodeURIComponent(value)}`,
    });
    const cases: [string, string, Expected, number][] = [
      [
        'current secret',
        `s:${sign(aliceSid, CURRENT_SECRET)}`,
        { kind: 'connected', user: 'alice' },
        1,
      ],
      [
        'rotated (old) secret',
        `s:${sign(aliceSid, OLD_SECRET)}`,
        { kind: 'connected', user: 'alice' },
        1,
      ],
      ['unknown secret', `s:${sign(aliceSid, UNKNOWN_SECRET)}`, unauthorized(), 0],
      ['unsigned', aliceSid, unauthorized(), 0],
      ['expired session', `s:${sign(expiredSid, CURRENT_SECRET)}`, unauthorized(), 1],
      ['unknown session ID', `s:${sign('no-such-session', CURRENT_SECRET)}`, unauthorized(), 1],
    ];
    for (const [what, value, expected, reads] of cases) {
      const gets = t.store.gets;
      assertOutcome(await attempt(t.url, '/private', { headers: cookie(value) }), expected, what);
      assert.equal(t.store.gets - gets, reads, `${what}: store reads`);
    }
    await assertHealthy(server, {
      nsp: '/private',
      headers: cookie(`s:${sign(aliceSid, OLD_SECRET)}`),
      user: 'alice',
    });
  });
});
