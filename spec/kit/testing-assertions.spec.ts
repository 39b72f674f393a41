// The test kit's assertions: what each accepts, and what each says when the app does something
// else. A failure is always an AssertionError that names what was expected and what happened,
// and comes as soon as the answer is known (a disconnect, a refusal), or after `within`.
import assert from 'node:assert/strict';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import type { Socket as ServerSocket } from 'socket.io';
import { disconnectSession, requireAuth, sessionNamespace } from 'socket.io-session-auth';
import {
  createTestKit,
  expectAckError,
  expectEnded,
  expectRefused,
  type Agent,
  type TestKit,
  type TestSocket,
} from 'socket.io-session-auth/testing';
import { start, type TestContext } from '../support/server.js';

/** Rejects with an AssertionError whose message is `message` (a string: exactly; or a RegExp). */
async function failsWith(promise: Promise<unknown>, message: string | RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof Error);
    assert.equal(error.name, 'AssertionError', String(error));
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    return true;
  });
}

/**
 * `/events`: says hello on connect, emits what it is asked to, drops the socket or ends its
 * session on request. `/acl`: `secret` is refused by authorizeEvent, `open` is answered, `silent`
 * never. `/hang`: middleware that never lets anyone in or out.
 */
function app({ io, session, passport }: TestContext): void {
  const events = requireAuth(sessionNamespace(io.of('/events'), session, { passport }));
  events.on('connection', (socket: ServerSocket) => {
    socket.emit('hello', { n: 1 });
    socket.on('send', (list: [string, ...unknown[]][], ack: () => void) => {
      for (const [event, ...args] of list) socket.emit(event, ...args);
      ack();
    });
    socket.on('drop', () => {
      socket.disconnect();
    });
    socket.on('revoke', () => {
      void disconnectSession(io, socket.request.sessionID);
    });
  });
  const acl = requireAuth(sessionNamespace(io.of('/acl'), session, { passport }), {
    authorizeEvent: (_user, event) => event !== 'secret',
  });
  acl.on('connection', (socket: ServerSocket) => {
    socket.on('secret', (ack: (v: unknown) => void) => {
      ack('the secret');
    });
    socket.on('open', (ack: (v: unknown) => void) => {
      ack({ ok: true });
    });
    socket.on('silent', () => undefined);
  });
  io.of('/hang').use(() => undefined);
}

async function setup(tc: NodeTestContext): Promise<{ kit: TestKit; alice: Agent }> {
  const t = await start(tc, app);
  const kit = await createTestKit({ io: t.io, session: t.session, passport: t.passport });
  tc.after(() => kit.close());
  const alice = await kit.loginAs({ id: '1', username: 'alice', role: 'admin', tenants: [] });
  return { kit, alice };
}

/** Has the server send these events, and waits until they were sent (the ack comes after). */
async function send(socket: TestSocket, ...list: [string, ...unknown[]][]): Promise<void> {
  await socket.timeout(5000).emitWithAck('send', list);
}

describe('socket.expectEvent and refuteEvent: a mailbox of what the socket received', () => {
  test('an event that came before the test asked is found; each is taken out once, in order', async (tc) => {
    const { alice } = await setup(tc);
    const socket = await alice.connect('/events');
    assert.deepEqual(await socket.expectEvent('hello'), { n: 1 }, 'emitted during the connect');
    await send(socket, ['n', 1], ['n', 2], ['m', 'x'], ['n', 3]);
    assert.equal(await socket.expectEvent<number>('n', { where: (n) => n > 1 }), 2);
    assert.equal(await socket.expectEvent('n'), 1);
    assert.equal(await socket.expectEvent('n'), 3);
    await socket.refuteEvent('n', { within: 0 });
    await socket.refuteEvent('m', { within: 0, where: (m) => m !== 'x' });
    await failsWith(
      socket.refuteEvent('m', { within: 0 }),
      "expected no 'm' on /events (alice), but it received one: [ 'x' ]",
    );
    const later = socket.expectEvent('late');
    await send(socket, ['late', 'at last']);
    assert.equal(await later, 'at last');
  });

  test('expectEvent says what came instead, or that the socket is gone', async (tc) => {
    const { alice } = await setup(tc);
    const socket = await alice.connect('/events');
    await send(socket, ['n', 1], ['n', 2]);
    await failsWith(
      socket.expectEvent('said', { within: 50 }),
      "expected 'said' on /events (alice) within 50 ms, but it did not come; received meanwhile: " +
        'hello, n ×2',
    );
    await failsWith(
      socket.expectEvent<number>('n', { within: 50, where: (n) => n > 5 }),
      /^expected 'n' \(matching where\) on \/events \(alice\) within 50 ms, but it did not come/,
    );
    // No waiting out the bound once the socket is gone.
    const started = Date.now();
    const never = socket.expectEvent('never', { within: 60_000 });
    socket.emit('drop');
    await failsWith(
      never,
      "expected 'never' on /events (alice), but the socket disconnected (io server disconnect); " +
        'it had received: hello, n ×2',
    );
    assert.ok(Date.now() - started < 30_000);
  });

  test('expectEventArgs gives every argument; expectEvent still the first', async (tc) => {
    const { alice } = await setup(tc);
    const socket = await alice.connect('/events');
    // As the README's chat emits it: emit('said', user, text).
    await send(socket, ['said', 'bob', 'hi'], ['said', 'carol', 'yo'], ['said', 'dan', 'hey']);
    assert.deepEqual(
      await socket.expectEventArgs<[string, string]>('said', { where: (from) => from === 'carol' }),
      ['carol', 'yo'],
    );
    const [from, text] = await socket.expectEventArgs<[string, string]>('said');
    assert.deepEqual([from, text], ['bob', 'hi']);
    assert.equal(await socket.expectEvent('said'), 'dan');
    await send(socket, ['none'], ['one', 1]);
    assert.deepEqual(await socket.expectEventArgs('none'), []);
    assert.deepEqual(await socket.expectEventArgs('one'), [1]);
    await failsWith(
      socket.expectEventArgs('said', { within: 50 }),
      "expected 'said' on /events (alice) within 50 ms, but it did not come; received meanwhile: " +
        'hello',
    );
  });

  test('refuteEvent fails when the event comes within the window', async (tc) => {
    const { alice } = await setup(tc);
    const socket = await alice.connect('/events');
    // The failure is awaited from the start: the event can arrive (and the watch fail) before
    // send's own round trip is over, and a rejection nobody awaits yet is an unhandled one.
    const failed = failsWith(
      socket.refuteEvent('x', { within: 60_000 }),
      "expected no 'x' on /events (alice) within 60000 ms, but it received one: [ { a: 1 } ]",
    );
    await send(socket, ['x', { a: 1 }]);
    await failed;
    await socket.refuteEvent('y', { within: 20 });
  });
});

describe('agent.connect and expectRefused', () => {
  test('a refused connect says how; a connect that should have been refused says it connected', async (tc) => {
    const { kit, alice } = await setup(tc);
    const stranger = kit.anonymous();
    // The reason is the package's, heard by the kit: the app does not explain to clients.
    await failsWith(
      stranger.connect('/events'),
      'expected /events (anonymous) to connect, but it was refused: ERR_UNAUTHORIZED (401 ' +
        'Unauthorized; reason no-cookie-header: the handshake sent no Cookie header (a ' +
        'cross-origin client needs withCredentials: true; a Node client needs extraHeaders: ' +
        '{ cookie }))',
    );
    await failsWith(
      expectRefused(alice.connect('/events'), 'ERR_FORBIDDEN'),
      'expected connect_error ERR_FORBIDDEN on /events (alice), but the socket connected',
    );
    await failsWith(
      expectRefused(stranger.connect('/events'), 'ERR_FORBIDDEN'),
      /^expected connect_error ERR_FORBIDDEN on \/events \(anonymous\), but it was refused with ERR_UNAUTHORIZED \(401 Unauthorized; reason no-cookie-header: /,
    );
    const socket = await alice.connect('/events');
    await failsWith(
      expectRefused(socket),
      'expected connect_error on /events (alice), but the socket connected',
    );
  });

  test("Socket.IO's own refusals have no code, and say so", async (tc) => {
    const { alice } = await setup(tc);
    const refusal = await expectRefused(alice.connect('/nowhere'));
    assert.deepEqual(refusal, { message: 'Invalid namespace' });
    await failsWith(
      expectRefused(alice.connect('/nowhere'), 'ERR_FORBIDDEN'),
      'expected connect_error ERR_FORBIDDEN on /nowhere (alice), but it was refused with ' +
        '"Invalid namespace" (no code: Socket.IO has no such namespace)',
    );
  });

  test('a connect with no answer fails after within, saying nothing came', async (tc) => {
    const { alice } = await setup(tc);
    await failsWith(
      alice.connect('/hang', { within: 100 }),
      'expected /hang (alice) to connect or be refused, but neither connect nor connect_error ' +
        'came within 100 ms (is the server listening? is the path right?)',
    );
    await failsWith(
      expectRefused(alice.connect('/hang', { within: 100 }), 'ERR_FORBIDDEN'),
      'expected connect_error ERR_FORBIDDEN on /hang (alice), but neither connect nor ' +
        'connect_error came within 100 ms',
    );
  });
});

describe('expectAckError: refused events', () => {
  test('passes on the refusal and returns it; says what the ack was otherwise', async (tc) => {
    const { alice } = await setup(tc);
    const socket = await alice.connect('/acl');
    assert.deepEqual(await expectAckError(socket.emitWithAck('secret'), 'ERR_FORBIDDEN'), {
      message: 'Forbidden',
      code: 'ERR_FORBIDDEN',
      status: 403,
    });
    await failsWith(
      expectAckError(socket.emitWithAck('open'), 'ERR_FORBIDDEN'),
      'expected an ack with error ERR_FORBIDDEN, but the ack was { ok: true }',
    );
    await failsWith(
      expectAckError(socket.emitWithAck('secret'), 'ERR_UNAUTHORIZED'),
      "expected an ack with error ERR_UNAUTHORIZED, but the ack's error was { message: " +
        "'Forbidden', code: 'ERR_FORBIDDEN', status: 403 }",
    );
    await failsWith(
      expectAckError(socket.emitWithAck('silent'), 'ERR_FORBIDDEN', { within: 50 }),
      'expected an ack with error ERR_FORBIDDEN, but no ack came within 50 ms',
    );
    await failsWith(
      expectAckError(socket.timeout(10).emitWithAck('silent'), 'ERR_FORBIDDEN'),
      /^expected an ack with error ERR_FORBIDDEN, but the emit failed: Error: operation has timed out/,
    );
  });
});

describe('expectEnded: the server ended the socket because its session ended', () => {
  test('passes on session:ended with the code, then the server’s disconnect', async (tc) => {
    const { alice } = await setup(tc);
    const [a, b] = await alice.connect('/events', { tabs: 2 });
    assert.ok(a && b);
    a.emit('revoke');
    await expectEnded(a, 'ERR_SESSION_REVOKED');
    await expectEnded(b, 'ERR_SESSION_REVOKED');
  });

  test('says which code came, that no session:ended came, or that the socket is still connected', async (tc) => {
    const { kit, alice } = await setup(tc);
    const revoked = await alice.connect('/events');
    revoked.emit('revoke');
    await failsWith(
      expectEnded(revoked, 'ERR_SESSION_EXPIRED'),
      'expected /events (alice) to end with session:ended ERR_SESSION_EXPIRED, but it received ' +
        "session:ended 'ERR_SESSION_REVOKED'",
    );
    const bob = await kit.loginAs({ id: '2', username: 'bob', role: 'member', tenants: [] });
    const dropped = await bob.connect('/events');
    dropped.emit('drop');
    await failsWith(
      expectEnded(dropped, 'ERR_SESSION_REVOKED'),
      'expected /events (bob) to end with session:ended ERR_SESSION_REVOKED, but it disconnected ' +
        '(io server disconnect) without session:ended; it had received: hello',
    );
    const alive = await bob.connect('/events');
    await failsWith(
      expectEnded(alive, 'ERR_SESSION_REVOKED', { within: 50 }),
      'expected /events (bob) to end with session:ended ERR_SESSION_REVOKED, but it is still ' +
        'connected after 50 ms; it received: hello',
    );
  });

  test('takes only sockets of the kit', async (tc) => {
    const { alice } = await setup(tc);
    const socket = await alice.connect('/events');
    const naming = (fn: () => unknown, helper: string): void => {
      assert.throws(fn, (error: unknown) => {
        assert.ok(error instanceof TypeError);
        assert.ok(error.message.startsWith(`${helper}: `), error.message);
        return true;
      });
    };
    naming(() => expectEnded({} as never, 'ERR_SESSION_REVOKED'), 'expectEnded');
    naming(() => expectEnded(socket, 42 as never), 'expectEnded');
    naming(() => expectEnded(socket, 'X', { within: -1 }), 'expectEnded');
    naming(() => expectRefused(42 as never), 'expectRefused');
    naming(() => expectRefused(socket, 42 as never), 'expectRefused');
    naming(() => expectAckError(42 as never, 'X'), 'expectAckError');
    naming(() => expectAckError(Promise.resolve(), 42 as never), 'expectAckError');
    naming(() => socket.expectEvent('x', { within: -5 }), 'expectEvent');
    naming(() => socket.refuteEvent('x', { within: Number.NaN }), 'refuteEvent');
  });
});
