import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test, type TestContext } from 'node:test';
import express5, { type NextFunction, type Request, type Response } from 'express';
import express4 from 'express4';
import type { Namespace, Socket } from 'socket.io';
import {
  Manager,
  type ManagerOptions,
  type Socket as ClientSocket,
  type SocketOptions,
} from 'socket.io-client';
import { wrapExpressMiddleware } from '../../lib/index.js';
import { connected } from '../support/bounded.js';
import { request } from '../support/client.js';
import { start, type TestServer } from '../support/server.js';

type ClientOptions = Partial<ManagerOptions & SocketOptions>;
type Tagged = IncomingMessage & { tag?: string; first?: number; probe?: unknown };

const transports: readonly { name: string; options: ClientOptions }[] = [
  { name: 'polling', options: {} },
  { name: 'websocket-only', options: { transports: ['websocket'] } },
];

/** One Manager: every namespace socket it makes shares one engine connection. */
function sharedConnection(ctx: TestContext, srv: TestServer, options: ClientOptions): Manager {
  const manager = new Manager(srv.url, { reconnection: false, ...options });
  const sockets: ClientSocket[] = [];
  const socket = manager.socket.bind(manager);
  manager.socket = (nsp, opts) => {
    const s = socket(nsp, opts);
    sockets.push(s);
    return s;
  };
  ctx.after(() => {
    for (const s of sockets) s.disconnect();
    manager._close();
  });
  return manager;
}

/** Whether a socket's request reads the connection request's own fields (not copies of them). */
function readsThrough(req: IncomingMessage, connection: IncomingMessage): boolean {
  return (
    req.rawHeaders === connection.rawHeaders &&
    req.socket === connection.socket &&
    req.url === connection.url
  );
}

const connections = new WeakMap<object, number>();
let lastConnection = 0;
/** A number for the socket's engine connection: equal numbers, one connection. */
function connectionNumber(socket: Socket): number {
  const number = connections.get(socket.conn) ?? ++lastConnection;
  connections.set(socket.conn, number);
  return number;
}

/** What a namespace's connection handler sees on its socket's request, sent back on `probe`. */
function describeRequest(socket: Socket): Record<string, unknown> {
  const req = socket.request as Tagged;
  return {
    tag: req.tag,
    shared: req.headers['x-shared'],
    readsConnectionRequest: readsThrough(req, socket.client.request),
    connectionRequestTagged: Object.hasOwn(socket.client.request, 'tag'),
    connection: connectionNumber(socket),
  };
}

function answer(nsp: Namespace, what: (socket: Socket) => unknown): void {
  nsp.on('connection', (socket) => {
    socket.on('probe', (ack: (value: unknown) => void) => {
      ack(what(socket));
    });
  });
}

async function probe(socket: ClientSocket): Promise<Record<string, unknown>> {
  await connected(socket);
  return request<Record<string, unknown>>(socket, 'probe');
}

for (const { name: transport, options } of transports) {
  test(`[${transport}] two namespaces on one connection each see what their own middleware set; headers are shared`, async (ctx) => {
    const requests: Tagged[] = [];
    let bRan!: () => void;
    const bHasRun = new Promise<void>((resolve) => {
      bRan = resolve;
    });
    const srv = await start(ctx, ({ io }) => {
      io.of('/a').use(
        wrapExpressMiddleware(
          async (req: Tagged, _res: Response, next: NextFunction) => {
            req.tag = 'a';
            requests.push(req);
            // Still in /a's middleware while /b's runs on the same connection.
            await bHasRun;
            next();
          },
          { timeoutMs: 3000 },
        ),
      );
      io.of('/b').use(
        wrapExpressMiddleware((req: Tagged, _res: Response, next: NextFunction) => {
          req.tag = 'b';
          requests.push(req);
          bRan();
          next();
        }),
      );
      answer(io.of('/a'), describeRequest);
      answer(io.of('/b'), describeRequest);
    });
    const manager = sharedConnection(ctx, srv, {
      ...options,
      extraHeaders: { 'x-shared': 'yes' },
    });
    const [a, b] = await Promise.all([probe(manager.socket('/a')), probe(manager.socket('/b'))]);
    assert.deepEqual(a, {
      tag: 'a',
      shared: 'yes',
      readsConnectionRequest: true,
      connectionRequestTagged: false,
      connection: b.connection,
    });
    assert.deepEqual(b, { ...a, tag: 'b' });
    assert.equal(requests.length, 2);
    assert.notEqual(requests[0], requests[1]);
    assert.equal(requests[0]?.headers, requests[1]?.headers);
  });
}

test("wraps on one namespace share the socket's own request; a namespace without a wrap keeps the connection's", async (ctx) => {
  const srv = await start(ctx, ({ io }) => {
    const nsp = io.of('/layers');
    nsp.use(
      wrapExpressMiddleware((req: Tagged, _res: Response, next: NextFunction) => {
        req.first = 1;
        next();
      }),
    );
    nsp.use((socket, next) => {
      (socket.request as Tagged).tag =
        `plain middleware saw ${(socket.request as Tagged).first ?? 0}`;
      next();
    });
    nsp.use(
      wrapExpressMiddleware((req: Tagged, _res: Response, next: NextFunction) => {
        req.probe = { first: req.first, tag: req.tag };
        next();
      }),
    );
    answer(nsp, (socket) => ({
      ...(socket.request as Tagged & { probe: object }).probe,
      own: socket.request !== socket.client.request,
    }));
    answer(io.of('/untouched'), (socket) => ({
      own: socket.request !== socket.client.request,
    }));
  });
  assert.deepEqual(await probe(srv.connect('/layers')), {
    first: 1,
    tag: 'plain middleware saw 1',
    own: true,
  });
  assert.deepEqual(await probe(srv.connect('/untouched')), { own: false });
});

test('what express-session and Passport set on one namespace is not seen by another on the same connection', async (ctx) => {
  const srv = await start(ctx, ({ io, session, passport }) => {
    const seen = (socket: Socket) => ({
      user: socket.request.user?.username ?? null,
      session: 'session' in socket.request,
    });
    io.of('/private').use(wrapExpressMiddleware([session, passport.session()]));
    io.of('/wrapped').use(
      wrapExpressMiddleware((_req: Request, _res: Response, next: NextFunction) => {
        next();
      }),
    );
    answer(io.of('/private'), seen);
    answer(io.of('/wrapped'), seen);
    answer(io.of('/plain'), seen);
  });
  const cookie = await srv.login('alice');
  for (const { options } of transports) {
    const manager = sharedConnection(ctx, srv, { ...options, extraHeaders: { cookie } });
    assert.deepEqual(await probe(manager.socket('/private')), { user: 'alice', session: true });
    assert.deepEqual(await probe(manager.socket('/wrapped')), { user: null, session: false });
    assert.deepEqual(await probe(manager.socket('/plain')), { user: null, session: false });
  }
});

test('namespaces dressed by an Express 4 app and an Express 5 app on one connection keep their own settings', async (ctx) => {
  const four = express4();
  four.set('trust proxy', true);
  const five = express5();
  const settings = (req: Request) => ({
    ip: req.ip,
    filter: (req.query.filter ?? req.query['filter[kind]']) as unknown,
  });
  let fourDressed!: () => void;
  const fourHasRun = new Promise<void>((resolve) => {
    fourDressed = resolve;
  });
  let fiveDressed!: () => void;
  const fiveHasRun = new Promise<void>((resolve) => {
    fiveDressed = resolve;
  });
  const srv = await start(ctx, ({ io }) => {
    // Each waits for the other to have dressed the shared connection before reading its settings.
    io.of('/four').use(
      wrapExpressMiddleware(
        async (req: Request, _res: Response, next: NextFunction) => {
          fourDressed();
          await fiveHasRun;
          (req as Tagged).probe = settings(req);
          next();
        },
        { app: four, timeoutMs: 3000 },
      ),
    );
    io.of('/five').use(
      wrapExpressMiddleware(
        async (req: Request, _res: Response, next: NextFunction) => {
          fiveDressed();
          await fourHasRun;
          (req as Tagged).probe = settings(req);
          next();
        },
        { app: five, timeoutMs: 3000 },
      ),
    );
    answer(io.of('/four'), (socket) => (socket.request as Tagged).probe);
    answer(io.of('/five'), (socket) => (socket.request as Tagged).probe);
  });
  const manager = sharedConnection(ctx, srv, {
    extraHeaders: { 'x-forwarded-for': '203.0.113.7' },
    query: { 'filter[kind]': 'open' },
  });
  const [fourSaw, fiveSaw] = await Promise.all([
    probe(manager.socket('/four')),
    probe(manager.socket('/five')),
  ]);
  assert.deepEqual(fourSaw, { ip: '203.0.113.7', filter: { kind: 'open' } });
  assert.deepEqual(fiveSaw, { ip: '127.0.0.1', filter: 'open' });
});

test("a field only some connections' requests have is read through each socket's own request, even one set after the connection's first namespace", async (ctx) => {
  type Fielded = IncomingMessage & { tenant?: string; late?: string };
  const srv = await start(ctx, ({ io }) => {
    // Engine-level middleware that sets a field on some connections only.
    io.engine.use((req: Fielded, _res: unknown, next: () => void) => {
      const tenant = req.headers['x-tenant'];
      if (typeof tenant === 'string') req.tenant = tenant;
      next();
    });
    // Every socket gets its own request view (wrapExpressMiddleware), which reads the connection's.
    const view = wrapExpressMiddleware((_req: Request, _res: Response, next: NextFunction) => {
      next();
    });
    io.of('/a').use(view);
    io.of('/b').use(view);
    // On the connection's own request, after /a's socket has its view.
    io.of('/a').on('connection', (socket) => {
      (socket.client.request as Fielded).late = 'set by /a';
    });
    const fields = (socket: Socket): Record<string, unknown> => {
      const req = socket.request as Fielded;
      // null for none: the ack's JSON drops undefined.
      return {
        own: socket.request !== socket.client.request,
        tenant: req.tenant ?? null,
        late: req.late ?? null,
      };
    };
    answer(io.of('/a'), fields);
    answer(io.of('/b'), fields);
  });
  const plain = sharedConnection(ctx, srv, { transports: ['websocket'] });
  assert.deepEqual(await probe(plain.socket('/a')), {
    own: true,
    tenant: null,
    late: null,
  });
  const tenant = sharedConnection(ctx, srv, {
    transports: ['websocket'],
    extraHeaders: { 'x-tenant': 'acme' },
  });
  assert.deepEqual(await probe(tenant.socket('/a')), {
    own: true,
    tenant: 'acme',
    late: null,
  });
  // /b connects on the same connection once /a's socket has connected (and set `late`).
  assert.deepEqual(await probe(tenant.socket('/b')), {
    own: true,
    tenant: 'acme',
    late: 'set by /a',
  });
  // A later connection without the fields reads its own: none.
  const other = sharedConnection(ctx, srv, { transports: ['websocket'] });
  assert.deepEqual(await probe(other.socket('/b')), {
    own: true,
    tenant: null,
    late: null,
  });
});
