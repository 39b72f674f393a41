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
  new ChainRun(chain, socket, req, respond, done).step();
}

// The timer's callback, one function for every run: no closure per run.
function timedOut<Res extends ChainResponse>(run: ChainRun<Res>): void {
  const { chain, index, res } = run;
  run.finish(chain.timeout?.(index - 1, res) ?? refusal(ERR_MIDDLEWARE_TIMEOUT, 503));
}

// One run of a chain: its state in fields, so that a step costs one closure (its `next`).
class ChainRun<Res extends ChainResponse> {
  settled = false;
  /** The next middleware to call. */
  index = 0;
  /** The step whose `next` is awaited (each step numbered from 1), or 0 once it was called. */
  awaited = 0;
  readonly res: Res;
  private readonly timer: NodeJS.Timeout;
  private readonly stopWatching: () => void;

  constructor(
    readonly chain: Chain<Res>,
    private readonly socket: Socket,
    private readonly req: object,
    respond: (ended: (refused: SessionAuthError) => void) => Res,
    private readonly done: (err: SessionAuthError | undefined, res: Res) => void,
  ) {
    this.res = respond((refused) => {
      this.finish(refused);
    });
    this.timer = setTimeout(timedOut, chain.timeoutMs, this);
    // The client left: Socket.IO discards the socket unanswered, whatever this error says, and the
    // handshake channel reports it as `left` (handshakeSettled), not as this refusal.
    this.stopWatching = onConnectionClose(socket, () => {
      this.finish(refusal(ERR_MIDDLEWARE_TIMEOUT, 503));
    });
  }

  finish(error?: SessionAuthError): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.stopWatching();
    // Dropped, so that the closures of this run do not live as long as the socket.
    if (this.chain.express) (this.req as { next?: Next }).next = undefined;
    // Deferred, so that later namespace middleware does not run inside this middleware's
    // try/catch, where its errors would be taken for this middleware's.
    process.nextTick(this.done, error, this.res);
  }

  step(signal?: unknown): void {
    // A response that has started (express-session holds back the real end until it has saved)
    // is on its way to a refusal: the end, or the timeout, settles it.
    if (this.settled || this.res.headersSent) return;
    // 'route' moves on to the next middleware; 'router' leaves this chain, as in Express.
    if (signal === 'router') {
      this.finish();
    } else if (signal && signal !== 'route') {
      this.refuse(signal);
    } else {
      const fn = this.chain.middleware[this.index++];
      if (fn) this.call(fn, this.index);
      else this.finish();
    }
  }

  private refuse(signal: unknown): void {
    const { onError } = this.chain;
    if (signal instanceof SessionAuthError) {
      // A refusal made where the error happened (a store failure): its cause is reported.
      if (signal.cause !== undefined)
        report(onError, signal.cause, this.socket, signal.data.status);
      this.finish(signal);
      return;
    }
    const error = middlewareError(signal);
    report(onError, signal, this.socket, error.data.status);
    this.finish(error);
  }

  private call(fn: Middleware, id: number): void {
    this.awaited = id;
    const next: Next = (err) => {
      if (this.awaited !== id) return;
      this.awaited = 0;
      this.step(err);
    };
    if (this.chain.express) (this.req as { next?: Next }).next = next;
    try {
      const result = fn(this.req, this.res, next);
      if (isThenable(result)) {
        result.then(undefined, (error: unknown) => {
          this.failed(id, next, error);
        });
      }
    } catch (error) {
      this.failed(id, next, error);
    }
  }

  private failed(id: number, next: Next, error: unknown): void {
    if (this.awaited !== id || this.settled) {
      // Thrown after this middleware had already moved on: the client cannot be told.
      report(this.chain.onError, error, this.socket);
      return;
    }
    next(error ?? new Error('middleware rejected without a reason'));
  }
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
