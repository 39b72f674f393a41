// rateLimit's perIp: handshake attempts per client address, refused before the session store is
// read (counted with the counting store), the address as Express's req.ip gives it under the
// app's `trust proxy`, and the whole-server target covering every session namespace whatever
// order the helpers were called in. Real express-session + Passport, real socket.io-client.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ERR_RATE_LIMITED, rateLimit, requireAuth, sessionNamespace } from '../../lib/index.js';
import { connected, connectError } from '../support/bounded.js';
import type { ConnectError } from '../support/client.js';
import { start, type TestContext } from '../support/server.js';

const MINUTE = 60_000;

/** /chat and /news, given the app (sessionNamespace's `app`: its settings, `trust proxy`). */
function namespaces({ io, session, passport, app }: TestContext): void {
  for (const name of ['/chat', '/news']) {
    requireAuth(sessionNamespace(io.of(name), session, { passport, app }));
  }
}

describe('rateLimit connections: perIp before the session read', () => {
  test('past the budget, attempts are refused with 429 and cost no store read', async (tc) => {
    const t = await start(tc, (ctx) => {
      namespaces(ctx);
      rateLimit(ctx.io, { connections: { perIp: { points: 3, durationMs: MINUTE } } });
    });
    const cookie = await t.login('alice');
    for (let i = 0; i < 3; i++) await connected(t.connect('/chat', { cookie }));
    t.store.reset();
    // A flood from the same address: every attempt refused, none reaches the store.
    const refusals: ConnectError[] = [];
    for (let i = 0; i < 20; i++) {
      refusals.push(await connectError(t.connect(i % 2 ? '/chat' : '/news', { cookie })));
    }
    for (const err of refusals) {
      const { code, status, retryAfterMs } = err.data ?? {};
      assert.equal(code, ERR_RATE_LIMITED);
      assert.equal(status, 429);
      assert.ok(typeof retryAfterMs === 'number');
      assert.ok(retryAfterMs > 0 && retryAfterMs <= MINUTE, `retryAfterMs ${retryAfterMs}`);
    }
    assert.equal(t.store.gets, 0, 'no store read for a refused attempt');
  });

  test("the address is the app's req.ip: X-Forwarded-For only with trust proxy", async (tc) => {
    const limits = { connections: { perIp: { points: 1, durationMs: MINUTE } } };
    const trusting = await start(
      tc,
      (ctx) => {
        namespaces(ctx);
        rateLimit(ctx.io, limits);
      },
      { configureApp: (app) => app.set('trust proxy', 'loopback') },
    );
    const via = (address: string) => ({ extraHeaders: { 'x-forwarded-for': address } });
    const cookie = await trusting.login('alice');
    const as = (address: string) => ({
      ...via(address),
      extraHeaders: { ...via(address).extraHeaders, cookie },
    });
    await connected(trusting.connect('/chat', as('203.0.113.1')));
    await connected(
      trusting.connect('/chat', as('203.0.113.2')),
      'another address, its own budget',
    );
    const err = await connectError(trusting.connect('/chat', as('203.0.113.1')));
    assert.equal(err.data?.code, ERR_RATE_LIMITED);

    // The app's own setting: without trust proxy, the header is the client's word, not believed.
    const plain = await start(tc, (ctx) => {
      namespaces(ctx);
      rateLimit(ctx.io, limits);
    });
    const plainCookie = await plain.login('alice');
    const say = (address: string) => ({
      extraHeaders: { 'x-forwarded-for': address, cookie: plainCookie },
    });
    await connected(plain.connect('/chat', say('203.0.113.1')));
    const spoofed = await connectError(plain.connect('/chat', say('203.0.113.2')));
    assert.equal(spoofed.data?.code, ERR_RATE_LIMITED, 'one loopback address, one budget');
  });

  test('called before sessionNamespace, on the whole server: still before every read', async (tc) => {
    const t = await start(tc, (ctx) => {
      rateLimit(ctx.io, { connections: { perIp: { points: 1, durationMs: MINUTE } } });
      namespaces(ctx);
    });
    const cookie = await t.login('alice');
    await connected(t.connect('/news', { cookie }));
    t.store.reset();
    const err = await connectError(t.connect('/chat', { cookie }));
    assert.equal(err.data?.code, ERR_RATE_LIMITED);
    assert.equal(t.store.gets, 0);
  });

  test('after the window, the address may try again', async (tc) => {
    const t = await start(tc, (ctx) => {
      namespaces(ctx);
      rateLimit(ctx.io.of('/chat'), { connections: { perIp: { points: 1, durationMs: 1000 } } });
    });
    const cookie = await t.login('alice');
    await connected(t.connect('/chat', { cookie }));
    const err = await connectError(t.connect('/chat', { cookie }));
    await connected(t.connect('/news', { cookie }), '/news is not in the limit');
    const retryAfterMs = err.data?.retryAfterMs as number;
    assert.ok(retryAfterMs > 0 && retryAfterMs <= 1000);
    // The limiter keeps real time (rate-limiter-flexible has no clock to inject): the one wait of
    // this file, the retryAfterMs the client was given.
    await new Promise((resolve) => setTimeout(resolve, retryAfterMs));
    await connected(t.connect('/chat', { cookie }), 'the window is over');
  });
});
