// An agent's cookies, kept the way a browser keeps them for one site: set by Set-Cookie, dropped
// when a Set-Cookie expires them or once their Max-Age / Expires has passed, sent back as one
// Cookie header.

/** The `name=value` of each cookie, by name, and when it ends (ms since epoch). */
export class CookieJar {
  private readonly cookies = new Map<string, { value: string; ends: number }>();

  /** Takes in a response's Set-Cookie headers. */
  absorb(setCookie: readonly string[]): void {
    const now = Date.now();
    for (const header of setCookie) {
      const [pair = '', ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const ends = endOf(attributes, now);
      if (ends <= now) this.cookies.delete(name);
      else this.cookies.set(name, { value: pair.slice(eq + 1).trim(), ends });
    }
  }

  /** The Cookie header to send now, or '' when there is no live cookie. */
  header(): string {
    const now = Date.now();
    const pairs: string[] = [];
    for (const [name, { value, ends }] of this.cookies) {
      // As a browser: a cookie past its end is gone.
      if (ends <= now) this.cookies.delete(name);
      else pairs.push(`${name}=${value}`);
    }
    return pairs.join('; ');
  }
}

// RFC 6265 §5.3: Max-Age wins over Expires; neither is a session cookie (it lives as long as the
// agent).
function endOf(attributes: readonly string[], now: number): number {
  let expires = Infinity;
  for (const attribute of attributes) {
    const eq = attribute.indexOf('=');
    const key = (eq < 0 ? attribute : attribute.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? '' : attribute.slice(eq + 1).trim();
    if (key === 'max-age' && /^-?\d+$/.test(value)) {
      const seconds = Number(value);
      return seconds <= 0 ? -Infinity : now + seconds * 1000;
    }
    if (key === 'expires') {
      const time = Date.parse(value);
      if (!Number.isNaN(time)) expires = time;
    }
  }
  return expires;
}
