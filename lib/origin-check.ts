import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Socket } from 'socket.io';
import { ERR_ORIGIN_FORBIDDEN, refusal } from './errors.js';
import type { ExpressApp } from './types.js';

/** Which browser origins may open a socket that a session cookie authenticates. */
export type AllowedOrigins =
  readonly string[] | ((origin: string, req: IncomingMessage) => boolean);

/** The canonical form of an origin (`https://app.example`), or undefined if it is not one. */
function canonicalOrigin(value: string): string | undefined {
  try {
    const { origin } = new URL(value);
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

export function checkAllowedOrigins(helper: string, value: unknown): void {
  if (value === undefined || typeof value === 'function') return;
  if (!Array.isArray(value)) {
    throw new TypeError(
      `${helper}: options.allowedOrigins must be an array of origins or a function`,
    );
  }
  for (const origin of value as unknown[]) {
    if (typeof origin !== 'string' || !isBareOrigin(origin)) {
      throw new TypeError(
        `${helper}: options.allowedOrigins must hold origins such as 'https://app.example' ` +
          `(a scheme and a host, no path), got ${JSON.stringify(origin)}`,
      );
    }
  }
}

// An origin as a browser sends it: scheme, host and port only ('https://app.example:443' is fine,
// it is the same origin as 'https://app.example').
function isBareOrigin(value: string): boolean {
  const rest = value.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#@]*/i, '');
  return (rest === '' || rest === '/') && canonicalOrigin(value) !== undefined;
}

function firstValue(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value?.split(',')[0]?.trim() || undefined;
}

// The origin a same-origin page would have: the request's own scheme and Host, or what a trusted
// proxy says they were (the app's `trust proxy` setting, as Express's req.protocol and req.host).
function ownOrigin(req: IncomingMessage, app: ExpressApp | undefined): string | undefined {
  const trust = app?.get('trust proxy fn');
  const trusted =
    typeof trust === 'function' &&
    (trust as (address: string, hop: number) => boolean)(req.socket.remoteAddress ?? '', 0);
  const proto =
    (trusted && firstValue(req.headers['x-forwarded-proto'])) ||
    ((req.socket as Partial<TLSSocket>).encrypted ? 'https' : 'http');
  const host = (trusted && firstValue(req.headers['x-forwarded-host'])) || req.headers.host;
  return host === undefined ? undefined : canonicalOrigin(`${proto}://${host}`);
}

/**
 * Namespace middleware refusing browser handshakes from other origins (cross-site WebSocket
 * hijacking: browsers send the victim's cookies with a cross-site WebSocket, and Socket.IO's `cors`
 * option covers long-polling only). Runs before any session store read.
 */
export function originCheck(options: {
  allowedOrigins: AllowedOrigins | undefined;
  requireOrigin: boolean;
  app: ExpressApp | undefined;
}) {
  const { allowedOrigins, requireOrigin, app } = options;
  const listed =
    typeof allowedOrigins === 'function' || allowedOrigins === undefined
      ? undefined
      : new Set(allowedOrigins.map((o) => canonicalOrigin(o)));
  return function checkOriginMiddleware(socket: Socket, next: (err?: Error) => void): void {
    const req = socket.request;
    const header = req.headers.origin;
    if (header === undefined) {
      // Browsers always send Origin with a WebSocket and with cross-origin requests.
      next(requireOrigin ? refusal(ERR_ORIGIN_FORBIDDEN, 403) : undefined);
      return;
    }
    const origin = canonicalOrigin(header);
    let allowed = false;
    if (origin !== undefined) {
      if (typeof allowedOrigins === 'function') {
        try {
          // Only a literal true allows, as with requireAuth's authorize.
          allowed = (allowedOrigins(origin, req) as unknown) === true;
        } catch {
          allowed = false;
        }
      } else if (listed) {
        allowed = listed.has(origin);
      } else {
        allowed = origin === ownOrigin(req, app);
      }
    }
    next(allowed ? undefined : refusal(ERR_ORIGIN_FORBIDDEN, 403));
  };
}
