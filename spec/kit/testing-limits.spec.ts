// The test kit with rateLimit: what a user's test of their own limits does. Driving N events and
// expecting the N+1th refused needs no waiting; expectAckError shows the code and retryAfterMs;
// kit.resetLimits() starts a test from fresh budgets, whatever the tests before it spent.
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import type { Socket as ServerSocket } from 'socket.io';
import { rateLimit, requireAuth, sessionNamespace } from 'socket.io-session-auth';
import { createTestKit, expectAckError, type TestKit } from 'socket.io-session-auth/testing';
import { createTestServer, type TestServer } from '../support/server.js';

const alice: Express.User = { id: '1', username: 'alice', role: 'admin', tenants: [] };

describe('a test of the app’s event limits, with the kit', () => {
  let t: TestServer;
  let kit: TestKit;

  // One app and one kit for the whole file, as a user's suite would have: the budgets carry over
  // from test to test unless the kit resets them.
  test.before(async () => {
    t = await createTestServer(({ io, session, passport }) => {
      const chat = requireAuth(sessionNamespace(io.of('/chat'), session, { passport }));
      chat.on('connection', (socket: ServerSocket) => {
        socket.on('say', (text: string, ack: (reply: unknown) => void) => {
          ack({ said: text });
        });
      });
      rateLimit(chat, { events: { budgets: { say: { points: 3, durationMs: 60_000 } } } });
    });
    kit = await createTestKit({ io: t.io, session: t.session, passport: t.passport });
  });
  test.after(async () => {
    await kit.close();
    await t.cleanup();
  });
  beforeEach(() => kit.resetLimits());

  // Each of these two spends alice's whole budget: without the reset between them, the second
  // would be refused at its first event.
  for (const run of ['first', 'second']) {
    test(`the ${run} test drives 3 events, and the 4th is refused with ERR_RATE_LIMITED`, async () => {
      const chat = await (await kit.loginAs(alice)).connect('/chat');
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await chat.emitWithAck('say', `hi ${i}`), { said: `hi ${i}` });
      }
      const error = await expectAckError(chat.emitWithAck('say', 'one more'), 'ERR_RATE_LIMITED');
      assert.equal(error.status, 429);
      assert.ok((error.retryAfterMs ?? 0) > 0, String(error.retryAfterMs));
    });
  }

  test('expectAckError expecting another code shows the refusal with its retryAfterMs', async () => {
    const chat = await (await kit.loginAs(alice)).connect('/chat');
    for (let i = 0; i < 3; i++) await chat.emitWithAck('say', 'x');
    await assert.rejects(
      expectAckError(chat.emitWithAck('say', 'over'), 'ERR_FORBIDDEN'),
      (error: unknown) => {
        assert.ok(error instanceof Error && error.name === 'AssertionError', String(error));
        assert.match(
          error.message,
          /^expected an ack with error ERR_FORBIDDEN, but the ack's error was \{ message: 'Too Many Requests', code: 'ERR_RATE_LIMITED', status: 429, retryAfterMs: \d+ \}$/,
        );
        return true;
      },
    );
  });
});
