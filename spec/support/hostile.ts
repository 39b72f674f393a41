// Shared by the hostile-input specs (spec/hostile/hostile-input-*.spec.ts), property-based (fast-check):
// Cookie headers, Origin headers, handshake `auth` payloads and namespace names, each case a real
// socket.io-client connection to a real server. One spec file per property: the test runner's
// --test-timeout bounds each file as a whole, and the four properties' 10 500 connections in one
// file outgrew it on a loaded machine.
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
  requireAuth,
  sessionNamespace,
  ERR_AUTHORIZE_ERROR,
  ERR_FORBIDDEN,
  ERR_MIDDLEWARE_ENDED,
  ERR_MIDDLEWARE_ERROR,
  ERR_MIDDLEWARE_TIMEOUT,
  ERR_ORIGIN_FORBIDDEN,
  ERR_SESSION_UNAVAILABLE,
  ERR_BAD_TOKEN_EXPIRY,
  ERR_UNAUTHORIZED,
} from '../../lib/index.js';
import { waitFor, type ConnectError } from './client.js';
import {
  start,
  pendingOf,
  type CreateTestServerOptions,
  type TestContext,
  type TestServer,
} from './server.js';

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
  ERR_BAD_TOKEN_EXPIRY,
]);

/** How long one case may take, from opening the client to its outcome. */
const CASE_BOUND_MS = 5000;

/** Cases per property; 12 000 in all. */
export const RUNS = { cookies: 3500, origins: 3000, auth: 2000, namespaces: 2000, tokens: 1500 };
const MIN_TOTAL_CASES = 10_000;
type Property = keyof typeof RUNS;

/**
 * Node's HTTP server refuses a request whose request line and headers exceed 16 KiB
 * (--max-http-header-size, 16384 by default) with 431, before Socket.IO sees it. Generated Cookie
 * headers stay below 12 000 characters so that the rest of the handshake (~300 bytes) fits too:
 * what is tested is the package, not Node's header limit.
 */
export const MAX_COOKIE_HEADER = 12_000;

export const CURRENT_SECRET = 'spec-secret';
export const OLD_SECRET = 'old-secret'; // rotated out, still accepted: secret: [current, old]
export const UNKNOWN_SECRET = 'never-configured';

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

/**
 * One hostile-input spec: a describe that records unhandled rejections and uncaught exceptions
 * while it runs, with the spec's tests, then {@link casesRunTest} for its property.
 */
export function describeHostile(property: Property, title: string, tests: () => void): void {
  describe(`hostile input: ${title} (fast-check, real socket.io-client connections)`, () => {
    recordProcessFailures();
    tests();
    casesRunTest([property]);
  });
}

/**
 * Checks `check` on RUNS[property] values of `arbitrary`, one case at a time, each counted under
 * the property; a run past 240 s fails rather than passing with fewer cases.
 */
export async function checkCases<T>(
  property: Property,
  arbitrary: fc.Arbitrary<T>,
  check: (value: T) => Promise<void>,
): Promise<void> {
  await fc.assert(
    fc.asyncProperty(arbitrary, async (value) => {
      count(property);
      await check(value);
    }),
    { numRuns: RUNS[property], interruptAfterTimeLimit: 240_000, markInterruptAsFailure: true },
  );
}

/** Records unhandled rejections and uncaught exceptions while the calling describe runs. */
function recordProcessFailures(): void {
  before(() => {
    process.on('unhandledRejection', onUnhandledRejection);
    process.on('uncaughtException', onUncaughtException);
  });
  after(() => {
    process.off('unhandledRejection', onUnhandledRejection);
    process.off('uncaughtException', onUncaughtException);
  });
}

/**
 * The last test of each hostile-input spec: its properties ran every one of their cases, and
 * nothing went unhandled in the process.
 */
function casesRunTest(properties: Property[]): void {
  const expected = properties.reduce((sum, property) => sum + RUNS[property], 0);
  test(`${expected} generated cases; no unhandled rejection, no uncaught exception`, () => {
    const detail = [...casesRun].map(([property, n]) => `${property} ${n}`).join(', ');
    console.log(`hostile-input: generated cases run: ${detail}`);
    for (const [property, byLabel] of outcomes) {
      console.log(`  ${property}: ${[...byLabel].map(([label, n]) => `${label} ${n}`).join(', ')}`);
    }
    for (const property of properties) {
      assert.ok(
        (casesRun.get(property) ?? 0) >= RUNS[property],
        `${property}: only ${casesRun.get(property) ?? 0} of ${RUNS[property]} cases`,
      );
    }
    const total = Object.values(RUNS).reduce((a, b) => a + b, 0);
    assert.ok(total >= MIN_TOTAL_CASES, `only ${total} cases across the hostile-input specs`);
    assert.deepEqual(unhandledRejections, []);
    assert.deepEqual(uncaughtExceptions, []);
  });
}

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

/** One case of `property`: {@link attempt}, its outcome tallied under the property. */
export async function attemptCase(
  property: Property,
  url: string,
  nsp: string,
  options?: AttemptOptions,
): Promise<Outcome> {
  return tally(property, await attempt(url, nsp, options));
}

interface AttemptOptions {
  headers?: Record<string, string>;
  auth?: Record<string, unknown>;
}

/**
 * One websocket-only client on its own connection, opening `nsp` (sent as is in the CONNECT
 * packet), closed as soon as the outcome is known. A connected socket's outcome carries the user
 * the server saw: the server's first event, `who`.
 */
export async function attempt(
  url: string,
  nsp: string,
  options: AttemptOptions = {},
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
export function assertDocumented(outcome: Outcome): void {
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

export type Expected =
  | { kind: 'connected'; user: string | null }
  | { kind: 'refused'; code: string; status: number }
  | { kind: 'invalid namespace' };

export function assertOutcome(outcome: Outcome, expected: Expected, what: string): void {
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

export function show(value: unknown): string {
  const text = JSON.stringify(value) as string | undefined;
  return text ?? String(value);
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

export interface Hostile {
  t: TestServer;
  /** Errors that reached onError: internal failures, which no input should cause. */
  reported: unknown[];
}

/** Tells a connected client who it is, and answers `ping`. */
export function greet(nsp: Namespace): Namespace {
  nsp.on('connection', (socket: ServerSocket) => {
    socket.emit('who', socket.request.user?.username ?? null);
    socket.on('ping', (cb: (answer: string) => void) => {
      cb('pong');
    });
  });
  return nsp;
}

/** The setup of the cookie and auth specs: a guarded `/private` that greets. */
export function guardedPrivate({ io, session, passport }: TestContext, onError: OnError): void {
  greet(requireAuth(sessionNamespace(io.of('/private'), session, { passport, onError })));
}

type OnError = (error: unknown) => void;

export async function startHostile(
  tc: NodeTestContext,
  setup: (ctx: TestContext, onError: OnError) => void,
  options: CreateTestServerOptions = {},
): Promise<Hostile> {
  const reported: unknown[] = [];
  const t = await start(
    tc,
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
  return { t, reported };
}

/** After a property: nothing pending or open, nothing reported, and a good client still served. */
export async function assertHealthy(
  server: Hostile,
  good: {
    nsp: string;
    headers: Record<string, string>;
    user: string;
    auth?: Record<string, unknown>;
  },
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
  const socket = manager.socket(good.nsp, good.auth ? { auth: good.auth } : {});
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
export function sign(value: string, secret: string): string {
  const mac = createHmac('sha256', secret).update(value).digest('base64').replace(/=+$/, '');
  return `${value}.${mac}`;
}

export function sidOf(cookie: string): string {
  const value = decodeURIComponent(/connect\.sid=([^;]+)/.exec(cookie)?.[1] ?? '');
  return value.slice(2, value.lastIndexOf('.'));
}

/**
 * What `cookie.parse` (express-session's) makes of one cookie's written value: blanks (space, tab)
 * trimmed, one pair of surrounding double quotes removed, then URI-decoded if that succeeds.
 */
export function cookieValue(written: string): string {
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
export async function expire(t: TestServer, sid: string): Promise<void> {
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
export const headerChar = fc
  .oneof(
    { weight: 12, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
    { weight: 1, arbitrary: fc.constant(0x09) },
    { weight: 4, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
  )
  .map((code) => String.fromCharCode(code));

export const headerString = (maxLength: number, exclude = ''): fc.Arbitrary<string> =>
  fc.string({
    unit: exclude === '' ? headerChar : headerChar.filter((c) => !exclude.includes(c)),
    maxLength,
  });

// ---------------------------------------------------------------------------------------------

export function unauthorized(): Expected {
  return { kind: 'refused', code: ERR_UNAUTHORIZED, status: 401 };
}
