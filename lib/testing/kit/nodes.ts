// The app under test, as nodes: each a Socket.IO server with its HTTP server listening on a
// loopback port. The kit listens on 127.0.0.1:0 when the server is not listening yet, uses it as
// it is when it is, and closes what it opened.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from 'socket.io';
import { crossNode } from '../../live/revocation.js';
import type { ExpressMiddleware, PassportAuthenticator } from '../../core/types.js';

/** The app under test, as the kit needs it. Your app's own objects. */
export interface TestKitApp {
  /** The Socket.IO server, attached to its HTTP server or not yet attached. */
  io: Server;
  /** The session middleware the namespaces use (express-session, or cookie-session). */
  session: ExpressMiddleware;
  /**
   * The Passport authenticator whose `serializeUser` stores the user in the session.
   * @default undefined (`loginAs` is not available; `loginWith` is)
   */
  passport?: PassportAuthenticator;
  /**
   * The request handler (your Express app), for an `io` that is not attached to an HTTP server
   * yet: the kit then creates the server and attaches `io` to it.
   * @default undefined (`io` must be attached to an HTTP server)
   */
  app?: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * Closes the app (its Socket.IO server, HTTP server, store, timers): `kit.close()` calls it.
   * @default undefined (when the kit made the HTTP server listen, it closes the Socket.IO
   * server and the HTTP server; otherwise it leaves them to you)
   */
  close?: () => unknown;
}

/**
 * Builds one node of your app, each time it is called (`node` is 0 for the first): for several
 * nodes, each on the same session store and an adapter that spans nodes.
 */
export type TestKitAppFactory = (node: number) => TestKitApp | Promise<TestKitApp>;

/** One running copy of the app. */
export interface TestNode {
  /** Its position in `kit.nodes`: 0 for the first. */
  readonly index: number;
  /** Its base URL: `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Its Socket.IO server. */
  readonly io: Server;
  /**
   * Stops this node, as a deploy or a crash would: the app's `close`, or else, when the kit made
   * it listen, its Socket.IO and HTTP servers.
   */
  close(): Promise<void>;
}

/** A node, and what the kit keeps for it. */
export interface NodeRecord extends TestNode {
  readonly app: TestKitApp;
}

/** Checks an app (given, or returned by the factory); throws a TypeError naming `helper`. */
export function checkApp(helper: string, app: unknown): TestKitApp {
  if (app === null || typeof app !== 'object') {
    throw new TypeError(`${helper}: expected the app as { io, session, passport?, app?, close? }`);
  }
  const { io, session, passport, app: handler, close } = app as Partial<Record<string, unknown>>;
  const server = io as Partial<Server> | undefined;
  if (typeof server?.of !== 'function' || typeof server.close !== 'function') {
    throw new TypeError(`${helper}: io must be a Socket.IO Server`);
  }
  if (typeof session !== 'function') {
    throw new TypeError(`${helper}: session must be the session middleware (express-session)`);
  }
  if (passport !== undefined && !hasMethod(passport, 'initialize')) {
    throw new TypeError(`${helper}: passport must be a Passport authenticator`);
  }
  if (handler !== undefined && typeof handler !== 'function') {
    throw new TypeError(`${helper}: app must be a request handler (your Express app)`);
  }
  if (close !== undefined && typeof close !== 'function') {
    throw new TypeError(`${helper}: close must be a function`);
  }
  const attached: unknown = (server as Server).httpServer;
  if (handler === undefined && !attached) {
    throw new TypeError(
      `${helper}: io is not attached to an HTTP server; pass app (your Express app) so the kit ` +
        'can create one, or attach io to your server first',
    );
  }
  return app as TestKitApp;
}

function hasMethod(value: unknown, name: string): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Record<string, unknown>)[name] === 'function'
  );
}

function urlOf(address: AddressInfo | string | null, helper: string): string {
  if (address === null || typeof address === 'string') {
    throw new TypeError(`${helper}: the HTTP server must listen on a TCP port, not ${address}`);
  }
  const { address: host, family, port } = address;
  if (host === '::' || host === '0.0.0.0') return `http://127.0.0.1:${port}`;
  return family === 'IPv6' ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

/** Makes the app listen (on 127.0.0.1:0, unless it already listens) and returns its node. */
export async function startNode(app: TestKitApp, index: number): Promise<NodeRecord> {
  const { io } = app;
  const attached = io.httpServer as ReturnType<typeof createServer> | undefined;
  const http = attached ?? createServer(app.app);
  if (!attached) io.attach(http);
  const opened = !http.listening;
  if (opened) {
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
  }
  const url = urlOf(http.address(), 'createTestKit');
  let closing: Promise<void> | undefined;
  return {
    index,
    url,
    io,
    app,
    close() {
      closing ??= (async () => {
        if (app.close) {
          await app.close();
        } else if (opened) {
          const closed = io.close(); // disconnects every socket, closes the HTTP server too
          http.closeAllConnections();
          await closed;
        }
      })();
      return closing;
    },
  };
}

/** Whether the app's adapter reaches other nodes: the package's own test of it. */
export function spansNodes(io: Server): boolean {
  return crossNode(io);
}
