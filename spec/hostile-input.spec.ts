// Hostile input, property-based (fast-check): Cookie headers, Origin headers, handshake `auth`
// payloads and namespace names, each case a real socket.io-client connection to a real server.
//
// Every case must end within CASE_BOUND_MS in a connection or a connect_error whose `data.code`
// is one of the package's documented codes, and in the very outcome an independent model of
// express-session, Passport and the origin rule predicts. The one refusal that is not the
// package's is Socket.IO's own, documented `Invalid namespace` (no `data`) for a namespace that
// does not exist. Meanwhile no unhandled rejection and no uncaught exception may happen in the
// process, no handshake may be left pending, no connection may be left open, nothing may reach
// `onError` (no internal error), and the server must still answer a good client afterwards.
//
// Cost: one server per property, reused by all its cases; one case at a time (concurrency 1) with
// a websocket-only client closed as soon as the case is decided: about 2 ms of CPU per case here.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test, type TestContext as NodeTestContext } from 'node:test';
import type { SessionData } from 'express-session';
import fc from 'fast-check';
import type { Namespace, Socket as ServerSocket } from 'socket.io';
import { Manager } from 'socket.io-client';
import {
  ERR_AUTHORIZE_ERROR,
  ERR_FORBIDDEN,
  ERR_MIDDLEWARE_ENDED,
  ERR_MIDDLEWARE_ERROR,
  ERR_MIDDLEWARE_TIMEOUT,
  ERR_ORIGIN_FORBIDDEN,
  ERR_SESSION_UNAVAILABLE,
  ERR_UNAUTHORIZED,
  requireAuth,
  sessionNamespace,
} from '../lib/index.js';
import { waitFor, type ConnectError } from './support/client.js';
import {
  createTestServer,
  type CreateTestServerOptions,
  pendingOf,
  type TestContext,
  type TestServer,
} from './support/server.js';

/** Every code the README documents for `err.data.code`. */
const DOCUMENTED_CODES: ReadonlySet<string> = new Set([
  ERR_UNAUTHORIZED,
  ERR_FORBIDDEN,
  ERR_AUTHORIZE_ERROR,
  ERR_MIDDLEWARE_ENDED,
  ERR_MIDDLEWARE_TIMEOUT,
  ERR_MIDDLEWARE_ERROR,
  ERR_ORIGIN_FORBIDDEN,
  ERR_SESSION_UNAVAILABLE,
]);

/** How long one case may take, from opening the client to its outcome. */
const CASE_BOUND_MS = 5000;

/** Cases per property; 10 500 in all. */
const RUNS = { cookies: 3500, origins: 3000, auth: 2000, namespaces: 2000 };
const MIN_TOTAL_CASES = 10_000;

/**
 * Node's HTTP server refuses a request whose request line and headers exceed 16 KiB
 * (--max-http-header-size, 16384 by default) with 431, before Socket.IO sees it. Generated Cookie
 * headers stay below 12 000 characters so that the rest of the handshake (~300 bytes) fits too:
 * what is tested is the package, not Node's header limit.
 */
const MAX_COOKIE_HEADER = 12_000;

const CURRENT_SECRET = 'spec-secret';
const OLD_SECRET = 'old-secret'; // rotated out, still accepted: secret: [current, old]
const UNKNOWN_SECRET = 'never-configured';

// ---------------------------------------------------------------------------------------------
// The process-wide recorders and the case counter
// ---------------------------------------------------------------------------------------------

const unhandledRejections: unknown[] = [];
const uncaughtExceptions: unknown[] = [];
const onUnhandledRejection = (reason: unknown): void => {
  unhandledRejections.push(reason);
};
const onUncaughtException = (error: unknown): void => {
  uncaughtExceptions.push(error);
};

const casesRun = new Map<string, number>();
function count(property: string): void {
  casesRun.set(property, (casesRun.get(property) ?? 0) + 1);
}

/** How the cases of each property ended, to show that both sides of each rule were exercised. */
const outcomes = new Map<string, Map<string, number>>();
function tally(property: string, outcome: Outcome): Outcome {
  const label =
    outcome.kind === 'connected'
      ? `connected as ${outcome.user ?? 'anonymous'}`
      : outcome.kind === 'refused'
        ? (outcome.data?.code ?? outcome.message)
        : outcome.kind;
  const byLabel = outcomes.get(property) ?? new Map<string, number>();
  byLabel.set(label, (byLabel.get(label) ?? 0) + 1);
  outcomes.set(property, byLabel);
  return outcome;
}

// ---------------------------------------------------------------------------------------------
// Clients and outcomes
// ---------------------------------------------------------------------------------------------

type Outcome =
  | { kind: 'connected'; user: string | null }
  | { kind: 'refused'; message: string; data: ConnectError['data'] }
  | { kind: 'disconnected'; reason: string };

function within<T>(promise: Promise<T>, what: string, ms = CASE_BOUND_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what}: no outcome within ${ms} ms`));
    }, ms);
  });
  return Promise.race([promise, limit]).finally(() => {
    clearTimeout(timer);
  });
}

/**
 * One websocket-only client on its own connection, opening `nsp` (sent as is in the CONNECT
 * packet), closed as soon as the outcome is known. A connected socket's outcome carries the user
 * the server saw: the server's first event, `who`.
 */
async function attempt(
  url: string,
  nsp: string,
  options: { headers?: Record<string, string>; auth?: Record<string, unknown> } = {},
): Promise<Outcome> {
  const manager = new Manager(url, {
    transports: ['websocket'],
    reconnection: false,
    timeout: CASE_BOUND_MS,
    ...(options.headers !== undefined && { extraHeaders: options.headers }),
  });
  const socket = manager.socket(nsp, options.auth !== undefined ? { auth: options.auth } : {});
  try {
    return await within(
      new Promise<Outcome>((resolve) => {
        socket.once('who', (user: string | null) => {
          resolve({ kind: 'connected', user });
        });
        socket.once('connect_error', (err: ConnectError) => {
          resolve({ kind: 'refused', message: err.message, data: err.data });
        });
        socket.once('disconnect', (reason: string) => {
          resolve({ kind: 'disconnected', reason });
        });
      }),
      `nsp ${JSON.stringify(nsp)}`,
    );
  } finally {
    socket.disconnect();
    manager.engine.close();
  }
}

/** The outcome is a connection, a documented refusal, or Socket.IO's `Invalid namespace`. */
function assertDocumented(outcome: Outcome): void {
  if (outcome.kind === 'connected') return;
  assert.equal(outcome.kind, 'refused', `neither a connection nor a refusal: ${show(outcome)}`);
  if (outcome.data === undefined) {
    // Socket.IO's own refusal of a namespace that does not exist: { message } and no data.
    assert.equal(outcome.message, 'Invalid namespace', show(outcome));
    return;
  }
  const { code, status } = outcome.data;
  assert.ok(code !== undefined && DOCUMENTED_CODES.has(code), `undocumented: ${show(outcome)}`);
  assert.equal(typeof status, 'number', show(outcome));
}

type Expected =
  | { kind: 'connected'; user: string | null }
  | { kind: 'refused'; code: string; status: number }
  | { kind: 'invalid namespace' };

function assertOutcome(outcome: Outcome, expected: Expected, what: string): void {
  assertDocumented(outcome);
  const seen =
    outcome.kind === 'connected'
      ? { kind: 'connected', user: outcome.user }
      : outcome.kind === 'refused' && outcome.data === undefined
        ? { kind: 'invalid namespace' }
        : outcome.kind === 'refused'
          ? { kind: 'refused', code: outcome.data?.code, status: outcome.data?.status }
          : outcome;
  assert.deepEqual(seen, expected, what);
}

function show(value: unknown): string {
  const text = JSON.stringify(value) as string | undefined;
  return text ?? String(value);
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

interface Hostile {
  t: TestServer;
  /** Errors that reached onError: internal failures, which no input should cause. */
  reported: unknown[];
}

/** Tells a connected client who it is, and answers `ping`. */
function greet(nsp: Namespace): Namespace {
  nsp.on('connection', (socket: ServerSocket) => {
    socket.emit('who', socket.request.user?.username ?? null);
    socket.on('ping', (cb: (answer: string) => void) => {
      cb('pong');
    });
  });
  return nsp;
}

async function startHostile(
  tc: NodeTestContext,
  setup: (ctx: TestContext, onError: (error: unknown) => void) => void,
  options: CreateTestServerOptions = {},
): Promise<Hostile> {
  const reported: unknown[] = [];
  const t = await createTestServer(
    (ctx) => {
      setup(ctx, (error) => {
        reported.push(error);
      });
    },
    {
      ...options,
      sessionOptions: { secret: [CURRENT_SECRET, OLD_SECRET], ...options.sessionOptions },
    },
  );
  tc.after(() => t.cleanup());
  return { t, reported };
}

/** After a property: nothing pending or open, nothing reported, and a good client still served. */
async function assertHealthy(
  server: Hostile,
  good: { nsp: string; headers: Record<string, string>; user: string },
): Promise<void> {
  const { t } = server;
  await waitFor(() => t.io.engine.clientsCount === 0, 10_000, 'every connection to close');
  // Every namespace, the children a dynamic namespace made included.
  const all = (t.io as unknown as { _nsps: Map<string, Namespace> })._nsps;
  for (const nsp of all.values()) {
    assert.equal(pendingOf(nsp), 0, `no handshake left pending on ${JSON.stringify(nsp.name)}`);
    assert.equal(nsp.sockets.size, 0, `no socket left on ${JSON.stringify(nsp.name)}`);
    // The session and user rooms joined during the handshake are gone with the sockets, the
    // refused ones included.
    assert.deepEqual(
      [...nsp.adapter.rooms.keys()],
      [],
      `no room left on ${JSON.stringify(nsp.name)}`,
    );
  }
  assert.deepEqual(server.reported, [], 'no input made an internal error');
  assert.deepEqual(unhandledRejections, [], 'no unhandled rejection');
  assert.deepEqual(uncaughtExceptions, [], 'no uncaught exception');
  const manager = new Manager(t.url, {
    transports: ['websocket'],
    reconnection: false,
    extraHeaders: good.headers,
  });
  const socket = manager.socket(good.nsp);
  try {
    const user = await within(
      new Promise<unknown>((resolve, reject) => {
        socket.once('who', resolve);
        socket.once('connect_error', reject);
      }),
      'a good client',
    );
    assert.equal(user, good.user);
    assert.equal(await socket.timeout(CASE_BOUND_MS).emitWithAck('ping'), 'pong');
  } finally {
    socket.disconnect();
  }
}

/** `cookie-signature`'s sign(), which express-session uses. */
function sign(value: string, secret: string): string {
  const mac = createHmac('sha256', secret).update(value).digest('base64').replace(/=+$/, '');
  return `${value}.${mac}`;
}

function sidOf(cookie: string): string {
  const value = decodeURIComponent(/connect\.sid=([^;]+)/.exec(cookie)?.[1] ?? '');
  return value.slice(2, value.lastIndexOf('.'));
}

/**
 * What `cookie.parse` (express-session's) makes of one cookie's written value: blanks (space, tab)
 * trimmed, one pair of surrounding double quotes removed, then URI-decoded if that succeeds.
 */
function cookieValue(written: string): string {
  let value = written.replace(/^[ \t]+|[ \t]+$/g, '');
  if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
  if (!value.includes('%')) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Makes a stored session expired (MemoryStore drops it when next read). */
async function expire(t: TestServer, sid: string): Promise<void> {
  const stored = await new Promise<SessionData>((resolve, reject) => {
    t.store.get(sid, (err, session) => {
      if (err || !session) reject(new Error(`no session ${sid}`));
      else resolve(session);
    });
  });
  const past = new Date(Date.now() - 60_000);
  // MemoryStore hands out a copy parsed from JSON: its cookie is a plain object.
  const cookie = stored.cookie as unknown as Record<string, unknown>;
  const expired = { ...stored, cookie: { ...cookie, expires: past.toISOString() } } as unknown;
  await new Promise<void>((resolve) => {
    t.store.set(sid, expired as SessionData, () => {
      resolve();
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

/**
 * A character Node lets a client put in a header value: HTAB, visible ASCII and space, and
 * obs-text 0x80–0xFF, sent as single bytes: most sequences of them are not valid UTF-8.
 */
const headerChar = fc
  .oneof(
    { weight: 12, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
    { weight: 1, arbitrary: fc.constant(0x09) },
    { weight: 4, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
  )
  .map((code) => String.fromCharCode(code));

const headerString = (maxLength: number, exclude = ''): fc.Arbitrary<string> =>
  fc.string({
    unit: exclude === '' ? headerChar : headerChar.filter((c) => !exclude.includes(c)),
    maxLength,
  });

// ---------------------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------------------

describe('hostile input (fast-check, real socket.io-client connections)', () => {
  before(() => {
    process.on('unhandledRejection', onUnhandledRejection);
    process.on('uncaughtException', onUncaughtException);
  });
  after(() => {
    process.off('unhandledRejection', onUnhandledRejection);
    process.off('uncaughtException', onUncaughtException);
  });

  test('Cookie headers: malformed, huge, many cookies, non-UTF-8 bytes, wrong or rotated signatures, unknown or expired sessions', async (tc) => {
    const server = await startHostile(tc, ({ io, session, passport }, onError) => {
      greet(requireAuth(sessionNamespace(io.of('/private'), session, { passport, onError })));
    });
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

    await fc.assert(
      fc.asyncProperty(header, async ({ header: cookie, first }) => {
        count('cookies');
        const gets = t.store.gets;
        const outcome = tally('cookies', await attempt(t.url, '/private', { headers: { cookie } }));
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
      }),
      { numRuns: RUNS.cookies, interruptAfterTimeLimit: 240_000, markInterruptAsFailure: true },
    );
    await assertHealthy(server, {
      nsp: '/private',
      headers: { cookie: aliceCookie },
      user: 'alice',
    });
  });

  test('Cookie headers, by example: rotated secret accepted, unknown secret / expired / unknown ID are no session', async (tc) => {
    const server = await startHostile(tc, ({ io, session, passport }, onError) => {
      greet(requireAuth(sessionNamespace(io.of('/private'), session, { passport, onError })));
    });
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

    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/own', '/listed', '/strict'),
        origin,
        async (nsp, header) => {
          count('origins');
          const gets = t.store.gets;
          const headers = { cookie, ...(header !== undefined && { origin: header }) };
          const outcome = tally('origins', await attempt(t.url, nsp, { headers }));
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
        },
      ),
      { numRuns: RUNS.origins, interruptAfterTimeLimit: 240_000, markInterruptAsFailure: true },
    );
    await assertHealthy(server, {
      nsp: '/strict',
      headers: { cookie, origin: 'https://app.example' },
      user: 'alice',
    });
  });

  test('handshake auth payloads: arbitrary JSON never authenticates, never breaks the handshake', async (tc) => {
    const server = await startHostile(tc, ({ io, session, passport }, onError) => {
      greet(requireAuth(sessionNamespace(io.of('/private'), session, { passport, onError })));
    });
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

    await fc.assert(
      fc.asyncProperty(fc.boolean(), auth, async (withCookie, payload) => {
        count('auth');
        const outcome = tally(
          'auth',
          await attempt(t.url, '/private', {
            ...(withCookie && { headers: { cookie: aliceCookie } }),
            auth: payload,
          }),
        );
        assertOutcome(
          outcome,
          withCookie ? { kind: 'connected', user: 'alice' } : unauthorized(),
          `auth ${show(payload).slice(0, 300)}`,
        );
      }),
      { numRuns: RUNS.auth, interruptAfterTimeLimit: 240_000, markInterruptAsFailure: true },
    );
    await assertHealthy(server, {
      nsp: '/private',
      headers: { cookie: aliceCookie },
      user: 'alice',
    });
  });

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

    await fc.assert(
      fc.asyncProperty(fc.constantFrom('alice', 'bob', null), name, async (who, nsp) => {
        count('namespaces');
        const outcome = tally(
          'namespaces',
          await attempt(t.url, nsp, {
            ...(who !== null && { headers: { cookie: cookies[who] } }),
          }),
        );
        let expected: Expected;
        if (nsp === '/') expected = { kind: 'connected', user: who };
        else if (!tenantPattern.test(nsp)) expected = { kind: 'invalid namespace' };
        else if (who === null) expected = unauthorized();
        else if ((tenantsOf[who] ?? []).includes(nsp.slice('/tenant-'.length))) {
          expected = { kind: 'connected', user: who };
        } else expected = { kind: 'refused', code: ERR_FORBIDDEN, status: 403 };
        assertOutcome(outcome, expected, `${who ?? 'anonymous'} on ${JSON.stringify(nsp)}`);
      }),
      { numRuns: RUNS.namespaces, interruptAfterTimeLimit: 240_000, markInterruptAsFailure: true },
    );
    await assertHealthy(server, {
      nsp: '/tenant-acme',
      headers: { cookie: cookies.alice },
      user: 'alice',
    });
  });

  test(`at least ${MIN_TOTAL_CASES} cases in all; no unhandled rejection, no uncaught exception`, () => {
    const total = [...casesRun.values()].reduce((a, b) => a + b, 0);
    const detail = [...casesRun].map(([property, n]) => `${property} ${n}`).join(', ');
    console.log(`hostile-input: ${total} generated cases run (${detail})`);
    for (const [property, byLabel] of outcomes) {
      console.log(`  ${property}: ${[...byLabel].map(([label, n]) => `${label} ${n}`).join(', ')}`);
    }
    if (casesRun.size === Object.keys(RUNS).length) {
      assert.ok(total >= MIN_TOTAL_CASES, `only ${total} cases`);
    }
    assert.deepEqual(unhandledRejections, []);
    assert.deepEqual(uncaughtExceptions, []);
  });
});

function unauthorized(): Expected {
  return { kind: 'refused', code: ERR_UNAUTHORIZED, status: 401 };
}
