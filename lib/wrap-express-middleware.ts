import { STATUS_CODES } from 'node:http';
import type { Socket } from 'socket.io';
import { checkFunction, checkOptions, checkTimeout } from './setup.js';
import {
  ERR_MIDDLEWARE_ENDED,
  ERR_MIDDLEWARE_ERROR,
  ERR_MIDDLEWARE_TIMEOUT,
  SessionAuthError,
  refusal,
  report,
} from './errors.js';
import { onConnectionClose } from './connection-close.js';
import { createResponse, endedMessage } from './response-stand-in.js';
import { dressRequest, socketRequest } from './socket-request.js';
import type { ErrorHook, ExpressApp, ExpressMiddleware } from './types.js';

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

type Next = (err?: unknown) => void;
type Middleware = (req: unknown, res: unknown, next: Next) => unknown;

let defaultApp: ExpressApp | undefined;

function expressApp(): ExpressApp {
  if (!defaultApp) {
    try {
      // Loaded on first use, from the app's own dependencies, so Express 4 and 5 both serve.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const express = require('express') as () => ExpressApp;
      defaultApp = express();
    } catch (cause) {
      throw new TypeError(
        'wrapExpressMiddleware: the `express` package is required (npm install express), or pass options.app',
        { cause },
      );
    }
  }
  return defaultApp;
}

function isExpressApp(app: unknown): app is ExpressApp {
  const { get, request, response } = (app ?? {}) as Partial<ExpressApp>;
  return typeof get === 'function' && typeof request === 'object' && typeof response === 'object';
}

function checkArguments(
  middleware: unknown,
  options: WrapExpressMiddlewareOptions | undefined,
): Middleware[] {
  const list: unknown[] = Array.isArray(middleware) ? [...(middleware as unknown[])] : [middleware];
  if (list.length === 0) {
    throw new TypeError('wrapExpressMiddleware: expected at least one middleware');
  }
  list.forEach((fn, i) => {
    const which = Array.isArray(middleware) ? `middleware[${i}]` : 'middleware';
    if (typeof fn !== 'function') {
      throw new TypeError(`wrapExpressMiddleware: ${which} must be a function, got ${typeof fn}`);
    }
    if (fn.length === 4) {
      throw new TypeError(
        `wrapExpressMiddleware: ${which} takes 4 arguments, so it is an Express error handler; ` +
          'pass (req, res, next) middleware only',
      );
    }
  });
  const { timeoutMs, app, onError } = checkOptions('wrapExpressMiddleware', options);
  checkTimeout('wrapExpressMiddleware', timeoutMs);
  if (app !== undefined && !isExpressApp(app)) {
    throw new TypeError('wrapExpressMiddleware: options.app must be an Express application');
  }
  checkFunction('wrapExpressMiddleware', 'options.onError', onError);
  return list as Middleware[];
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

function statusOf(error: unknown): number {
  if (error !== null && typeof error === 'object') {
    const { status, statusCode } = error as { status?: unknown; statusCode?: unknown };
    const value = typeof status === 'number' ? status : statusCode;
    if (typeof value === 'number' && Number.isInteger(value) && value >= 400 && value <= 599) {
      return value;
    }
  }
  return 500;
}

/** `next(err)`, a throw or a rejection, as the client may see it: internals only below 500. */
function middlewareError(error: unknown): SessionAuthError {
  const status = statusOf(error);
  const { message, expose } = (error ?? {}) as { message?: unknown; expose?: unknown };
  const shown =
    (expose === true || status < 500) && typeof message === 'string' && message !== ''
      ? message
      : (STATUS_CODES[status] ?? 'Error');
  return new SessionAuthError(shown, { code: ERR_MIDDLEWARE_ERROR, status }, { cause: error });
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
  const chain = checkArguments(middleware, options);
  const timeoutMs = options?.timeoutMs ?? 10_000;
  const onError = options?.onError;
  const appOption = options?.app;

  return function expressMiddlewareAdapter(socket, next) {
    if (socket.conn.readyState !== 'open') {
      // The client left before its turn came: Socket.IO discards the socket when next is called.
      next(refusal(ERR_MIDDLEWARE_TIMEOUT, 503));
      return;
    }
    const app = appOption ?? expressApp();
    const req = socketRequest(socket);
    dressRequest(req, app);
    const ownReq = req as typeof req & { res?: unknown; next?: unknown };
    let settled = false;

    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stopWatching();
      // Dropped so the response stand-in and its closures do not live as long as the socket.
      // Set, not deleted: a delete would turn every socket's request into a slow, larger object.
      ownReq.res = undefined;
      ownReq.next = undefined;
      // Deferred so that later namespace middleware does not run inside this middleware's
      // try/catch, where its errors would be taken for this middleware's.
      process.nextTick(next, error);
    };

    const res = createResponse(req, app, (ended, body) => {
      const location = ended.getHeader('location');
      const data = {
        code: ERR_MIDDLEWARE_ENDED,
        status: ended.statusCode,
        ...(typeof location === 'string' ? { location } : {}),
      } as const;
      finish(new SessionAuthError(endedMessage(ended, body), data));
    });
    ownReq.res = res;

    const timer = setTimeout(() => {
      finish(refusal(ERR_MIDDLEWARE_TIMEOUT, 503));
    }, timeoutMs);
    const stopWatching = onConnectionClose(socket, () => {
      finish(refusal(ERR_MIDDLEWARE_TIMEOUT, 503));
    });

    let index = 0;
    const step = (signal?: unknown): void => {
      // A response that has started (express-session holds back the real end until it has saved)
      // is on its way to a refusal: the end, or the timeout, settles it.
      if (settled || res.headersSent) return;
      // 'route' moves on to the next middleware; 'router' leaves this chain, as in Express.
      if (signal === 'router') {
        finish();
        return;
      }
      if (signal && signal !== 'route') {
        const error = middlewareError(signal);
        report(onError, signal, socket, error.data.status);
        finish(error);
        return;
      }
      const fn = chain[index++];
      if (!fn) {
        finish();
        return;
      }
      let called = false;
      const layerNext: Next = (err) => {
        if (called) return;
        called = true;
        step(err);
      };
      ownReq.next = layerNext;
      const failed = (error: unknown): void => {
        if (called || settled) {
          // Thrown after this middleware had already moved on: the client cannot be told.
          report(onError, error, socket);
          return;
        }
        layerNext(error ?? new Error('middleware rejected without a reason'));
      };
      try {
        const result = fn(req, res, layerNext);
        if (isThenable(result)) result.then(undefined, failed);
      } catch (error) {
        failed(error);
      }
    };
    step();
  };
}
