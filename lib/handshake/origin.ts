// The origin check's parts: cross-site WebSocket hijacking. Browsers send the victim's cookies with
// a WebSocket opened by any site, and Socket.IO's `cors` option covers long-polling only.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Socket } from 'socket.io';
import { ERR_ORIGIN_FORBIDDEN, type SessionAuthError, refusal } from '../core/errors.js';
import { debug } from '../diagnostics/debug.js';
import type { HandshakeOptions } from '../core/state.js';
import type { ExpressApp } from '../core/types.js';
import { reasonsWanted, rememberWhy } from '../diagnostics/explain.js';

/** The canonical form of an origin (`https://app.example`), or undefined if it is not one. */
export function canonicalOrigin(value: string): string | undefined {
  try {
    const { origin } = new URL(value);
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

function firstValue(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value?.split(',')[0]?.trim() || undefined;
}

// The origin a same-origin page would have: the request's own scheme and Host, or what a trusted
// proxy says they were (the app's `trust proxy` setting, as Express's req.protocol and req.host).
function ownOrigin(req: IncomingMessage, app: ExpressApp): string | undefined {
  const trust = app.get('trust proxy fn');
  const trusted =
    typeof trust === 'function' &&
    (trust as (address: string, hop: number) => boolean)(req.socket.remoteAddress ?? '', 0);
  const proto =
    (trusted && firstValue(req.headers['x-forwarded-proto'])) ||
    ((req.socket as Partial<TLSSocket>).encrypted ? 'https' : 'http');
  const host = (trusted && firstValue(req.headers['x-forwarded-host'])) || req.headers.host;
  return host === undefined ? undefined : canonicalOrigin(`${proto}://${host}`);
}

/** The listed origins in their canonical form, once per namespace (undefined: none listed). */
export function listedOrigins(options: HandshakeOptions): Set<string | undefined> | undefined {
  const { allowedOrigins } = options;
  return typeof allowedOrigins === 'function' || allowedOrigins === undefined
    ? undefined
    : new Set(allowedOrigins.map((o) => canonicalOrigin(o)));
}

/** Whether the `Origin` header names an allowed origin: the function's, the list's, or the own. */
export function originAllowed(
  options: HandshakeOptions,
  listed: Set<string | undefined> | undefined,
  header: string,
  req: IncomingMessage,
): boolean {
  const { allowedOrigins, app } = options;
  const origin = canonicalOrigin(header);
  if (origin === undefined) return false;
  if (typeof allowedOrigins === 'function') {
    try {
      // Only a literal true allows, as with requireAuth's authorize.
      return (allowedOrigins(origin, req) as unknown) === true;
    } catch {
      return false;
    }
  }
  if (listed) return listed.has(origin);
  return origin === ownOrigin(req, app);
}

/** The refusal of an origin not allowed, with the reason and a debug line when they are wanted. */
export function originRefusal(
  socket: Socket,
  options: HandshakeOptions,
  listed: Set<string | undefined> | undefined,
  header: string,
): SessionAuthError {
  const refused = refusal(ERR_ORIGIN_FORBIDDEN, 403);
  if (reasonsWanted(options.explain)) {
    rememberWhy(socket, 'origin-not-allowed', options.explain);
    debug(
      'nsp %s socket %s: Origin %s refused; allowed: %s',
      socket.nsp.name,
      socket.id,
      header,
      listed
        ? [...listed].join(', ')
        : typeof options.allowedOrigins === 'function'
          ? 'allowedOrigins()'
          : ownOrigin(socket.request, options.app),
    );
    if (options.explain) refused.data.reason = 'origin-not-allowed';
  }
  return refused;
}
