import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import type { NextFunction, Request, Response } from 'express';
import type { Namespace } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import { ERR_MIDDLEWARE_ENDED, wrapExpressMiddleware } from '../../lib/index.js';
import { connected, connectError } from '../support/bounded.js';
import { type ConnectError, request } from '../support/client.js';
import {
  start,
  type ExpressFlavour,
  type TestContext as ServerContext,
} from '../support/server.js';

type Mw = (req: Request, res: Response, next: NextFunction) => unknown;
type Probed = IncomingMessage & { probe?: unknown };

const flavours: readonly ExpressFlavour[] = ['express4', 'express5'];

/** A namespace whose only middleware is `mw`, run against the app of the test server. */
function refusing(ctx: ServerContext, name: string, mw: Mw | Mw[]): void {
  ctx.io.of(name).use(wrapExpressMiddleware(mw, { app: ctx.app }));
}

/** The client's `connect_error`; a namespace refusal leaves the client inactive. */
async function refused(socket: ClientSocket): Promise<ConnectError> {
  const err = await connectError(socket);
  assert.equal(socket.active, false, 'a refused socket must not try to reconnect');
  return err;
}

function answerProbe(nsp: Namespace): void {
  nsp.on('connection', (socket) => {
    socket.on('probe', (ack: (value: unknown) => void) => {
      ack((socket.request as Probed).probe);
    });
  });
}

for (const flavour of flavours) {
  describe(`with an ${flavour} app`, () => {
    test('headers set before the end are readable; headersSent and writableEnded follow the end', async (ctx) => {
      const seen: Record<string, unknown>[] = [];
      const srv = await start(
        ctx,
        (c) => {
          refusing(c, '/headers', (_req, res) => {
            res.setHeader('x-reason', 'quota');
            res.set('Retry-After', '30');
            seen.push({ headersSent: res.headersSent, writableEnded: res.writableEnded });
            res.on('finish', () => {
              seen.push({ inFinish: res.getHeader('x-reason') });
            });
            res.status(429).send('Slow down');
            seen.push({
              headersSent: res.headersSent,
              writableEnded: res.writableEnded,
              reason: res.getHeader('x-reason'),
              retryAfter: res.get('Retry-After'),
              type: res.get('Content-Type'),
              length: res.get('Content-Length'),
            });
          });
          refusing(c, '/location', (_req, res) => {
            res.location('/elsewhere').status(303).end();
          });
        },
        { express: flavour },
      );
      const err = await refused(srv.connect('/headers'));
      assert.equal(err.message, 'Slow down');
      assert.deepEqual(err.data, { code: ERR_MIDDLEWARE_ENDED, status: 429 });
      // What the response set off (hooks, a save, 'finish' and the callbacks on the tick after the
      // end) is done before the refusal can reach the client: no sleep needed.
      assert.deepEqual(seen, [
        { headersSent: false, writableEnded: false },
        {
          headersSent: true,
          writableEnded: true,
          reason: 'quota',
          retryAfter: '30',
          type: 'text/html; charset=utf-8',
          length: '9',
        },
        { inFinish: 'quota' },
      ]);

      const moved = await refused(srv.connect('/location'));
      assert.deepEqual(moved.data, {
        code: ERR_MIDDLEWARE_ENDED,
        status: 303,
        location: '/elsewhere',
      });
      assert.equal(moved.message, 'See Other');
    });

    test("res.on('finish') fires once, also when the middleware ends twice", async (ctx) => {
      let finishes = 0;
      let endCallbacks = 0;
      const srv = await start(
        ctx,
        (c) => {
          refusing(c, '/twice', (_req, res) => {
            res.on('finish', () => finishes++);
            res.status(401).end('first', () => endCallbacks++);
            res.end('second', () => endCallbacks++);
          });
        },
        { express: flavour },
      );
      const err = await refused(srv.connect('/twice'));
      assert.equal(err.message, 'first');
      assert.deepEqual(err.data, { code: ERR_MIDDLEWARE_ENDED, status: 401 });
      // What the response set off (hooks, a save, 'finish' and the callbacks on the tick after the
      // end) is done before the refusal can reach the client: no sleep needed.
      assert.equal(finishes, 1);
      assert.equal(endCallbacks, 1);
    });

    test('res.write chunks and res.end make the message; write callbacks run', async (ctx) => {
      const callbacks: string[] = [];
      const srv = await start(
        ctx,
        (c) => {
          refusing(c, '/chunks', (_req, res) => {
            res.status(401);
            res.setHeader('content-type', 'text/plain; charset=utf-8');
            res.write('Please ', () => callbacks.push('write'));
            res.write(Buffer.from('log '));
            res.write('696e', 'hex');
            res.end(' first', 'utf8', () => callbacks.push('end'));
            // Ignored: the response has ended.
            callbacks.push(`write after end: ${String(res.write(' and more'))}`);
          });
        },
        { express: flavour },
      );
      const err = await refused(srv.connect('/chunks'));
      assert.equal(err.message, 'Please log in first');
      assert.deepEqual(err.data, { code: ERR_MIDDLEWARE_ENDED, status: 401 });
      // What the response set off (hooks, a save, 'finish' and the callbacks on the tick after the
      // end) is done before the refusal can reach the client: no sleep needed.
      assert.deepEqual(callbacks, ['write after end: false', 'write', 'end']);
    });

    test('Buffer bodies: text is shown, a binary body gives the status text', async (ctx) => {
      const srv = await start(
        ctx,
        (c) => {
          refusing(c, '/end-buffer', (_req, res) => {
            res.status(400).end(Buffer.from('Buffer end'));
          });
          refusing(c, '/send-text-buffer', (_req, res) => {
            res.status(400).type('text').send(Buffer.from('Buffer send'));
          });
          refusing(c, '/uint8array', (_req, res) => {
            res.status(400).end(new Uint8Array([0x68, 0x69]));
          });
          refusing(c, '/binary', (_req, res) => {
            res.status(400).send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
          });
        },
        { express: flavour },
      );
      const expected: [string, string][] = [
        ['/end-buffer', 'Buffer end'],
        ['/send-text-buffer', 'Buffer send'],
        ['/uint8array', 'hi'],
        ['/binary', 'Bad Request'],
      ];
      for (const [nsp, message] of expected) {
        const err = await refused(srv.connect(nsp));
        assert.equal(err.message, message, nsp);
        assert.deepEqual(err.data, { code: ERR_MIDDLEWARE_ENDED, status: 400 }, nsp);
      }
    });

    test("express-session's on-headers hook runs on the stand-in: a new session sets its cookie", async (ctx) => {
      for (const saveUninitialized of [true, false]) {
        let setCookie: unknown = 'not read';
        const srv = await start(
          ctx,
          (c) => {
            refusing(c, '/session', [
              c.session as Mw,
              (_req, res) => {
                res.on('finish', () => {
                  setCookie = res.getHeader('set-cookie');
                });
                res.status(401).send('Log in');
              },
            ]);
          },
          { express: flavour, sessionOptions: { saveUninitialized } },
        );
        const err = await refused(srv.connect('/session'));
        assert.equal(err.message, 'Log in');
        assert.deepEqual(err.data, { code: ERR_MIDDLEWARE_ENDED, status: 401 });
        // What the response set off (hooks, a save, 'finish' and the callbacks on the tick after the
        // end) is done before the refusal can reach the client: no sleep needed.
        if (saveUninitialized) {
          assert.ok(Array.isArray(setCookie), 'express-session set a cookie on writeHead');
          assert.match(String(setCookie[0]), /^connect\.sid=s%3A[^;]+; Path=\/; HttpOnly$/);
          assert.equal(srv.store.sets, 1, 'and saved the new session before the end');
        } else {
          assert.equal(setCookie, undefined);
          assert.equal(srv.store.sets, 0);
        }
      }
    });
  });
}

test('an on-headers style hook on res.writeHead runs once, before the headers are sent', async (ctx) => {
  const seen: unknown[] = [];
  // What the on-headers package does: wrap writeHead, and change headers just before they go.
  const onHeaders: Mw = (_req, res, next) => {
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => Response;
    res.writeHead = ((...args: unknown[]) => {
      seen.push(`hook, headersSent ${String(res.headersSent)}`);
      res.setHeader('x-response-time', '1ms');
      return writeHead(...args);
    }) as Response['writeHead'];
    next();
  };
  const srv = await start(ctx, (c) => {
    for (const [nsp, end] of [
      ['/send', (res: Response) => res.status(401).send('Log in')],
      ['/end', (res: Response) => res.status(401).end('Log in')],
      [
        '/redirect',
        (res: Response) => {
          res.redirect('/login');
        },
      ],
    ] as const) {
      refusing(c, nsp, [
        onHeaders,
        (_req, res) => {
          res.on('finish', () => seen.push(res.getHeader('x-response-time')));
          end(res);
        },
      ]);
    }
  });
  for (const nsp of ['/send', '/end', '/redirect']) {
    seen.length = 0;
    const err = await refused(srv.connect(nsp));
    assert.deepEqual(
      err.data,
      nsp === '/redirect'
        ? { code: ERR_MIDDLEWARE_ENDED, status: 302, location: '/login' }
        : { code: ERR_MIDDLEWARE_ENDED, status: 401 },
      nsp,
    );
    // What the response set off (hooks, a save, 'finish' and the callbacks on the tick after the
    // end) is done before the refusal can reach the client: no sleep needed.
    assert.deepEqual(seen, ['hook, headersSent false', '1ms'], nsp);
  }
});

test('res.locals is a fresh object for every socket, shared along one list', async (ctx) => {
  const srv = await start(ctx, ({ io }) => {
    io.of('/locals').use(
      wrapExpressMiddleware([
        (_req: Request, res: Response, next: NextFunction) => {
          res.locals.visits = ((res.locals.visits as number | undefined) ?? 0) + 1;
          next();
        },
        (req: Request, res: Response, next: NextFunction) => {
          (req as Probed).probe = { ...res.locals };
          next();
        },
      ]),
    );
    answerProbe(io.of('/locals'));
  });
  const sockets = [srv.connect('/locals'), srv.connect('/locals'), srv.connect('/locals')];
  for (const socket of sockets) {
    await connected(socket);
    assert.deepEqual(await request(socket, 'probe'), { visits: 1 });
  }
});

test('body capture stops at 4096 bytes: a 1 MB body still refuses with a 200-character message', async (ctx) => {
  // `{"message":"…"}` is 14 bytes plus the message.
  const jsonOf = (bytes: number): string => JSON.stringify({ message: 'm'.repeat(bytes - 14) });
  assert.equal(jsonOf(4096).length, 4096);
  const srv = await start(ctx, (c) => {
    refusing(c, '/megabyte', (_req, res) => {
      res.status(413).send('y'.repeat(1024 * 1024));
    });
    refusing(c, '/megabyte-chunks', (_req, res) => {
      res.status(413).type('text');
      for (let i = 0; i < 64; i++) res.write(String.fromCharCode(97 + (i % 26)).repeat(16 * 1024));
      res.end();
    });
    refusing(c, '/json-4096', (_req, res) => {
      res.status(400).type('json').send(jsonOf(4096));
    });
    // One byte more than is kept: the cut JSON does not parse, so the status text is shown.
    refusing(c, '/json-4097', (_req, res) => {
      res.status(400).type('json').send(jsonOf(4097));
    });
  });
  const big = await refused(srv.connect('/megabyte'));
  assert.equal(big.message, 'y'.repeat(200));
  assert.deepEqual(big.data, { code: ERR_MIDDLEWARE_ENDED, status: 413 });
  const chunks = await refused(srv.connect('/megabyte-chunks'));
  assert.equal(chunks.message, 'a'.repeat(200));
  assert.deepEqual(chunks.data, { code: ERR_MIDDLEWARE_ENDED, status: 413 });
  const kept = await refused(srv.connect('/json-4096'));
  assert.equal(kept.message, 'm'.repeat(200));
  const cut = await refused(srv.connect('/json-4097'));
  assert.equal(cut.message, 'Bad Request');
  assert.deepEqual(cut.data, { code: ERR_MIDDLEWARE_ENDED, status: 400 });
});

test('headers set with setHeader before res.writeHead(status) are used', async (ctx) => {
  const srv = await start(ctx, (c) => {
    refusing(c, '/set-then-write-head', (_req, res) => {
      res.setHeader('Location', '/login');
      res.setHeader('Content-Type', 'text/html');
      res.writeHead(302);
      res.end('<p>Log <b>in</b></p>');
    });
  });
  const err = await refused(srv.connect('/set-then-write-head'));
  assert.deepEqual(err.data, { code: ERR_MIDDLEWARE_ENDED, status: 302, location: '/login' });
  assert.equal(err.message, 'Log in');
});

test('a redirect written with res.writeHead(302, { Location }) refuses with that location', async (ctx) => {
  const srv = await start(ctx, (c) => {
    refusing(c, '/write-head-location', (_req, res) => {
      res.writeHead(302, { Location: '/login' });
      res.end();
    });
  });
  const err = await refused(srv.connect('/write-head-location'));
  assert.deepEqual(err.data, { code: ERR_MIDDLEWARE_ENDED, status: 302, location: '/login' });
  assert.equal(err.message, 'Found');
});

test('a Content-Type given to res.writeHead decides the message: HTML tags are stripped', async (ctx) => {
  const srv = await start(ctx, (c) => {
    refusing(c, '/write-head-html', (_req, res) => {
      res.writeHead(403, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end('<h1>No</h1> <p>way</p>');
    });
  });
  const err = await refused(srv.connect('/write-head-html'));
  assert.deepEqual(err.data, { code: ERR_MIDDLEWARE_ENDED, status: 403 });
  assert.equal(err.message, 'No way');
});
