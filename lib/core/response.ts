import { type IncomingMessage, ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'socket.io';
import { MAX_MESSAGE_LENGTH } from './errors.js';
import type { ExpressApp } from './types.js';

/** How much of a refusing middleware's body is kept: enough for the message, never more. */
const MAX_BODY_BYTES = 4096;

type Callback = (error?: Error | null) => void;

/**
 * The response the package gives its own session read (express-session or cookie-session, then
 * `passport.session()`): they only hook the response's headers and end, and call `next()`. A full
 * `ServerResponse` costs more than the rest of the read; this is a few fields, one shape for all.
 * Middleware that ends it anyway is refused like any other (`ERR_MIDDLEWARE_ENDED`).
 */
export class SessionReadResponse {
  statusCode = 200;
  statusMessage = '';
  headersSent = false;
  finished = false;
  writableEnded = false;
  private readonly headers = new Map<string, number | string | string[]>();

  constructor(private readonly onEnd: (res: SessionReadResponse) => void) {}

  getHeader(name: string): number | string | string[] | undefined {
    return this.headers.get(name.toLowerCase());
  }
  setHeader(name: string, value: number | string | readonly string[]): this {
    this.headers.set(name.toLowerCase(), typeof value === 'object' ? [...value] : value);
    return this;
  }
  hasHeader(name: string): boolean {
    return this.headers.has(name.toLowerCase());
  }
  removeHeader(name: string): void {
    this.headers.delete(name.toLowerCase());
  }
  writeHead(statusCode: number): this {
    this.statusCode = statusCode;
    this.headersSent = true;
    return this;
  }
  write(): boolean {
    if (!this.headersSent) this.writeHead(this.statusCode);
    return true;
  }
  end(): this {
    if (this.writableEnded) return this;
    if (!this.headersSent) this.writeHead(this.statusCode);
    this.finished = this.writableEnded = true;
    this.onEnd(this);
    return this;
  }
  // EventEmitter's shape, for code that listens for 'finish' or 'close': neither ever comes.
  on(): this {
    return this;
  }
  once(): this {
    return this;
  }
  removeListener(): this {
    return this;
  }
  emit(): boolean {
    return false;
  }
}

/**
 * The small response of the handshake's session read (handshake/session-read.ts), which also
 * carries what the read learnt on the way.
 */
export class ReadResponse extends SessionReadResponse {
  /** The store has answered (a timeout before that is the store's). */
  storeAnswered = false;
  /** The request's own keys before passport.session() ran: the ones after are Passport's. */
  keysBeforePassport: PropertyKey[] = [];
  /** The session held a Passport user before passport.session() ran. */
  hadUser = false;
  /** The session middleware skipped the request (no session, its store not known to be down). */
  skipped = false;
  /** The socket whose session this reads, for the diagnostics. */
  socket: Socket | undefined = undefined;
  /** What express-session took from the session cookie, when a reason may be wanted. */
  cookieID: { id: string | undefined } | undefined = undefined;
}

export interface ResponseStandIn extends ServerResponse {
  locals: Record<string, unknown>;
}

/**
 * A real `http.ServerResponse` with the app's Express prototype, so `res.status`, `res.send`,
 * `res.redirect`, headers and `on-headers` hooks behave as over HTTP. It has no socket: `write` and
 * `end` are replaced to keep the first bytes of the body, emit `'finish'`, and tell the caller the
 * middleware ended the response.
 */
export function createResponse(
  req: IncomingMessage,
  app: ExpressApp,
  onEnd: (res: ServerResponse, body: string) => void,
): ResponseStandIn {
  const res = new ServerResponse(req) as ResponseStandIn;
  Object.setPrototypeOf(res, app.response);
  Object.assign(res, { app, locals: Object.create(null) as Record<string, unknown> });

  const body = new KeptBody();
  // `writeHead` is called, not skipped, so that on-headers hooks (express-session's) run as usual.
  const sendHeaders = (): void => {
    if (!res.headersSent) res.writeHead(res.statusCode);
  };

  res.write = function write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    if (res.writableEnded) return false;
    sendHeaders();
    body.keep(chunk, encoding);
    const done = callbackOf(encoding, cb);
    if (done) process.nextTick(done);
    return true;
  } as ResponseStandIn['write'];

  res.end = function end(chunk?: unknown, encoding?: unknown, cb?: unknown): ServerResponse {
    if (res.writableEnded) return res;
    if (typeof chunk !== 'function') body.keep(chunk, encoding);
    sendHeaders();
    // `writableEnded`, `finished` and on-finished all read this flag.
    (res as { finished: boolean }).finished = true;
    onEnd(res, body.text());
    const done = callbackOf(chunk, encoding, cb);
    process.nextTick(() => {
      res.emit('prefinish');
      res.emit('finish');
      done?.();
    });
    return res;
  } as ResponseStandIn['end'];

  showHeadersGivenToWriteHead(res);
  res.flushHeaders = sendHeaders;
  return res;
}

function callbackOf(...args: unknown[]): Callback | undefined {
  return args.find((a): a is Callback => typeof a === 'function');
}

/** The first bytes of a response's body, up to MAX_BODY_BYTES. */
class KeptBody {
  private readonly chunks: Buffer[] = [];
  private kept = 0;

  keep(chunk: unknown, encoding: unknown): void {
    if (chunk == null || this.kept >= MAX_BODY_BYTES) return;
    const buffer =
      typeof chunk === 'string'
        ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
        : Buffer.from(chunk as Uint8Array);
    const part = buffer.subarray(0, MAX_BODY_BYTES - this.kept);
    this.chunks.push(part);
    this.kept += part.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

// Node writes headers given to writeHead straight into the raw header text, where getHeader()
// cannot see them; set them first, so the refusal can read Location and Content-Type.
function showHeadersGivenToWriteHead(res: ResponseStandIn): void {
  const writeHead = res.writeHead.bind(res);
  res.writeHead = function writeHeadVisibly(
    statusCode: number,
    reason?: unknown,
    headers?: unknown,
  ): ServerResponse {
    const fields = typeof reason === 'string' ? headers : reason;
    for (const [name, value] of headerEntries(fields)) res.setHeader(name, value);
    return typeof reason === 'string' ? writeHead(statusCode, reason) : writeHead(statusCode);
  } as ResponseStandIn['writeHead'];
}

const entities: Record<string, string> = {
  '&amp;': '&',
  '&lt;': '<',
  '&gt;': '>',
  '&quot;': '"',
  '&#39;': "'",
};

/**
 * The text a client is shown for an ended response: the short body when it is text (HTML with its
 * tags taken out, JSON's `message` or `error`), else the status text.
 */
export function endedMessage(
  res: Pick<ServerResponse, 'getHeader' | 'statusCode'>,
  body: string,
): string {
  const type = String(res.getHeader('content-type') ?? '').toLowerCase();
  let text = '';
  if (type === '' || type.startsWith('text/plain')) {
    text = body;
  } else if (type.startsWith('text/html')) {
    text = body
      .replace(/<[^>]*>/g, ' ')
      .replace(/&(amp|lt|gt|quot|#39);/g, (e) => entities[e] ?? e);
  } else if (type.includes('json')) {
    text = jsonMessage(body);
  }
  text = text.replace(/\s+/g, ' ').trim();
  return (text || STATUS_CODES[res.statusCode] || 'Refused').slice(0, MAX_MESSAGE_LENGTH);
}

function jsonMessage(body: string): string {
  try {
    const value: unknown = JSON.parse(body);
    if (typeof value === 'string') return value;
    if (value !== null && typeof value === 'object') {
      const { message, error } = value as { message?: unknown; error?: unknown };
      if (typeof message === 'string') return message;
      if (typeof error === 'string') return error;
    }
  } catch {
    // A body cut at MAX_BODY_BYTES, or not JSON at all: fall back to the status text.
  }
  return '';
}

type HeaderValue = number | string | string[];

/** The headers of writeHead's last argument: an object, or a flat or paired array. */
function headerEntries(fields: unknown): [string, HeaderValue][] {
  if (fields === null || typeof fields !== 'object') return [];
  if (!Array.isArray(fields)) return Object.entries(fields as Record<string, HeaderValue>);
  const list = fields as unknown[];
  if (list.every((item) => Array.isArray(item))) return list as [string, HeaderValue][];
  const entries: [string, HeaderValue][] = [];
  for (let i = 0; i + 1 < list.length; i += 2) {
    entries.push([String(list[i]), list[i + 1] as HeaderValue]);
  }
  return entries;
}
