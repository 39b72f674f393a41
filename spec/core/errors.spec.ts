import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as pkg from '../../lib/index.js';
import {
  ERR_AUTHORIZE_ERROR,
  ERR_FORBIDDEN,
  ERR_MIDDLEWARE_ENDED,
  ERR_MIDDLEWARE_ERROR,
  ERR_MIDDLEWARE_TIMEOUT,
  ERR_UNAUTHORIZED,
  SessionAuthError,
  requireAuth,
  sessionNamespace,
  type SessionAuthErrorData,
} from '../../lib/index.js';
import { type ConnectError, shown } from '../support/client.js';
import { connected, connectError } from '../support/bounded.js';
import { start } from '../support/server.js';

describe('SessionAuthError', () => {
  test('is an Error named SessionAuthError with message and data { code, status }', () => {
    const error = new SessionAuthError('Go away', { code: ERR_FORBIDDEN, status: 403 });
    assert.ok(error instanceof Error);
    assert.ok(error instanceof SessionAuthError);
    assert.equal(error.name, 'SessionAuthError');
    assert.equal(error.message, 'Go away');
    assert.deepEqual(error.data, { code: 'ERR_FORBIDDEN', status: 403 });
    assert.equal(typeof error.stack, 'string');
    assert.match(String(error), /^SessionAuthError: Go away/);
    assert.equal(Object.prototype.toString.call(error), '[object Error]');
  });

  test('keeps a cause when given one', () => {
    const cause = new Error('inner');
    const error = new SessionAuthError(
      'Internal Server Error',
      { code: ERR_MIDDLEWARE_ERROR, status: 500 },
      { cause },
    );
    assert.equal(error.cause, cause);
    assert.equal(
      new SessionAuthError('x', { code: ERR_UNAUTHORIZED, status: 401 }).cause,
      undefined,
    );
  });

  test('data may carry a redirect location', () => {
    const data: SessionAuthErrorData = {
      code: ERR_MIDDLEWARE_ENDED,
      status: 302,
      location: '/login',
    };
    assert.deepEqual(new SessionAuthError('Found', data).data, data);
  });

  test('messages are cut at 200 characters', () => {
    const data = { code: ERR_FORBIDDEN, status: 403 } as const;
    assert.equal(new SessionAuthError('x'.repeat(250), data).message, 'x'.repeat(200));
    assert.equal(new SessionAuthError('y'.repeat(200), data).message, 'y'.repeat(200));
    assert.equal(new SessionAuthError('z'.repeat(199), data).message, 'z'.repeat(199));
    assert.equal(new SessionAuthError('', data).message, '');
  });

  test('the exported code constants equal their names', () => {
    const codes = {
      ERR_MIDDLEWARE_ENDED,
      ERR_MIDDLEWARE_TIMEOUT,
      ERR_MIDDLEWARE_ERROR,
      ERR_UNAUTHORIZED,
      ERR_FORBIDDEN,
      ERR_AUTHORIZE_ERROR,
    };
    for (const [name, value] of Object.entries(codes)) assert.equal(value, name);
    // Every ERR_* constant the package exports (these six among them) equals its name.
    const exported = Object.entries(pkg).filter(([key]) => key.startsWith('ERR_'));
    for (const name of Object.keys(codes)) {
      assert.ok(
        exported.some(([key]) => key === name),
        `${name} is exported`,
      );
    }
    for (const [name, value] of exported) assert.equal(value, name);
  });
});

describe('SessionAuthError end to end', () => {
  test('passed to next() by user middleware, it reaches the client with message and data', async (tc) => {
    const t = await start(tc, ({ io }) => {
      io.of('/closed').use((_socket, next) => {
        next(new SessionAuthError('Closed for maintenance', { code: ERR_FORBIDDEN, status: 403 }));
      });
      io.of('/login-first').use((_socket, next) => {
        next(
          new SessionAuthError('Found', {
            code: ERR_MIDDLEWARE_ENDED,
            status: 302,
            location: '/login',
          }),
        );
      });
    });
    const closed = await connectError(t.connect('/closed'));
    assert.ok(closed instanceof Error);
    assert.deepEqual(shown(closed), {
      message: 'Closed for maintenance',
      data: { code: 'ERR_FORBIDDEN', status: 403 },
    });
    const redirect = await connectError(t.connect('/login-first'));
    assert.deepEqual(shown(redirect), {
      message: 'Found',
      data: { code: 'ERR_MIDDLEWARE_ENDED', status: 302, location: '/login' },
    });
  });

  test('only message and data reach the client: extra fields and the cause are dropped', async (tc) => {
    const t = await start(tc, ({ io }) => {
      io.of('/leaky').use((_socket, next) => {
        const error = new SessionAuthError(
          'Nope',
          { code: ERR_UNAUTHORIZED, status: 401 },
          { cause: new Error('secret cause') },
        );
        Object.assign(error, { secret: 'hunter2', sql: 'SELECT * FROM users' });
        next(error);
      });
    });
    const err = await connectError(t.connect('/leaky'));
    assert.equal(err.message, 'Nope');
    assert.deepEqual(err.data, { code: 'ERR_UNAUTHORIZED', status: 401 });
    const received = err as ConnectError & Record<string, unknown>;
    assert.equal(received.secret, undefined);
    assert.equal(received.sql, undefined);
    assert.equal(received.cause, undefined);
    assert.equal(received.name, 'Error', 'the client builds a plain Error');
    assert.doesNotMatch(JSON.stringify(Object.entries(received)), /hunter2|secret cause/);
  });

  test('a message over 200 characters arrives cut at 200', async (tc) => {
    const t = await start(tc, ({ io }) => {
      io.of('/long').use((_socket, next) => {
        next(new SessionAuthError('w'.repeat(500), { code: ERR_FORBIDDEN, status: 403 }));
      });
    });
    const err = await connectError(t.connect('/long'));
    assert.equal(err.message, 'w'.repeat(200));
  });

  test("the package's own refusals reach the client as message (status text) and data", async (tc) => {
    const t = await start(tc, ({ io, session, passport }) => {
      const nsp = requireAuth(sessionNamespace(io.of('/admin'), session, { passport }), {
        authorize: (user) => user.role === 'admin',
      });
      nsp.on('connection', (socket) => {
        socket.emit('in', socket.request.user?.username);
      });
    });
    const anon = await connectError(t.connect('/admin'));
    assert.deepEqual(shown(anon), {
      message: 'Unauthorized',
      data: { code: ERR_UNAUTHORIZED, status: 401 },
    });
    const bob = await connectError(t.connect('/admin', { cookie: await t.login('bob') }));
    assert.deepEqual(shown(bob), {
      message: 'Forbidden',
      data: { code: ERR_FORBIDDEN, status: 403 },
    });
    const alice = t.connect('/admin', { cookie: await t.login('alice') });
    const greeting = new Promise((resolve) => alice.once('in', resolve));
    await connected(alice);
    assert.equal(await greeting, 'alice');
  });
});
