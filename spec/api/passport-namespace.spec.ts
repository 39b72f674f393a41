// Any Passport strategy on a namespace: the cookie session first, then tokens from the handshake's
// auth (real passport-jwt with jsonwebtoken, and passport-http-bearer), with the same guards,
// revocation and refresh whichever let the socket in, and tokens that expire and are renewed in
// place.
import assert from 'node:assert/strict';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import fc from 'fast-check';
import jwt from 'jsonwebtoken';
import { ExtractJwt, Strategy as JwtStrategy } from 'passport-jwt';
import { Strategy as BearerStrategy } from 'passport-http-bearer';
import {
  ERR_AUTHORIZE_ERROR,
  ERR_FORBIDDEN,
  ERR_SESSION_EXPIRED,
  ERR_SESSION_REVOKED,
  ERR_BAD_TOKEN_EXPIRY,
  ERR_UNAUTHORIZED,
  SESSION_ENDED_EVENT,
  TOKEN_EVENT,
  disconnectUser,
  passportNamespace,
  refreshUser,
  requireAuth,
  type TokenRenewalAck,
} from '../../lib/index.js';
import type { Socket as ServerSocket } from 'socket.io';
import { serverState, socketState } from '../../lib/core/state.js';
import { within } from '../support/bounded.js';
import { request } from '../support/client.js';
import { testClock } from '../support/clock.js';
import { type TestContext, type TestServer, start, users } from '../support/server.js';
import { expectTabEnded, type KitTab, watchEnd } from '../support/session-ending.js';
import { logIn, startWithKit } from '../support/kit.js';
import {
  expectRefused,
  type Agent,
  type Refusal,
  type TestKit,
} from 'socket.io-session-auth/testing';
import { reporting, whoami } from '../support/whoami.js';

const SECRET = 'jwt-spec-secret';
const BEARER = new Map([
  ['alice-api-key', '1'],
  ['bob-api-key', '2'],
]);

/** A JWT for user `id`, expiring `seconds` from now. */
function jwtFor(id: string, seconds = 3600): string {
  return jwt.sign({ sub: id }, SECRET, { expiresIn: seconds });
}

function publicUser(id: unknown): Express.User | false {
  const user = users.find((u) => u.id === id);
  return user
    ? { id: user.id, username: user.username, role: user.role, tenants: user.tenants }
    : false;
}

/**
 * The `info` the `expiring` bearer strategy gives with each of its tokens (all alice's): a spec
 * registers a token with the expiry it wants the strategy to report.
 */
const grants = new Map<string, unknown>();

/** A token the `expiring` strategy accepts, with `info` as the strategy's info. */
function grant(info: unknown): string {
  const token = `grant-${grants.size}-${Math.random().toString(36).slice(2)}`;
  grants.set(token, info);
  return token;
}

/** Holds the `slow-jwt` strategy's verify while set: a token renewal caught mid-way. */
const slow: { gate?: Promise<void>; reached?: () => void } = {};

function app(onError?: (error: unknown) => void) {
  return (ctx: TestContext): void => {
    const { io, session, passport } = ctx;
    passport.use(
      'slow-jwt',
      new JwtStrategy(
        { jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(), secretOrKey: SECRET },
        (payload: { sub?: string }, done: (err: unknown, user?: unknown) => void) => {
          const { gate, reached } = slow;
          reached?.();
          void (gate ?? Promise.resolve()).then(() => {
            done(null, publicUser(payload.sub));
          });
        },
      ),
    );
    reporting(requireAuth(passportNamespace(io.of('/slow'), passport, ['slow-jwt'])));
    passport.use(
      new JwtStrategy(
        { jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(), secretOrKey: SECRET },
        (payload: { sub?: string }, done: (err: unknown, user?: unknown) => void) => {
          done(null, publicUser(payload.sub));
        },
      ),
    );
    passport.use(
      new BearerStrategy((token, done) => {
        if (token === 'broken-key') {
          done(new Error('the key service is down'));
          return;
        }
        const id = BEARER.get(token);
        done(null, id === undefined ? false : publicUser(id));
      }),
    );
    passport.use(
      'expiring',
      new BearerStrategy((token, done) => {
        // What strategies give in their info is theirs to shape: passport-http-bearer's type
        // knows only `message` and `scope`.
        if (grants.has(token)) done(null, publicUser('1'), grants.get(token) as never);
        else done(null, false);
      }),
    );
    const options = { ...(onError && { onError }), explain: true };
    reporting(requireAuth(passportNamespace(io.of('/units'), passport, ['expiring'], options)));
    reporting(
      requireAuth(
        passportNamespace(io.of('/chat'), passport, ['session', 'jwt'], { ...options, session }),
      ),
    );
    reporting(requireAuth(passportNamespace(io.of('/api'), passport, ['jwt', 'bearer'], options)));
    reporting(
      requireAuth(passportNamespace(io.of('/admin'), passport, ['jwt'], options), {
        authorize: (user) => user.role === 'admin',
      }),
    );
  };
}

/** The spec's server, with the test kit on it. */
type KitServer = TestServer & { kit: TestKit };

/** A tab of `as` (by default a stranger) on `nsp`, sending `token` if given, watched for its end. */
async function tab(
  t: KitServer,
  nsp: string,
  options: { as?: Agent; token?: unknown },
): Promise<KitTab> {
  const agent = options.as ?? t.kit.anonymous();
  const auth = options.token === undefined ? undefined : { token: options.token };
  const socket = await agent.connect(nsp, auth === undefined ? {} : { auth });
  return { nsp, socket, seen: watchEnd(socket) };
}

/** What a stranger sending `token` (if any) sees of its refused connect to `nsp`. */
function refusalOf(t: KitServer, nsp: string, token?: unknown): Promise<Refusal> {
  const auth = token === undefined ? {} : { auth: { token } };
  return expectRefused(t.kit.anonymous().connect(nsp, auth));
}

async function server(tc: NodeTestContext, onError?: (error: unknown) => void): Promise<KitServer> {
  const { t, kit } = await startWithKit(tc, app(onError));
  return Object.assign(t, { kit });
}

describe('passportNamespace: the session first, then tokens', () => {
  test('a cookie session alone, a JWT alone, and both (the session wins)', async (tc) => {
    const t = await server(tc);
    const alice = await logIn(t.kit, 'alice');
    const byCookie = await tab(t, '/chat', { as: alice });
    assert.equal((await whoami(byCookie.socket)).user, 'alice');
    const byToken = await tab(t, '/chat', { token: jwtFor('2') });
    assert.equal((await whoami(byToken.socket)).user, 'bob');
    const both = await tab(t, '/chat', { as: alice, token: jwtFor('2') });
    assert.equal((await whoami(both.socket)).user, 'alice');
    const sockets = await t.io.of('/chat').fetchSockets();
    assert.deepEqual(
      sockets
        .map((s) => s.data as unknown)
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [
        { user: { id: '1', username: 'alice' } },
        { user: { id: '1', username: 'alice' } },
        { user: { id: '2', username: 'bob' } },
      ],
    );
  });

  test('passport-http-bearer and passport-jwt in order on a token-only namespace', async (tc) => {
    const t = await server(tc);
    const bearer = await tab(t, '/api', { token: 'bob-api-key' });
    assert.equal((await whoami(bearer.socket)).user, 'bob');
    const viaJwt = await tab(t, '/api', { token: jwtFor('1') });
    assert.equal((await whoami(viaJwt.socket)).user, 'alice');
  });

  test('refusals keep their codes: no token, a bad one, an expired one, a failing strategy', async (tc) => {
    const reported: unknown[] = [];
    const t = await server(tc, (error) => {
      reported.push(error);
    });
    const none = await refusalOf(t, '/api');
    assert.deepEqual(none.data, { code: ERR_UNAUTHORIZED, status: 401, reason: 'no-token' });
    const bad = await refusalOf(t, '/api', 'not-a-token');
    assert.deepEqual(bad.data, { code: ERR_UNAUTHORIZED, status: 401, reason: 'bad-token' });
    const expired = await refusalOf(t, '/api', jwtFor('1', -10));
    assert.deepEqual(expired.data, { code: ERR_UNAUTHORIZED, status: 401, reason: 'bad-token' });
    const huge = await refusalOf(t, '/api', 'x'.repeat(20_000));
    assert.deepEqual(huge.data, { code: ERR_UNAUTHORIZED, status: 401, reason: 'bad-token' });
    const failing = await refusalOf(t, '/api', 'broken-key');
    assert.deepEqual(failing.data, { code: ERR_AUTHORIZE_ERROR, status: 500 });
    assert.equal(reported.length, 1);
    // The connection's own headers never carry the token.
    const seenHeaders = new Promise<unknown>((resolve) => {
      t.io.of('/api').once('connection', (socket) => {
        resolve(socket.client.request.headers.authorization);
      });
    });
    await tab(t, '/api', { token: 'alice-api-key' });
    assert.equal(await within(seenHeaders, 'connection'), undefined);
  });

  test('requireAuth, disconnectUser and refreshUser work the same for a token socket', async (tc) => {
    const t = await server(tc);
    const admin = await tab(t, '/admin', { token: jwtFor('1') });
    assert.equal((await whoami(admin.socket)).user, 'alice');
    const refused = await refusalOf(t, '/admin', jwtFor('2'));
    assert.equal(refused.data?.code, ERR_FORBIDDEN);
    const user = users.find((u) => u.username === 'alice');
    assert.ok(user);
    tc.after(() => {
      (user as { role: string }).role = 'admin';
    });
    (user as { role: string }).role = 'member';
    await refreshUser(t.io, '1');
    await expectTabEnded(admin, ERR_FORBIDDEN, 'demoted');
    const bob = await tab(t, '/api', { token: jwtFor('2') });
    await disconnectUser(t.io, '2');
    await expectTabEnded(bob, ERR_SESSION_REVOKED, 'bob');
  });
  test('an app middleware after the token step that throws: onError hears it, the process goes on', async (tc) => {
    const heard: unknown[] = [];
    let hear: (error: unknown) => void = () => undefined;
    const reported = new Promise<unknown>((resolve) => {
      hear = resolve;
    });
    const started = await startWithKit(tc, (ctx) => {
      app((error) => {
        heard.push(error);
        hear(error);
      })(ctx);
      passportNamespace(ctx.io.of('/buggy'), ctx.passport, ['bearer'], {
        onError: (error) => {
          hear(error);
        },
      }).use(() => {
        throw new Error('a bug in the app middleware');
      });
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    tc.after(() => process.off('unhandledRejection', onUnhandled));
    const t = Object.assign(started.t, { kit: started.kit });
    const socket = t.connect('/buggy', { auth: { token: 'alice-api-key' } });
    tc.after(() => socket.close());
    const error = await within(reported, 'onError hearing the middleware throw');
    assert.equal((error as Error).message, 'a bug in the app middleware');
    // The server still answers: a round trip on another namespace after the throw.
    const alice = await tab(t, '/api', { token: 'alice-api-key' });
    assert.equal((await whoami(alice.socket)).user, 'alice');
    assert.deepEqual(unhandled, []);
    assert.deepEqual(heard, []);
  });
});

describe('token lifetime on live sockets', () => {
  test("a token's exp ends its socket with ERR_SESSION_EXPIRED, not before", async (tc) => {
    const t = await server(tc);
    // The package's time, moved rather than waited for: a minute ahead is never reached in real
    // time, so the handshake's own check of the JWT (passport-jwt, real time) still passes.
    const clock = testClock(t);
    const token = jwtFor('1', 60);
    const exp = (jwt.decode(token) as { exp: number }).exp * 1000;
    const short = await tab(t, '/api', { token });
    await clock.advanceTo(exp - 1);
    assert.equal((await whoami(short.socket)).user, 'alice', 'alive a millisecond before');
    assert.deepEqual(short.seen.events, []);
    await clock.advanceTo(exp);
    await expectTabEnded(short, ERR_SESSION_EXPIRED, 'expired token');
    assert.ok(clock.now() >= exp, `ended ${exp - clock.now()} ms before the token's exp`);
  });

  test('a fresh token for the same user on session:token: the socket goes on past the old exp', async (tc) => {
    const t = await server(tc);
    const clock = testClock(t);
    const token = jwtFor('1', 60);
    const oldExp = (jwt.decode(token) as { exp: number }).exp * 1000;
    const live = await tab(t, '/api', { token });
    // The control: a tab on the same token, never renewed.
    const control = await tab(t, '/api', { token });
    const fresh = jwtFor('1', 3600);
    const reply = await request<{ expires: number }>(live.socket, TOKEN_EVENT, fresh);
    assert.equal(reply.expires, (jwt.decode(fresh) as { exp: number }).exp * 1000);
    // Moved to the old exp: the control ends there, so the server's expiry pass for that instant
    // has run, and a socket still armed at the old exp would have been ended in the same pass. The
    // round trip after it on the renewed socket's own connection brings any end sent to it before.
    await clock.advanceTo(oldExp);
    await expectTabEnded(control, ERR_SESSION_EXPIRED, 'control token');
    assert.ok(clock.now() >= oldExp, `the control ended ${oldExp - clock.now()} ms before its exp`);
    assert.equal((await whoami(live.socket)).user, 'alice');
    assert.deepEqual(live.seen.events, []);
  });

  test('a socket that leaves while its fresh token is checked is not put back in the expiry heap', async (tc) => {
    const t = await server(tc);
    const left = new Promise<ServerSocket>((resolve) => {
      t.io.of('/slow').on('connection', (socket) =>
        socket.on('disconnect', () => {
          resolve(socket);
        }),
      );
    });
    const live = await tab(t, '/slow', { token: jwtFor('1') });
    let release = (): void => {};
    slow.gate = new Promise((resolve) => (release = resolve));
    const reached = new Promise<void>((resolve) => (slow.reached = resolve));
    tc.after(() => {
      delete slow.gate;
      delete slow.reached;
      release();
    });
    live.socket.emit(TOKEN_EVENT, jwtFor('1', 3600));
    await within(reached, 'the renewal to reach the strategy');
    live.socket.disconnect();
    const serverSocket = await within(left, 'the server to see the socket leave');
    const state = socketState(serverSocket);
    assert.ok(state, 'the socket was tracked');
    const heap = serverState(t.io).expiryHeap;
    assert.equal(heap.includes(state), false, 'leave() took it out');
    release();
    // The strategy answers, then serializeUser: no I/O on the way, so a few turns of the loop see
    // the renewal through.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(heap.includes(state), false, 'the renewal did not arm it again');
    assert.equal(state.heapIndex, -1);
  });

  test("another user's token, or one the strategies refuse, ends the socket", async (tc) => {
    const t = await server(tc);
    const one = await tab(t, '/api', { token: jwtFor('1') });
    const answer = await request<{ error: { code: string } }>(one.socket, TOKEN_EVENT, jwtFor('2'));
    assert.equal(answer.error.code, ERR_SESSION_REVOKED);
    await expectTabEnded(one, ERR_SESSION_REVOKED, "another user's token");
    const two = await tab(t, '/api', { token: jwtFor('1') });
    await request(two.socket, TOKEN_EVENT, 'garbage');
    await expectTabEnded(two, ERR_SESSION_REVOKED, 'a refused token');
  });
});

/** `ms` (ms since epoch) as an ISO 8601 string in the zone `+02:00`. */
function isoPlusTwo(ms: number): string {
  return new Date(ms + 2 * 3600_000).toISOString().replace('Z', '+02:00');
}

/**
 * A JWT-shaped token whose payload says `claims`, which the `expiring` strategy accepts with no
 * info (an opaque bearer token that happens to be a JWT): its `exp` claim is all there is.
 */
function jwtShaped(claims: object): string {
  const b64 = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const token = `${b64({ alg: 'none' })}.${b64(claims)}.${Math.random().toString(36).slice(2)}`;
  grants.set(token, undefined);
  return token;
}

describe('token expiry: the forms strategies give, and refusals naming the field', () => {
  test('exp in seconds, expires as a Date, epoch ms and ISO strings: each ends its socket then', async (tc) => {
    const t = await server(tc);
    const clock = testClock(t);
    const now = Date.now();
    // A minute or so ahead, in the package's time, which the spec moves: the sockets connect
    // first, then each expiry is reached in turn.
    const expSeconds = Math.ceil((now + 60_500) / 1000);
    const forms: [string, unknown, number][] = [
      ['info.exp (seconds)', { exp: expSeconds }, expSeconds * 1000],
      ['info.expires (Date)', { expires: new Date(now + 60_000) }, now + 60_000],
      ['info.expires (epoch ms)', { expires: now + 60_100 }, now + 60_100],
      ['info.expires (ISO, Z)', { expires: new Date(now + 60_200).toISOString() }, now + 60_200],
      ['info.expires (ISO, +02:00)', { expires: isoPlusTwo(now + 60_300) }, now + 60_300],
      ['the JWT-shaped token alone', undefined, expSeconds * 1000],
    ];
    const sockets = await Promise.all(
      forms.map(async ([what, info, expires]) => {
        const token = info === undefined ? jwtShaped({ exp: expSeconds }) : grant(info);
        const unit = await tab(t, '/units', { token });
        let endedAt = 0;
        unit.socket.on(SESSION_ENDED_EVENT, () => {
          endedAt = clock.now();
        });
        return { what, expires, unit, endedAt: () => endedAt };
      }),
    );
    // Each expiry in turn (two forms share one): a millisecond before it, its sockets and every
    // later one still answer; at it, its sockets end.
    for (const at of [...new Set(forms.map(([, , expires]) => expires))].sort((a, b) => a - b)) {
      await clock.advanceTo(at - 1);
      for (const { what, expires, unit } of sockets.filter((s) => s.expires >= at)) {
        assert.equal((await whoami(unit.socket)).user, 'alice', `${what}: alive just before ${at}`);
        assert.deepEqual(unit.seen.events, [], `${what}: not ended before its expiry ${expires}`);
      }
      await clock.advanceTo(at);
      for (const { what, expires, unit, endedAt } of sockets.filter((s) => s.expires === at)) {
        await expectTabEnded(unit, ERR_SESSION_EXPIRED, what);
        assert.ok(
          endedAt() >= expires,
          `${what}: ended ${expires - endedAt()} ms before its expiry`,
        );
      }
    }
  });

  test('the renewal ack gives the fresh expiry in epoch ms, whichever form the strategy used', async (tc) => {
    const t = await server(tc);
    const clock = testClock(t);
    const live = await tab(t, '/units', {
      token: grant({ expires: new Date(Date.now() + 3600_000) }),
    });
    const base = Date.now() + 7200_000;
    const seconds = Math.floor(base / 1000);
    const forms: [unknown, number][] = [
      [{ exp: seconds }, seconds * 1000],
      [{ expires: new Date(base) }, base],
      [{ expires: base + 1 }, base + 1],
      [{ expires: new Date(base + 2).toISOString() }, base + 2],
      [{ expires: isoPlusTwo(base + 3) }, base + 3],
      [{ exp: seconds, expires: base + 60_000 }, seconds * 1000],
    ];
    for (const [info, expires] of forms) {
      const reply = await request<TokenRenewalAck>(live.socket, TOKEN_EVENT, grant(info));
      assert.deepEqual(reply, { expires }, `renewal with ${JSON.stringify(info)}`);
    }
    // The last renewal's expiry is the one in force: an ISO string a minute ahead ends it.
    const soon = Date.now() + 60_000;
    const reply = await request(live.socket, TOKEN_EVENT, grant({ expires: isoPlusTwo(soon) }));
    assert.deepEqual(reply, { expires: soon });
    await clock.advanceTo(soon - 1);
    assert.equal((await whoami(live.socket)).user, 'alice', 'alive just before');
    assert.deepEqual(live.seen.events, [], 'not before the renewed expiry');
    await clock.advanceTo(soon);
    await expectTabEnded(live, ERR_SESSION_EXPIRED, 'renewed to a near ISO expiry');
    assert.ok(clock.now() >= soon, 'not before the renewed expiry');
  });

  test('an unusable expiry is refused at the handshake with ERR_BAD_TOKEN_EXPIRY, naming the field', async (tc) => {
    const reported: unknown[] = [];
    const t = await server(tc, (error) => {
      reported.push(error);
    });
    const now = Date.now();
    const cases: [string, string, RegExp][] = [
      ['NaN', grant({ expires: NaN }), /^Unusable token expiry: info\.expires /],
      ['an unparsable string', grant({ expires: 'next tuesday' }), /info\.expires .*ISO 8601/],
      ['an ISO string without a zone', grant({ expires: '2999-01-01T00:00:00' }), /info\.expires/],
      [
        'seconds given as expires',
        grant({ expires: Math.floor(now / 1000) + 3600 }),
        /info\.expires is below 1e11/,
      ],
      ['a negative expires', grant({ expires: -5 }), /info\.expires is negative/],
      ['an object as expires', grant({ expires: { at: now + 3600_000 } }), /info\.expires must be/],
      [
        'an invalid Date',
        grant({ expires: new Date('never') }),
        /info\.expires is an invalid Date/,
      ],
      ['milliseconds given as exp', grant({ exp: now + 3600_000 }), /info\.exp is too large/],
      ['a string exp', grant({ exp: String(Math.floor(now / 1000) + 3600) }), /info\.exp must be/],
      ['a negative exp', grant({ exp: -1 }), /info\.exp is negative/],
      [
        'a good exp with a bad expires',
        grant({ exp: Math.floor(now / 1000) + 3600, expires: 'soon' }),
        /info\.expires/,
      ],
      [
        'a JWT-shaped token with a string exp claim',
        jwtShaped({ exp: 'tomorrow' }),
        /the token's exp claim must be/,
      ],
    ];
    for (const [what, token, message] of cases) {
      const err = await refusalOf(t, '/units', token);
      assert.deepEqual(err.data, { code: ERR_BAD_TOKEN_EXPIRY, status: 500 }, what);
      assert.match(err.message, message, what);
    }
    // A real passport-jwt accepts a JWT whose exp was signed in milliseconds (year 50000 and more):
    // refused here, never a socket that outlives everything.
    const msJwt = jwt.sign({ sub: '1', exp: now + 3600_000 }, SECRET);
    const err = await refusalOf(t, '/api', msJwt);
    assert.deepEqual(err.data, { code: ERR_BAD_TOKEN_EXPIRY, status: 500 });
    assert.match(err.message, /the token's exp claim is too large for seconds/);
    // Each went to onError too (the server's log), with the same message.
    assert.equal(reported.length, cases.length + 1);
    // `null` is no expiry, as an absent field: the token is let in and does not expire.
    const none = await tab(t, '/units', { token: grant({ expires: null }) });
    assert.equal((await whoami(none.socket)).user, 'alice');
  });

  test('whatever a strategy gives as exp or expires, a socket it lets in has an expiry', async (tc) => {
    const t = await server(tc, () => undefined);
    const now = Date.now();
    const value = fc.oneof(
      fc.constantFrom(undefined, null, NaN, Infinity, -Infinity, 0, -1, '', 'soon', {}, []),
      fc.double(),
      fc.integer({ min: -1e13, max: 1e16 }),
      fc.integer({ min: now, max: now + 1e12 }),
      fc.integer({ min: Math.floor(now / 1000), max: Math.floor(now / 1000) + 1e9 }),
      fc.date(),
      fc.date().map((d) => d.toString()),
      fc.date({ min: new Date(now + 3600_000), noInvalidDate: true }).map((d) => d.toISOString()),
      fc.string({ maxLength: 40 }),
      fc.jsonValue({ maxDepth: 2 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.record({ exp: value, expires: value }, { requiredKeys: [] }),
        async (info) => {
          const token = grant(info);
          const socket = t.connect('/units', { auth: { token } });
          const outcome = await within(
            new Promise<{ code?: unknown } | 'connected'>((resolve) => {
              socket.once('connect', () => {
                resolve('connected');
              });
              socket.once('connect_error', (err: Error & { data?: { code?: unknown } }) => {
                resolve({ code: err.data?.code });
              });
            }),
            `the handshake with ${fc.stringify(info)}`,
          );
          const given = [info.exp, info.expires].some((v) => v !== undefined && v !== null);
          if (outcome === 'connected') {
            const serverSocket = t.io.of('/units').sockets.get(socket.id ?? '');
            const expires = serverSocket && socketState(serverSocket)?.expires;
            socket.disconnect();
            if (given) {
              assert.ok(
                typeof expires === 'number' && expires > now,
                `let in with no future expiry (${String(expires)}): ${fc.stringify(info)}`,
              );
            } else {
              assert.equal(expires, undefined);
            }
          } else {
            assert.ok(given, 'refused with no expiry given');
            assert.ok(
              outcome.code === ERR_BAD_TOKEN_EXPIRY || outcome.code === ERR_UNAUTHORIZED,
              `refused with ${String(outcome.code)}`,
            );
          }
          grants.delete(token);
        },
      ),
      { numRuns: 150 },
    );
  });

  test('an expiry already past is refused as an expired token is', async (tc) => {
    const t = await server(tc);
    const past = grant({ expires: new Date(Date.now() - 1000).toISOString() });
    const refused = await refusalOf(t, '/units', past);
    assert.deepEqual(refused.data, { code: ERR_UNAUTHORIZED, status: 401, reason: 'bad-token' });
    const pastExp = grant({ exp: Math.floor(Date.now() / 1000) - 5 });
    const also = await refusalOf(t, '/units', pastExp);
    assert.deepEqual(also.data, { code: ERR_UNAUTHORIZED, status: 401, reason: 'bad-token' });
  });

  test('a renewal with an unusable expiry gets the ack error and keeps its token; a past one ends it', async (tc) => {
    const reported: unknown[] = [];
    const t = await server(tc, (error) => {
      reported.push(error);
    });
    const live = await tab(t, '/units', { token: grant({ expires: Date.now() + 3600_000 }) });
    const seconds = Math.floor(Date.now() / 1000) + 3600;
    for (const [info, message] of [
      [{ expires: seconds }, /^Unusable token expiry: info\.expires is below 1e11/],
      [{ expires: 'in an hour' }, /^Unusable token expiry: info\.expires is not an ISO 8601/],
      [{ exp: 'soon' }, /^Unusable token expiry: info\.exp must be/],
    ] as const) {
      const reply = await request<{ error: { message: string; code: string; status: number } }>(
        live.socket,
        TOKEN_EVENT,
        grant(info),
      );
      assert.equal(reply.error.code, ERR_BAD_TOKEN_EXPIRY, JSON.stringify(info));
      assert.equal(reply.error.status, 500);
      assert.match(reply.error.message, message);
    }
    assert.equal(reported.length, 3);
    // Still connected on its token, told nothing (the whoami ack comes after every reply above).
    assert.equal((await whoami(live.socket)).user, 'alice');
    assert.deepEqual(live.seen.events, []);
    const past = await request<{ error: { code: string } }>(
      live.socket,
      TOKEN_EVENT,
      grant({ expires: Date.now() - 1000 }),
    );
    assert.equal(past.error.code, ERR_SESSION_REVOKED);
    await expectTabEnded(live, ERR_SESSION_REVOKED, 'renewed with a past expiry');
  });
});

describe('setup', () => {
  test('mistakes throw a TypeError naming passportNamespace', async (tc) => {
    await start(tc, ({ io, passport, session }) => {
      assert.throws(
        () => passportNamespace(io.of('/a'), passport, []),
        /^TypeError: passportNamespace: strategies/,
      );
      assert.throws(
        () => passportNamespace(io.of('/b'), passport, ['session', 'jwt']),
        /^TypeError: passportNamespace: the 'session' strategy needs options\.session/,
      );
      assert.throws(
        () => passportNamespace(io.of('/c'), passport, ['jwt'], { session, token: 42 as never }),
        /^TypeError: passportNamespace: options\.token/,
      );
    });
  });
});
