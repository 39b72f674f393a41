// A token's expiry, as the strategies or the JWT give it: parsed, checked, never guessed.
import { ERR_BAD_TOKEN_EXPIRY, SessionAuthError } from '../core/errors.js';

/** A token's expiry in ms since epoch (undefined: none given), or why the field is unusable. */
export type Expiry = { expires: number | undefined } | { unusable: string };

// Epoch seconds and epoch milliseconds are told apart by size: 1e11 seconds is the year 5138,
// 1e11 milliseconds is 1973. A value on the wrong side is a unit mistake, never a real expiry.
const SECONDS_BELOW = 1e11;
/** The latest time a `Date` can hold, in ms since epoch. */
const MAX_DATE_MS = 8.64e15;
// ISO 8601 date-time with its zone (`Date#toISOString()`): without a zone, JavaScript reads it in
// the server's local time, which is a guess.
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

function unusable(field: string, what: string): Expiry {
  return { unusable: `Unusable token expiry: ${field} ${what}` };
}

/** `exp`: seconds since epoch, as in a JWT. */
function fromSeconds(field: string, value: unknown): Expiry {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return unusable(field, 'must be a number of seconds since epoch');
  }
  if (value < 0) return unusable(field, 'is negative');
  if (value >= SECONDS_BELOW) {
    return unusable(field, 'is too large for seconds since epoch (milliseconds go in expires)');
  }
  return { expires: value * 1000 };
}

/** `expires`: a `Date`, milliseconds since epoch, or an ISO 8601 date-time with its zone. */
function fromExpires(field: string, value: unknown): Expiry {
  let time: number;
  if (value instanceof Date) {
    time = value.getTime();
    if (Number.isNaN(time)) return unusable(field, 'is an invalid Date');
  } else if (typeof value === 'number') {
    if (!Number.isFinite(value)) return unusable(field, 'is not a finite number');
    if (value < 0) return unusable(field, 'is negative');
    if (value < SECONDS_BELOW) {
      return unusable(
        field,
        'is below 1e11: seconds, not milliseconds since epoch (seconds go in exp)',
      );
    }
    time = value;
  } else if (typeof value === 'string') {
    time = ISO_8601.test(value) ? Date.parse(value) : NaN;
    if (Number.isNaN(time)) return unusable(field, 'is not an ISO 8601 date-time with a zone');
  } else {
    return unusable(field, 'must be a Date, milliseconds since epoch or an ISO 8601 string');
  }
  if (time > MAX_DATE_MS) return unusable(field, 'is beyond the latest Date');
  return { expires: time };
}

/** A field is present unless undefined or null (a strategy's way of saying "none"). */
function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

/**
 * The token's expiry: from the strategy's `info` (`exp` in seconds, `expires` as a Date, ms or ISO
 * string; both given: the earlier), else the JWT's `exp` claim. A present field that is not a
 * usable time is reported, never skipped: skipping it would let in a token that never expires.
 */
export function expiryOf(token: string, info: unknown): Expiry {
  const fromInfo = (info !== null && typeof info === 'object' ? info : {}) as {
    exp?: unknown;
    expires?: unknown;
  };
  const given: Expiry[] = [];
  if (present(fromInfo.exp)) given.push(fromSeconds('info.exp', fromInfo.exp));
  if (present(fromInfo.expires)) given.push(fromExpires('info.expires', fromInfo.expires));
  if (given.length > 0) {
    let earliest = Infinity;
    for (const expiry of given) {
      if ('unusable' in expiry) return expiry;
      earliest = Math.min(earliest, expiry.expires ?? Infinity);
    }
    return { expires: earliest };
  }
  const parts = token.split('.');
  const payload = parts[1];
  // Not a JWT (an API key, an opaque bearer token): no claim to read.
  if (parts.length !== 3 || !payload) return { expires: undefined };
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown;
  } catch {
    return { expires: undefined };
  }
  const exp =
    claims !== null && typeof claims === 'object' ? (claims as { exp?: unknown }).exp : undefined;
  return present(exp) ? fromSeconds("the token's exp claim", exp) : { expires: undefined };
}

/** The refusal of a token whose expiry is unusable: its message names the field. */
export function unusableExpiry(message: string): SessionAuthError {
  return new SessionAuthError(message, { code: ERR_BAD_TOKEN_EXPIRY, status: 500 });
}
