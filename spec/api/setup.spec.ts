import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, test } from 'node:test';
import express from 'express';
import session from 'express-session';
import type { Namespace } from 'socket.io';
import { requireAuth, sessionNamespace, wrapExpressMiddleware } from '../../lib/index.js';
import { connectError } from '../support/bounded.js';
import { start } from '../support/server.js';
import { reporting, whoami } from '../support/whoami.js';
import { Server, Passport } from '../support/stack.js';

function throwsNaming(fn: () => unknown, helper: string, message?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof TypeError, `expected a TypeError, got ${String(error)}`);
    assert.ok(
      error.message.startsWith(`${helper}: `),
      `expected the message to start with "${helper}: ", got "${error.message}"`,
    );
    if (message) assert.match(error.message, message);
    return true;
  });
}

const sessionMiddleware = session({ secret: 's', resave: false, saveUninitialized: false });
const passport = new Passport();

/** The two public helpers that take a target, called with valid remaining arguments. */
const helpers: { name: string; call: (target: unknown, options?: unknown) => Namespace }[] = [
  {
    name: 'sessionNamespace',
    call: (target, options) =>
      sessionNamespace(target as never, sessionMiddleware, options as never),
  },
  {
    name: 'requireAuth',
    call: (target, options) => requireAuth(target as never, options as never),
  },
];

describe('setup: targets', () => {
  for (const { name, call } of helpers) {
    test(`${name}: a Server resolves to its default namespace "/"`, () => {
      const io = new Server();
      const nsp = call(io);
      assert.equal(nsp, io.of('/'));
      assert.equal(nsp, io.sockets);
      assert.equal(nsp.name, '/');
    });

    test(`${name}: a Server attached to an HTTP server resolves to "/" too`, (tc) => {
      const io = new Server(createServer());
      tc.after(() => io.close());
      assert.equal(call(io), io.of('/'));
    });

    test(`${name}: a Namespace resolves to itself`, () => {
      const io = new Server();
      const chat = io.of('/chat');
      assert.equal(call(chat), chat);
      assert.equal(call(io.of('/')), io.of('/'));
    });

    test(`${name}: a parent (dynamic) namespace resolves to itself`, () => {
      const io = new Server();
      const byRegex = io.of(/^\/tenant-\w+$/);
      assert.equal(call(byRegex), byRegex);
      const byFunction = io.of((_name, _auth, next) => {
        next(null, true);
      });
      assert.equal(call(byFunction), byFunction);
    });

    test(`${name}: anything else throws a TypeError naming ${name}`, (tc) => {
      const io = new Server(createServer());
      tc.after(() => io.close());
      const bads: unknown[] = [
        null,
        undefined,
        {},
        [],
        '/chat',
        42,
        true,
        Symbol('nsp'),
        () => io,
        { name: '/chat' },
        { use: () => undefined },
        io.engine,
        express(),
        createServer(),
      ];
      for (const bad of bads) {
        throwsNaming(() => call(bad), name, /target must be a Socket\.IO Server or Namespace/);
      }
    });

    test(`${name}: options that are not objects throw a TypeError naming ${name}`, () => {
      const io = new Server();
      for (const bad of [null, 'x', 42, true, () => ({})]) {
        throwsNaming(() => call(io.of('/x'), bad), name, /options must be an object/);
      }
      // undefined and {} are fine.
      assert.equal(call(io.of('/ok1'), undefined), io.of('/ok1'));
      assert.equal(call(io.of('/ok2'), {}), io.of('/ok2'));
    });
  }

  test('wrapExpressMiddleware: options that are not objects throw a TypeError naming it', () => {
    const noop = (_req: unknown, _res: unknown, next: () => void): void => {
      next();
    };
    for (const bad of [null, 'x', 42, true]) {
      throwsNaming(
        () => wrapExpressMiddleware(noop, bad as never),
        'wrapExpressMiddleware',
        /options must be an object/,
      );
    }
    assert.equal(typeof wrapExpressMiddleware(noop), 'function');
    assert.equal(typeof wrapExpressMiddleware(noop, {}), 'function');
  });
});

describe('setup: the resolved namespace is the one that is guarded', () => {
  test('requireAuth(io) guards "/" only; other namespaces stay open', async (tc) => {
    const t = await start(tc, ({ io }) => {
      reporting(requireAuth(io));
      reporting(io.of('/open'));
    });
    const refused = await connectError(t.connect('/'));
    assert.deepEqual(refused.data, { code: 'ERR_UNAUTHORIZED', status: 401 });
    assert.equal((await whoami(t.connect('/open'))).user, null);
  });

  test('requireAuth(io.of("/a")) guards "/a" only; "/" stays open', async (tc) => {
    const t = await start(tc, ({ io }) => {
      reporting(requireAuth(io.of('/a')));
      reporting(io.of('/'));
    });
    const refused = await connectError(t.connect('/a'));
    assert.deepEqual(refused.data, { code: 'ERR_UNAUTHORIZED', status: 401 });
    assert.equal((await whoami(t.connect('/'))).user, null);
  });

  test('requireAuth(sessionNamespace(io, …)) chains on "/"', async (tc) => {
    const t = await start(tc, ({ io, session, passport: pp }) => {
      reporting(
        requireAuth(sessionNamespace(io, session, { passport: pp }), {
          authorize: (user) => user.role === 'admin',
        }),
      );
    });
    assert.equal((await whoami(t.connect('/', { cookie: await t.login('alice') }))).user, 'alice');
    const bob = await connectError(t.connect('/', { cookie: await t.login('bob') }));
    assert.deepEqual(bob.data, { code: 'ERR_FORBIDDEN', status: 403 });
  });
});

describe('setup: order of sessionNamespace and requireAuth', () => {
  test('sessionNamespace after requireAuth on the same namespace throws, naming it', () => {
    const io = new Server();
    requireAuth(io.of('/admin'));
    throwsNaming(
      () => sessionNamespace(io.of('/admin'), sessionMiddleware, { passport }),
      'sessionNamespace',
      /\/admin/,
    );
  });

  test('requireAuth(io) then sessionNamespace(io.of("/")) throws: the same namespace', () => {
    const io = new Server();
    requireAuth(io);
    throwsNaming(() => sessionNamespace(io.of('/'), sessionMiddleware), 'sessionNamespace');
    throwsNaming(() => sessionNamespace(io, sessionMiddleware), 'sessionNamespace');
  });

  test('requireAuth on one namespace does not affect sessionNamespace on another', () => {
    const io = new Server();
    requireAuth(io.of('/a'));
    assert.equal(sessionNamespace(io.of('/b'), sessionMiddleware), io.of('/b'));
    assert.equal(sessionNamespace(io, sessionMiddleware), io.of('/'));
    const other = new Server();
    requireAuth(other.of('/a'));
    assert.equal(sessionNamespace(new Server().of('/a'), sessionMiddleware).name, '/a');
  });

  test('a requireAuth call that threw does not count: sessionNamespace may still follow', async (tc) => {
    const t = await start(tc, ({ io, session, passport: pp }) => {
      const nsp = io.of('/ns');
      assert.throws(() => requireAuth(nsp, { authorize: 'admin' as never }), TypeError);
      reporting(requireAuth(sessionNamespace(nsp, session, { passport: pp })));
    });
    assert.equal((await whoami(t.connect('/ns', { cookie: await t.login('bob') }))).user, 'bob');
    const anon = await connectError(t.connect('/ns'));
    assert.deepEqual(anon.data, { code: 'ERR_UNAUTHORIZED', status: 401 });
  });
});
