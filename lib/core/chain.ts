// Runs a list of Express middleware on a socket's request, as Express would on an HTTP request:
// `next()`, `next('route')`, `next('router')`, `next(err)`, a throw or a rejection, a response
// that ends, and a middleware that never does anything, each turned into an outcome once. Shared by
// wrapExpressMiddleware (a full response stand-in) and sessionNamespace's session read (a small
// one); both hand their own refusals in, so each error is named where it happens.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'socket.io';
import { onConnectionClose } from '../socket-io/connection-close.js';
import {
  ERR_MIDDLEWARE_ENDED,
  ERR_MIDDLEWARE_ERROR,
  ERR_MIDDLEWARE_TIMEOUT,
  SessionAuthError,
  refusal,
  report,
} from './errors.js';
import type { ErrorHook } from './types.js';

export type Next = (err?: unknown) => void;
export type Middleware = (req: unknown, res: unknown, next: Next) => unknown;

/** What a response looks like to the runner. */
export interface ChainResponse {
  readonly headersSent: boolean;
}

export interface Chain<Res extends ChainResponse = ChainResponse> {
  middleware: readonly Middleware[];
  timeoutMs: number;
  onError: ErrorHook | undefined;
  /** The refusal for a middleware (by index) that took longer than `timeoutMs`. */
  timeout?: (index: number, res: Res) => SessionAuthError;
  /** Set `req.next` (and the caller sets `req.res`), as Express does, for ecosystem middleware. */
  express: boolean;
}

/**
 * Runs `chain` on `req` and the response `respond` makes, then calls `done` once: with nothing when
 * the last middleware called `next()`, or with the refusal. The response calls `ended` when a
 * middleware ends it. A client that leaves, or a chain that takes longer than `timeoutMs`, is let
 * go at once.
 */
export function runChain<Res extends ChainResponse>(
  chain: Chain<Res>,
  socket: Socket,
  req: object,
  respond: (ended: (refused: SessionAuthError) => void) => Res,
  done: (err: SessionAuthError | undefined, res: Res) => void,
): void {
  const { middleware, timeoutMs, onError, express } = chain;
  let settled = false;
  let index = 0;

  const finish = (error?: SessionAuthError): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    stopWatching();
    // Dropped, so that the closures of this run do not live as long as the socket.
    if (express) (req as { next?: Next }).next = undefined;
    // Deferred, so that later namespace middleware does not run inside this middleware's
    // try/catch, where its errors would be taken for this middleware's.
    process.nextTick(done, error, res);
  };
  const res = respond(finish);

  const timer = setTimeout(() => {
    finish(chain.timeout?.(index - 1, res) ?? refusal(ERR_MIDDLEWARE_TIMEOUT, 503));
  }, timeoutMs);
  // The client left: Socket.IO discards the socket unanswered, whatever this error says, and the
  // handshake channel reports it as `left` (handshakeSettled), not as this refusal.
  const stopWatching = onConnectionClose(socket, () => {
    finish(refusal(ERR_MIDDLEWARE_TIMEOUT, 503));
  });

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
      if (signal instanceof SessionAuthError) {
        // A refusal made where the error happened (a store failure): its cause is reported.
        if (signal.cause !== undefined) report(onError, signal.cause, socket, signal.data.status);
        finish(signal);
        return;
      }
      const error = middlewareError(signal);
      report(onError, signal, socket, error.data.status);
      finish(error);
      return;
    }
    const fn = middleware[index++];
    if (!fn) {
      finish();
      return;
    }
    let called = false;
    const next: Next = (err) => {
      if (called) return;
      called = true;
      step(err);
    };
    if (express) (req as { next?: Next }).next = next;
    const failed = (error: unknown): void => {
      if (called || settled) {
        // Thrown after this middleware had already moved on: the client cannot be told.
        report(onError, error, socket);
        return;
      }
      next(error ?? new Error('middleware rejected without a reason'));
    };
    try {
      const result = fn(req, res, next);
      if (isThenable(result)) result.then(undefined, failed);
    } catch (error) {
      failed(error);
    }
  };
  step();
}

/** The refusal for a response a middleware ended: its status, its Location, its short text. */
export function endedRefusal(status: number, message: string, location: unknown): SessionAuthError {
  return new SessionAuthError(message, {
    code: ERR_MIDDLEWARE_ENDED,
    status,
    ...(typeof location === 'string' ? { location } : {}),
  });
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
