// An agent's cookies, kept the way a browser keeps them for one site: set by Set-Cookie, dropped
// when a Set-Cookie expires them, sent back as one Cookie header.

/** The `name=value` of each cookie, by name. */
export class CookieJar {
  private readonly cookies = new Map<string, string>();

  /** Takes in a response's Set-Cookie headers. */
  absorb(setCookie: readonly string[]): void {
    for (const header of setCookie) {
      const [pair = '', ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      if (expired(attributes)) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(eq + 1).trim());
    }
  }

  /** The Cookie header to send, or '' when there is no cookie. */
  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

function expired(attributes: readonly string[]): boolean {
  for (const attribute of attributes) {
    const eq = attribute.indexOf('=');
    const key = (eq < 0 ? attribute : attribute.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? '' : attribute.slice(eq + 1).trim();
    if (key === 'max-age' && Number(value) <= 0) return true;
    if (key === 'expires' && Date.parse(value) <= Date.now()) return true;
  }
  return false;
}
