import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test, type TestContext } from 'node:test';
import { ensureLoggedIn } from 'connect-ensure-login';
import express5, { type NextFunction, type Request, type Response } from 'express';
import express4 from 'express4';
import { rateLimit } from 'express-rate-limit';
import helmet from 'helmet';
import type { Namespace } from 'socket.io';
import type { ManagerOptions, Socket as ClientSocket, SocketOptions } from 'socket.io-client';
import {
  ERR_MIDDLEWARE_ENDED,
  ERR_MIDDLEWARE_ERROR,
  ERR_MIDDLEWARE_TIMEOUT,
  type ExpressMiddleware,
  wrapExpressMiddleware,
} from '../../lib/index.js';
import { connected, connectError } from '../support/bounded.js';
import { type ConnectError, delay, request, waitFor } from '../support/client.js';
import {
  start,
  type ExpressFlavour,
  pendingOf,
  type TestContext as ServerContext,
  type TestServer,
} from '../support/server.js';
import { activeTimeouts } from '../support/timers.js';

type Mw = (req: Request, res: Response, next: NextFunction) => unknown;
type ClientOptions = Partial<ManagerOptions & SocketOptions>;
type Probed = IncomingMessage & { probe?: unknown };

const flavours: readonly ExpressFlavour[] = ['express4', 'express5'];
const transports: readonly { name: string; options: ClientOptions }[] = [
  { name: 'polling', options: {} },
  { name: 'websocket-only', options: { transports: ['websocket'] } },
];

/** The namespace's connection handler answers `probe` with what middleware left on `req.probe`. */
function answerProbe(nsp: Namespace): void {
  nsp.on('connection', (socket) => {
    socket.on('probe', (ack: (value: unknown) => void) => {
      ack((socket.request as Probed).probe);
    });
  });
}

/** Connects and returns what the namespace's middleware probed. */
async function probe(socket: ClientSocket): Promise<unknown> {
  await connected(socket);
  return request(socket, 'probe');
}

/** The client's `connect_error`; a namespace refusal must leave the client inactive (no retry). */
async function refused(socket: ClientSocket): Promise<ConnectError> {
  const err = await connectError(socket);
  assert.equal(socket.active, false, 'a refused socket must not try to reconnect');
  return err;
}

/** 'connected', or the `connect_error` error: for outcomes a test must not wait on twice. */
function outcome(socket: ClientSocket): Promise<'connected' | ConnectError> {
  return new Promise((resolve) => {
    socket.once('connect', () => {
      resolve('connected');
    });
    socket.once('connect_error', resolve);
  });
}

/**
 * The number of active timers once the closing connections of earlier tests (ws close timers) have
 * drained: unchanged for 300 ms. Checks compare with `<=` so that one of those finishing late
 * cannot fail a test, while a timer this package leaves behind (60 s) keeps the count above it.
 * Sampled: nothing tells when a timer goes away.
 */
async function settledTimeouts(): Promise<number> {
  let last = activeTimeouts();
  let since = Date.now();
  const start = since;
  while (Date.now() - since < 300 && Date.now() - start < 5000) {
    await delay(20);
    const now = activeTimeouts();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
  return last;
}

function pendingSockets(srv: TestServer, nsp: string): number {
  return pendingOf(srv.io.of(nsp));
}

function appOf(flavour: ExpressFlavour): ReturnType<typeof express5> {
  return flavour === 'express4' ? express4() : express5();
}

function httpError(status: number, message: string, extra: object = {}): Error {
  return Object.assign(new Error(message), { status }, extra);
}

const passThrough: Mw = (_req, _res, next) => {
  next();
};

for (const flavour of flavours) {
  describe(`with an ${flavour} app`, () => {
    const server = (ctx: TestContext, setup: (c: ServerContext) => void) =>
      start(ctx, setup, { express: flavour });

    for (const { name: transport, options: clientOptions } of transports) {
      test(`[${transport}] Express request and response helpers work`, async (ctx) => {
        const collect: Mw = (req, res, next) => {
          res.status(201);
          res.setHeader('x-one', '1');
          res.set('x-two', '2');
          res.locals.from = 'collect';
          let finished = 0;
          res.on('finish', () => finished++);
          (req as Probed).probe = {
            get: req.get('x-test'),
            header: req.header('X-TEST'),
            ip: req.ip,
            accepts: req.accepts(['html', 'json']),
            query: { room: req.query.room, filter: req.query.filter ?? req.query['filter[kind]'] },
            method: req.method,
            headers: [res.getHeader('x-one'), res.get('x-two')],
            headersSent: res.headersSent,
            finished,
          };
          next();
        };
        const after: Mw = (req, res, next) => {
          const probed = (req as Probed).probe as Record<string, unknown>;
          (req as Probed).probe = {
            ...probed,
            status: res.statusCode,
            locals: res.locals.from as unknown,
          };
          next();
        };
        const srv = await server(ctx, ({ io, app }) => {
          io.of('/helpers').use(wrapExpressMiddleware([collect, after], { app }));
          answerProbe(io.of('/helpers'));
        });
        const seen = await probe(
          srv.connect('/helpers', {
            ...clientOptions,
            query: { room: 'lobby', 'filter[kind]': 'open' },
            extraHeaders: { 'x-test': 'hello', accept: 'application/json' },
          }),
        );
        assert.deepEqual(seen, {
          get: 'hello',
          header: 'hello',
          ip: '127.0.0.1',
          accepts: 'json',
          // The app's own query parser: 'extended' (qs) in Express 4, 'simple' in Express 5.
          query: { room: 'lobby', filter: flavour === 'express4' ? { kind: 'open' } : 'open' },
          method: 'GET',
          headers: ['1', '2'],
          headersSent: false,
          finished: 0,
          status: 201,
          locals: 'collect',
        });
      });

      test(`[${transport}] middleware that ends the response refuses with ERR_MIDDLEWARE_ENDED`, async (ctx) => {
        const cases: { mw: Mw; message: string; data: ConnectError['data'] }[] = [
          {
            mw: (_req, res) => {
              res.redirect('/login');
            },
            message: 'Found. Redirecting to /login',
            data: { code: ERR_MIDDLEWARE_ENDED, status: 302, location: '/login' },
          },
          {
            mw: (_req, res) => {
              res.status(429).send('Slow down');
            },
            message: 'Slow down',
            data: { code: ERR_MIDDLEWARE_ENDED, status: 429 },
          },
          {
            mw: (_req, res) => {
              res.status(401).json({ message: 'x' });
            },
            message: 'x',
            data: { code: ERR_MIDDLEWARE_ENDED, status: 401 },
          },
          {
            mw: (_req, res) => {
              res.status(403).json({ error: 'No entry' });
            },
            message: 'No entry',
            data: { code: ERR_MIDDLEWARE_ENDED, status: 403 },
          },
          {
            mw: (_req, res) => {
              res.status(403).send('<h1>Go away</h1>\n<p>Tom &amp; Jerry &lt;3</p>');
            },
            message: 'Go away Tom & Jerry <3',
            data: { code: ERR_MIDDLEWARE_ENDED, status: 403 },
          },
          {
            mw: (_req, res) => {
              res.sendStatus(403);
            },
            message: 'Forbidden',
            data: { code: ERR_MIDDLEWARE_ENDED, status: 403 },
          },
          {
            mw: (_req, res) => {
              res.statusCode = 403;
              res.end();
            },
            message: 'Forbidden',
            data: { code: ERR_MIDDLEWARE_ENDED, status: 403 },
          },
          {
            mw: (_req, res) => {
              res.status(503).send('a'.repeat(150) + 'b'.repeat(150));
            },
            message: 'a'.repeat(150) + 'b'.repeat(50),
            data: { code: ERR_MIDDLEWARE_ENDED, status: 503 },
          },
        ];
        const connections: string[] = [];
        const srv = await server(ctx, ({ io, app }) => {
          cases.forEach(({ mw }, i) => {
            io.of(`/end${i}`).use(wrapExpressMiddleware(mw, { app }));
            io.of(`/end${i}`).on('connection', () => connections.push(`/end${i}`));
          });
        });
        for (const [i, { message, data }] of cases.entries()) {
          const err = await refused(srv.connect(`/end${i}`, clientOptions));
          assert.equal(err.message, message, `case ${i}`);
          assert.deepEqual(err.data, data, `case ${i}`);
        }
        assert.deepEqual(connections, []);
      });
    }

    test('options.app gives the middleware its settings: trust proxy makes req.ip the X-Forwarded-For address', async (ctx) => {
      const ip: Mw = (req, _res, next) => {
        (req as Probed).probe = req.ip;
        next();
      };
      const srv = await start(
        ctx,
        ({ io, app }) => {
          io.of('/trusting').use(wrapExpressMiddleware(ip, { app }));
          io.of('/default').use(wrapExpressMiddleware(ip));
          io.of('/other').use(wrapExpressMiddleware(ip, { app: appOf(flavour) }));
          answerProbe(io.of('/trusting'));
          answerProbe(io.of('/default'));
          answerProbe(io.of('/other'));
        },
        { express: flavour, configureApp: (app) => app.set('trust proxy', true) },
      );
      const extraHeaders = { 'x-forwarded-for': '203.0.113.7' };
      for (const { options } of transports) {
        assert.equal(
          await probe(srv.connect('/trusting', { ...options, extraHeaders })),
          '203.0.113.7',
        );
        // Without options.app the HTTP app's settings are not used: trust proxy is off.
        assert.equal(
          await probe(srv.connect('/default', { ...options, extraHeaders })),
          '127.0.0.1',
        );
        // Another app of the same flavour, with the default settings.
        assert.equal(await probe(srv.connect('/other', { ...options, extraHeaders })), '127.0.0.1');
      }
    });

    test("next() continues, next('route') goes on to the next middleware, next('router') leaves the list", async (ctx) => {
      const ran: string[] = [];
      const mark =
        (name: string, signal?: string): Mw =>
        (_req, _res, next) => {
          ran.push(name);
          if (signal === undefined) next();
          else next(signal);
        };
      let connections = 0;
      const srv = await server(ctx, ({ io, app }) => {
        io.of('/route').use(
          wrapExpressMiddleware([mark('r1', 'route'), mark('r2'), mark('r3')], { app }),
        );
        io.of('/router').use(
          wrapExpressMiddleware([mark('x1'), mark('x2', 'router'), mark('x3')], { app }),
        );
        io.of('/router').use(wrapExpressMiddleware(mark('next wrap'), { app }));
        io.of('/route').on('connection', () => connections++);
        io.of('/router').on('connection', () => connections++);
      });
      for (const { options } of transports) {
        ran.length = 0;
        await connected(srv.connect('/route', options));
        assert.deepEqual(ran, ['r1', 'r2', 'r3']);
        ran.length = 0;
        await connected(srv.connect('/router', options));
        assert.deepEqual(ran, ['x1', 'x2', 'next wrap']);
      }
      assert.equal(connections, 4);
    });

    test('a throw, a rejection or next(err) refuses with ERR_MIDDLEWARE_ERROR and reaches onError', async (ctx) => {
      const cases: {
        name: string;
        error: unknown;
        mw: (error: unknown) => Mw;
        status: number;
        message: string;
        hidden?: string;
      }[] = [
        {
          name: 'synchronous throw',
          error: new Error('db password is hunter2'),
          mw: (error) => () => {
            throw error;
          },
          status: 500,
          message: 'Internal Server Error',
          hidden: 'hunter2',
        },
        {
          name: 'rejected promise',
          error: httpError(401, 'Log in first'),
          mw: (error) => async () => {
            await delay(1);
            throw error;
          },
          status: 401,
          message: 'Log in first',
        },
        {
          name: 'next(err) with statusCode',
          error: Object.assign(new Error('No such room'), { statusCode: 404 }),
          mw: (error) => (_req, _res, next) => {
            next(error);
          },
          status: 404,
          message: 'No such room',
        },
        {
          name: 'next(err) 503 with expose',
          error: httpError(503, 'Back at 5pm', { expose: true }),
          mw: (error) => (_req, _res, next) => {
            setImmediate(() => {
              next(error);
            });
          },
          status: 503,
          message: 'Back at 5pm',
        },
        {
          name: 'next(err) 502 without expose',
          error: httpError(502, 'upstream 10.0.0.3 refused'),
          mw: (error) => (_req, _res, next) => {
            next(error);
          },
          status: 502,
          message: 'Bad Gateway',
          hidden: '10.0.0.3',
        },
        {
          name: 'status outside 4xx/5xx',
          error: httpError(302, 'secret redirect target'),
          mw: (error) => () => {
            throw error;
          },
          status: 500,
          message: 'Internal Server Error',
          hidden: 'secret',
        },
        {
          name: 'expose false below 500',
          error: httpError(400, 'Bad room name', { expose: false }),
          mw: (error) => (_req, _res, next) => {
            next(error);
          },
          status: 400,
          message: 'Bad room name',
        },
      ];
      const reported: { error: unknown; nsp: string }[] = [];
      const srv = await server(ctx, ({ io, app }) => {
        cases.forEach(({ mw, error }, i) => {
          io.of(`/err${i}`).use(
            wrapExpressMiddleware([mw(error), passThrough], {
              app,
              onError: (err, socket) => reported.push({ error: err, nsp: socket.nsp.name }),
            }),
          );
        });
      });
      for (const { options } of transports) {
        for (const [i, { name, error, status, message, hidden }] of cases.entries()) {
          reported.length = 0;
          const err = await refused(srv.connect(`/err${i}`, options));
          assert.equal(err.message, message, name);
          assert.deepEqual(err.data, { code: ERR_MIDDLEWARE_ERROR, status }, name);
          if (hidden !== undefined) {
            assert.ok(!`${err.message} ${JSON.stringify(err.data)}`.includes(hidden), name);
          }
          assert.equal(reported.length, 1, name);
          assert.equal(reported[0]?.error, error, `${name}: onError gets the original error`);
          assert.equal(reported[0]?.nsp, `/err${i}`, name);
        }
      }
    });

    test('helmet passes: it sets its headers and the socket connects', async (ctx) => {
      const readHeaders: Mw = (req, res, next) => {
        (req as Probed).probe = {
          nosniff: res.getHeader('x-content-type-options'),
          csp: typeof res.getHeader('content-security-policy'),
          poweredBy: res.getHeader('x-powered-by') ?? null,
        };
        next();
      };
      const srv = await server(ctx, ({ io, app }) => {
        io.of('/helmet').use(wrapExpressMiddleware([helmet(), readHeaders], { app }));
        answerProbe(io.of('/helmet'));
      });
      for (const { options } of transports) {
        assert.deepEqual(await probe(srv.connect('/helmet', options)), {
          nosniff: 'nosniff',
          csp: 'string',
          poweredBy: null,
        });
      }
    });

    test("connect-ensure-login after express-session and passport: a login connects, anonymous gets 302 to '/login'", async (ctx) => {
      const user: Mw = (req, _res, next) => {
        (req as Probed).probe = req.user?.username;
        next();
      };
      const srv = await server(ctx, ({ io, app, session, passport }) => {
        io.of('/private').use(
          wrapExpressMiddleware(
            [session, passport.initialize(), passport.session(), ensureLoggedIn('/login'), user],
            { app },
          ),
        );
        answerProbe(io.of('/private'));
      });
      const cookie = await srv.login('alice');
      for (const { options } of transports) {
        assert.equal(await probe(srv.connect('/private', { ...options, cookie })), 'alice');
        const err = await refused(srv.connect('/private', options));
        assert.deepEqual(err.data, { code: ERR_MIDDLEWARE_ENDED, status: 302, location: '/login' });
        assert.match(err.message, /Redirecting to \/login/);
      }
    });

    test('express-rate-limit: the third connection within the window is refused with 429', async (ctx) => {
      const srv = await server(ctx, ({ io, app }) => {
        for (const nsp of ['/limited-polling', '/limited-websocket-only']) {
          io.of(nsp).use(wrapExpressMiddleware(rateLimit({ windowMs: 60_000, limit: 2 }), { app }));
        }
      });
      for (const { name, options } of transports) {
        const nsp = `/limited-${name}`;
        await connected(srv.connect(nsp, options));
        await connected(srv.connect(nsp, options));
        const err = await refused(srv.connect(nsp, options));
        assert.deepEqual(err.data, { code: ERR_MIDDLEWARE_ENDED, status: 429 });
        assert.equal(err.message, 'Too many requests, please try again later.');
      }
    });

    test('middleware that neither calls next nor ends refuses with ERR_MIDDLEWARE_TIMEOUT after timeoutMs', async (ctx) => {
      const lateNexts: NextFunction[] = [];
      let laterRan = 0;
      let connections = 0;
      const srv = await server(ctx, ({ io, app }) => {
        io.of('/hang').use(
          wrapExpressMiddleware(
            [
              (_req: Request, _res: Response, next: NextFunction) => {
                lateNexts.push(next);
              },
              (_req: Request, _res: Response, next: NextFunction) => {
                laterRan++;
                next();
              },
            ],
            { app, timeoutMs: 200 },
          ),
        );
        io.of('/hang').on('connection', () => connections++);
      });
      for (const { options } of transports) {
        const err = await refused(srv.connect('/hang', options));
        assert.equal(err.message, 'Service Unavailable');
        assert.deepEqual(err.data, { code: ERR_MIDDLEWARE_TIMEOUT, status: 503 });
        assert.equal(pendingSockets(srv, '/hang'), 0);
      }
      // The hung middleware finally calls next: nothing happens. A later middleware would run
      // inside next(), a connection a tick later: both are over once this turn of the loop is.
      for (const next of lateNexts) next();
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(lateNexts.length, 2);
      assert.equal(laterRan, 0);
      assert.equal(connections, 0);
    });
  });
}

test('without onError, 5xx middleware errors go to console.error and 4xx ones do not', async (ctx) => {
  const logged = ctx.mock.method(console, 'error', (..._args: unknown[]) => undefined);
  const failure = new Error('disk full on /var/db');
  const srv = await start(ctx, ({ io }) => {
    io.of('/five').use(
      wrapExpressMiddleware((_req: Request, _res: Response, next: NextFunction) => {
        next(failure);
      }),
    );
    io.of('/four').use(
      wrapExpressMiddleware(() => {
        throw httpError(403, 'Not yours');
      }),
    );
  });
  const five = await refused(srv.connect('/five'));
  assert.equal(five.message, 'Internal Server Error');
  assert.deepEqual(five.data, { code: ERR_MIDDLEWARE_ERROR, status: 500 });
  assert.equal(logged.mock.callCount(), 1);
  assert.ok(logged.mock.calls[0]?.arguments.includes(failure));

  const four = await refused(srv.connect('/four'));
  assert.equal(four.message, 'Not yours');
  assert.deepEqual(four.data, { code: ERR_MIDDLEWARE_ERROR, status: 403 });
  assert.equal(logged.mock.callCount(), 1);
});

test('an error thrown after next() reaches onError and does not change the outcome', async (ctx) => {
  const reported: unknown[] = [];
  const late = new Error('thrown after next');
  let connections = 0;
  const srv = await start(ctx, ({ io }) => {
    io.of('/late').use(
      wrapExpressMiddleware(
        [
          (_req: Request, _res: Response, next: NextFunction) => {
            next();
            throw late;
          },
          passThrough,
        ],
        { onError: (err) => reported.push(err) },
      ),
    );
    io.of('/late').on('connection', () => connections++);
  });
  await connected(srv.connect('/late'));
  assert.deepEqual(reported, [late]);
  assert.equal(connections, 1);
});

test('a second next() is ignored: later middleware runs exactly once', async (ctx) => {
  const ran: string[] = [];
  let connections = 0;
  // Every run of the second middleware, to wait for each to finish.
  const slowRuns: Promise<void>[] = [];
  // The second middleware is still busy when the first calls next() again (pacing, not an
  // assertion: it only has to be in flight).
  const slow: Mw = (_req, _res, next) => {
    const run = (async () => {
      ran.push('slow start');
      await delay(10);
      ran.push('slow end');
      next();
    })();
    slowRuns.push(run);
    return run;
  };
  const last: Mw = (_req, _res, next) => {
    ran.push('last');
    next();
  };
  const srv = await start(ctx, ({ io }) => {
    io.of('/twice').use(
      wrapExpressMiddleware([
        (_req: Request, _res: Response, next: NextFunction) => {
          next();
          next();
        },
        slow,
        last,
      ]),
    );
    io.of('/then-error').use(
      wrapExpressMiddleware([
        (_req: Request, _res: Response, next: NextFunction) => {
          next();
          next(new Error('a second call, with an error'));
        },
        slow,
        last,
      ]),
    );
    for (const nsp of ['/twice', '/then-error']) {
      io.of(nsp).use((_socket, next) => {
        ran.push('namespace middleware');
        next();
      });
      io.of(nsp).on('connection', () => connections++);
    }
  });
  for (const nsp of ['/twice', '/then-error']) {
    ran.length = 0;
    slowRuns.length = 0;
    await connected(srv.connect(nsp));
    // A second next() that got through would have started the second middleware again at once,
    // before the first run ended: once every run has ended (and called the last middleware
    // synchronously), the order shows any extra run.
    await Promise.all(slowRuns);
    assert.deepEqual(ran, ['slow start', 'slow end', 'last', 'namespace middleware'], nsp);
  }
  assert.equal(connections, 2);
});

test('next() after the response ended is ignored: the socket is refused, later middleware never runs', async (ctx) => {
  let laterRan = 0;
  let connections = 0;
  const srv = await start(ctx, ({ io }) => {
    io.of('/ended').use(
      wrapExpressMiddleware([
        (_req: Request, res: Response, next: NextFunction) => {
          res.status(403).send('No');
          next();
        },
        (_req: Request, _res: Response, next: NextFunction) => {
          laterRan++;
          next();
        },
      ]),
    );
    io.of('/ended').on('connection', () => connections++);
  });
  const err = await refused(srv.connect('/ended'));
  assert.equal(err.message, 'No');
  assert.deepEqual(err.data, { code: ERR_MIDDLEWARE_ENDED, status: 403 });
  // next() came right after send(), in the same call: a later middleware would already have run.
  assert.equal(laterRan, 0);
  assert.equal(connections, 0);
});

test('next() after res.end() is ignored when express-session ran earlier in the list', async (ctx) => {
  // express-session wraps res.end and ends the response only once the new session is saved.
  let laterRan = 0;
  let connections = 0;
  const srv = await start(
    ctx,
    ({ io, session }) => {
      io.of('/session-ended').use(
        wrapExpressMiddleware([
          session,
          (_req: Request, res: Response, next: NextFunction) => {
            res.status(403).end();
            next();
          },
          (_req: Request, _res: Response, next: NextFunction) => {
            laterRan++;
            next();
          },
        ]),
      );
      io.of('/session-ended').on('connection', () => connections++);
    },
    { sessionOptions: { saveUninitialized: true } },
  );
  const result = await outcome(srv.connect('/session-ended'));
  assert.notEqual(
    result,
    'connected',
    'the middleware ended the response: the socket must be refused',
  );
  assert.deepEqual((result as ConnectError).data, { code: ERR_MIDDLEWARE_ENDED, status: 403 });
  assert.equal(laterRan, 0);
  assert.equal(connections, 0);
});

test('timers are cleared and no socket is left pending on every path', async (ctx) => {
  const paths: { name: string; mw: Mw; code?: string }[] = [
    { name: 'next', mw: passThrough },
    {
      name: 'router',
      mw: (_req, _res, next) => {
        next('router');
      },
    },
    {
      name: 'ended',
      mw: (_req, res) => {
        res.sendStatus(401);
      },
      code: ERR_MIDDLEWARE_ENDED,
    },
    {
      name: 'thrown',
      mw: () => {
        throw new Error('boom');
      },
      code: ERR_MIDDLEWARE_ERROR,
    },
    {
      name: 'rejected',
      mw: async () => {
        await delay(1);
        throw new Error('boom');
      },
      code: ERR_MIDDLEWARE_ERROR,
    },
    {
      name: 'next-error',
      mw: (_req, _res, next) => {
        next(new Error('boom'));
      },
      code: ERR_MIDDLEWARE_ERROR,
    },
    { name: 'timeout', mw: () => undefined, code: ERR_MIDDLEWARE_TIMEOUT },
  ];
  const srv = await start(ctx, ({ io }) => {
    for (const { name, mw } of paths) {
      // A long timeout: a timer left behind would still be there when the test looks.
      const timeoutMs = name === 'timeout' ? 200 : 60_000;
      io.of(`/${name}`).use(wrapExpressMiddleware(mw, { timeoutMs, onError: () => undefined }));
    }
  });
  const baseline = await settledTimeouts();
  for (const { options } of transports) {
    for (const { name, code } of paths) {
      const socket = srv.connect(`/${name}`, options);
      if (code === undefined) await connected(socket);
      else assert.equal((await refused(socket)).data?.code, code, name);
      socket.disconnect();
      await waitFor(
        () => activeTimeouts() <= baseline && pendingSockets(srv, `/${name}`) === 0,
        3000,
        `no timer or pending socket left after the '${name}' path`,
      );
    }
  }
});

for (const { name: transport, options } of transports) {
  test(`[${transport}] a client that leaves mid-handshake: timer cleared, pending socket gone, late next() does nothing`, async (ctx) => {
    let release: NextFunction | undefined;
    let laterRan = 0;
    let connections = 0;
    const srv = await start(ctx, ({ io }) => {
      io.of('/leave').use(
        wrapExpressMiddleware(
          [
            (_req: Request, _res: Response, next: NextFunction) => {
              release = next;
            },
            (_req: Request, _res: Response, next: NextFunction) => {
              laterRan++;
              next();
            },
          ],
          { timeoutMs: 60_000 },
        ),
      );
      io.of('/leave').on('connection', () => connections++);
    });
    const baseline = await settledTimeouts();
    const socket = srv.connect('/leave', options);
    let clientEvents = 0;
    socket.on('connect', () => clientEvents++);
    socket.on('connect_error', () => clientEvents++);
    await waitFor(() => release !== undefined && pendingSockets(srv, '/leave') === 1);
    socket.disconnect();
    await waitFor(
      () => pendingSockets(srv, '/leave') === 0 && activeTimeouts() <= baseline,
      3000,
      'the pending socket and its timer to go',
    );
    // A later middleware would run inside next(), a connection a tick later: both are over once
    // this turn of the loop is.
    release?.();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(laterRan, 0);
    assert.equal(connections, 0);
    assert.equal(srv.io.of('/leave').sockets.size, 0);
    assert.equal(pendingSockets(srv, '/leave'), 0);
    assert.equal(clientEvents, 0);
    assert.equal(socket.connected, false);
  });
}

test('a client that left before the wrap ran never reaches the Express middleware', async (ctx) => {
  let release: ((err?: Error) => void) | undefined;
  let expressRan = 0;
  let connections = 0;
  const srv = await start(ctx, ({ io }) => {
    io.of('/gone').use((_socket, next) => {
      release = next;
    });
    io.of('/gone').use(
      wrapExpressMiddleware(
        (_req: Request, _res: Response, next: NextFunction) => {
          expressRan++;
          next();
        },
        { timeoutMs: 60_000 },
      ),
    );
    io.of('/gone').on('connection', () => connections++);
  });
  const baseline = await settledTimeouts();
  const socket = srv.connect('/gone');
  await waitFor(() => release !== undefined);
  socket.disconnect();
  await waitFor(() => srv.io.engine.clientsCount === 0, 3000, 'the connection to close');
  release?.();
  await waitFor(
    () => pendingSockets(srv, '/gone') === 0 && activeTimeouts() <= baseline,
    3000,
    'the pending socket and timers to go',
  );
  assert.equal(expressRan, 0);
  assert.equal(connections, 0);
  assert.equal(socket.connected, false);
});

test('a refused client does not reconnect, even with reconnection on', async (ctx) => {
  let attempts = 0;
  const srv = await start(ctx, ({ io }) => {
    io.of('/refuse').use(
      wrapExpressMiddleware((_req: Request, res: Response) => {
        attempts++;
        res.sendStatus(401);
      }),
    );
  });
  for (const { options } of transports) {
    attempts = 0;
    const socket = srv.connect('/refuse', {
      ...options,
      reconnection: true,
      reconnectionDelay: 10,
      reconnectionDelayMax: 10,
    });
    const err = await refused(socket);
    assert.deepEqual(err.data, { code: ERR_MIDDLEWARE_ENDED, status: 401 });
    // Inactive once refused: socket.io-client then never reconnects it (an engine-level error
    // would leave it active, retrying), so no time window is needed to watch for attempts.
    assert.equal(socket.active, false);
    assert.equal(attempts, 1);
  }
});

test('setup mistakes throw a TypeError at once', () => {
  const ok: ExpressMiddleware = passThrough;
  const bad = (value: unknown) => value as never;
  const errorHandler = (_err: unknown, _req: unknown, _res: unknown, _next: unknown) => undefined;
  const mistakes: [string, () => unknown][] = [
    ['a string', () => wrapExpressMiddleware(bad('helmet'))],
    ['undefined', () => wrapExpressMiddleware(bad(undefined))],
    ['an object', () => wrapExpressMiddleware(bad({ handle: ok }))],
    ['an empty array', () => wrapExpressMiddleware([])],
    ['a non-function in the list', () => wrapExpressMiddleware([ok, bad(42)])],
    ['an error handler', () => wrapExpressMiddleware(bad(errorHandler))],
    ['an error handler in the list', () => wrapExpressMiddleware([ok, bad(errorHandler)])],
    ['timeoutMs 0', () => wrapExpressMiddleware(ok, { timeoutMs: 0 })],
    ['timeoutMs -1', () => wrapExpressMiddleware(ok, { timeoutMs: -1 })],
    ['timeoutMs NaN', () => wrapExpressMiddleware(ok, { timeoutMs: NaN })],
    ["timeoutMs '100'", () => wrapExpressMiddleware(ok, { timeoutMs: bad('100') })],
    ['timeoutMs Infinity', () => wrapExpressMiddleware(ok, { timeoutMs: Infinity })],
    ['app {}', () => wrapExpressMiddleware(ok, { app: bad({}) })],
    ['app the express factory', () => wrapExpressMiddleware(ok, { app: bad(express5) })],
    ['app a Router', () => wrapExpressMiddleware(ok, { app: bad(express5.Router()) })],
    ['onError a string', () => wrapExpressMiddleware(ok, { onError: bad('log') })],
    ['options a string', () => wrapExpressMiddleware(ok, bad('fast'))],
  ];
  for (const [name, call] of mistakes) {
    assert.throws(
      call,
      (err: unknown) =>
        err instanceof TypeError && err.message.startsWith('wrapExpressMiddleware:'),
      name,
    );
  }
  // The same calls done right do not throw.
  assert.equal(typeof wrapExpressMiddleware(ok, { timeoutMs: 1 }), 'function');
  assert.equal(typeof wrapExpressMiddleware([ok, ok], { app: express4() }), 'function');
  assert.equal(
    typeof wrapExpressMiddleware(ok, { app: express5(), onError: () => undefined }),
    'function',
  );
});
