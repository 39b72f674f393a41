import type { IncomingMessage } from 'node:http';
import type { Server, Socket } from 'socket.io';
import { type Chain, endedRefusal, runChain } from '../core/chain.js';
import { ERR_MIDDLEWARE_TIMEOUT, refusal } from '../core/errors.js';
import { requestOf } from '../core/request.js';
import { serverState } from '../core/state.js';
import { type ResponseStandIn, createResponse, endedMessage } from '../core/response.js';
import { checkApp, checkFunction, checkMiddleware, checkOptions, checkTimeout } from './setup.js';
import type { ErrorHook, ExpressApp, ExpressMiddleware } from '../core/types.js';

/** Options for {@link wrapExpressMiddleware}. */
export interface WrapExpressMiddlewareOptions {
  /**
   * How long, in milliseconds, the middleware may take before the socket is refused with
   * `ERR_MIDDLEWARE_TIMEOUT` (status 503). A hung middleware never holds a socket longer.
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * Your Express application. The middleware then sees its settings (`trust proxy` for `req.ip`,
   * `query parser`, `etag`) and its request and response prototypes.
   * @default a new `express()` application with Express's default settings
   */
  app?: ExpressApp;
  /**
   * Receives errors the client is not shown in full: a middleware error refused as a 500, and an
   * error thrown after the middleware had already finished.
   * @default logs 5xx errors with `console.error`, like Express's final handler; the rest go to
   * the `socket.io-session-auth` debug log
   */
  onError?: ErrorHook;
}

/** Socket.IO namespace middleware, as accepted by `namespace.use()`. */
export type SocketMiddleware = (socket: Socket, next: (err?: Error) => void) => void;

/**
 * The server's default `express()` app, for its settings and prototypes, when none is given: one
 * per server, made on first use and kept on its record (state.ts), so that every namespace and
 * middleware of the server without an `app` shares its request prototype and its session reads.
 * (One per call would cost some 65 µs and 5 KB per socket here, and a prototype each.)
 */
export function expressApp(helper: string, io: Server): ExpressApp {
  const server = serverState(io);
  if (!server.defaultApp) {
    try {
      // Loaded on first use, from the app's own dependencies, so Express 4 and 5 both serve.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const express = require('express') as () => ExpressApp;
      server.defaultApp = express();
    } catch (cause) {
      throw new TypeError(
        `${helper}: the \`express\` package is required (npm install express), or pass options.app`,
        { cause },
      );
    }
  }
  return server.defaultApp;
}

/**
 * Runs Express middleware, in order, as Socket.IO namespace middleware. Each socket gets its own
 * `socket.request` (sharing the connection's headers) and a response stand-in with Express's
 * helpers. Middleware that ends the response, hangs, or fails refuses the socket with a
 * {@link SessionAuthError} the client sees in `connect_error`.
 *
 * @example
 * ```ts
 * import rateLimit from 'express-rate-limit';
 * io.of('/chat').use(wrapExpressMiddleware(rateLimit({ limit: 20 }), { app }));
 * // a limited client gets connect_error: err.data = { code: 'ERR_MIDDLEWARE_ENDED', status: 429 }
 * ```
 */
export function wrapExpressMiddleware(
  middleware: ExpressMiddleware | readonly ExpressMiddleware[],
  options?: WrapExpressMiddlewareOptions,
): SocketMiddleware {
  const helper = 'wrapExpressMiddleware';
  const list = checkMiddleware(helper, middleware);
  const { timeoutMs = 10_000, app: appOption, onError } = checkOptions(helper, options);
  checkTimeout(helper, timeoutMs);
  checkApp(helper, appOption);
  checkFunction(helper, 'options.onError', onError);
  const chain: Chain<ResponseStandIn> = { middleware: list, timeoutMs, onError, express: true };

  return function expressMiddlewareAdapter(socket, next) {
    if (socket.conn.readyState !== 'open') {
      // The client left before its turn came: Socket.IO discards the socket when next is called.
      next(refusal(ERR_MIDDLEWARE_TIMEOUT, 503));
      return;
    }
    const app = appOption ?? expressApp(helper, socket.nsp.server);
    const req = requestOf(socket, app) as IncomingMessage & { res?: unknown };
    runChain(
      chain,
      socket,
      req,
      (ended) => {
        const res = createResponse(req, app, (response, body) => {
          ended(
            endedRefusal(
              response.statusCode,
              endedMessage(response, body),
              response.getHeader('location'),
            ),
          );
        });
        req.res = res;
        return res;
      },
      (error) => {
        // Dropped, so that the response stand-in does not live as long as the socket.
        req.res = undefined;
        next(error);
      },
    );
  };
}
