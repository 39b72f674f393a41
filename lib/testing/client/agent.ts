// An agent is one browser of one user: a cookie jar, HTTP requests that carry it (and take the
// cookies the app sets), and real socket.io-client sockets that send it, one connection per tab.
import type { Manager } from 'socket.io-client';
import { failure } from '../bounded.js';
import type { Desk } from '../kit/desk.js';
import type { TestNode } from '../kit/nodes.js';
import { CookieJar } from './cookie-jar.js';
import { checkNamespace, openTab, type Tab, type TabContext, type TabOptions } from './tab.js';
import type { ReasonSource, TestSocket } from './test-socket.js';

/** Options of {@link Agent.connect}. */
export interface ConnectOptions extends TabOptions {
  /**
   * Opens this many tabs (one connection each), each with a socket of the namespace; the
   * promise then resolves with the array of sockets.
   * @default undefined (one tab, one socket)
   */
  tabs?: number;
  /**
   * The handshake's `auth` payload (`socket.handshake.auth` on the server).
   * @default undefined
   */
  auth?: Record<string, unknown>;
  /**
   * How long to wait for the connect, in milliseconds.
   * @default 5000
   */
  within?: number;
}

/** Options of {@link Agent.fetch}: `fetch`'s own, and the node. */
export interface AgentRequestInit extends RequestInit {
  /**
   * The node to send the request to.
   * @default the kit's first node
   */
  node?: TestNode;
}

/** An agent's session, as the app's session middleware reads it. */
export interface AgentSession {
  /** The session ID (express-session); undefined for a session kept in the cookie. */
  id: string | undefined;
  /** What Passport's `serializeUser` stored (`session.passport.user`), if anyone is logged in. */
  user: unknown;
  /** The session's data, as JSON: `cookie`, `passport` and the app's own fields. */
  data: Record<string, unknown>;
}

/**
 * One user's browser: the cookies the app gave it, HTTP requests that send them, and real
 * socket.io-client sockets that send them too. Made by `kit.loginAs`, `kit.loginWith` and
 * `kit.anonymous`.
 *
 * @example
 * ```ts
 * const alice = await kit.loginAs(findUserById('1'));
 * const [tab1, tab2] = await alice.connect('/chat', { tabs: 2 });
 * await alice.logout();
 * await expectEnded(tab1, 'ERR_SESSION_REVOKED');
 * await expectEnded(tab2, 'ERR_SESSION_REVOKED');
 * ```
 */
export interface Agent {
  /** A name for messages: the user's username (or name, email, id), or `anonymous`. */
  readonly name: string;
  /** The Cookie header the agent sends now: `''` when it has no cookie. */
  readonly cookie: string;
  /** Opens `tabs` tabs, each with a socket of `nsp`; resolves once all have connected. */
  connect(nsp: string, options: ConnectOptions & { tabs: number }): Promise<TestSocket[]>;
  /**
   * Opens a tab with a socket of `nsp`, and resolves once it has connected. Rejects with an
   * AssertionError that says how it was refused (the code, the status, and the package's reason
   * when it has one, such as `user-not-found`): pass it to `expectRefused` when that is what you
   * expect.
   */
  connect(nsp: string, options?: ConnectOptions): Promise<TestSocket>;
  /** Opens a tab: one connection, for several namespaces. */
  tab(options?: TabOptions): Tab;
  /**
   * An HTTP request to the app with the agent's cookies (redirects are not followed unless
   * asked); the cookies the response sets are kept.
   */
  fetch(path: string, init?: AgentRequestInit): Promise<Response>;
  /**
   * Logs out through the app: POST `path` (the kit's `logoutPath`, `/logout` by default). Fails
   * unless the app answered below 400 and the agent's session no longer has a user.
   */
  logout(path?: string, options?: { node?: TestNode }): Promise<void>;
  /** The agent's session as the app reads it, or undefined when it has none. */
  session(): Promise<AgentSession | undefined>;
}

/** What an agent needs of its kit. */
export interface AgentContext {
  readonly desk: Desk;
  readonly logoutPath: string;
  /** Where the agent's sockets refresh the cookie when told to, if they do. */
  readonly refreshCookiePath: string | undefined;
  nodeFor(node: TestNode | undefined, helper: string): TestNode;
  /** Remembers a tab and its connection's manager, for `kit.close()`. */
  track(tab: Tab, manager: Manager): void;
  /** The package's reasons for refusing the kit's sockets. */
  readonly reasons: ReasonSource;
}

function checkTabs(tabs: unknown): number | undefined {
  if (tabs === undefined) return undefined;
  if (typeof tabs !== 'number' || !Number.isInteger(tabs) || tabs < 1) {
    throw new TypeError('agent.connect: options.tabs must be a whole number, 1 or more');
  }
  return tabs;
}

export class KitAgent implements Agent {
  private readonly jar = new CookieJar();

  constructor(
    private readonly kit: AgentContext,
    readonly name: string,
    setCookie: readonly string[] = [],
  ) {
    this.jar.absorb(setCookie);
  }

  get cookie(): string {
    return this.jar.header();
  }

  /** Whether this agent is one of `kit`'s. */
  isOf(kit: AgentContext): boolean {
    return this.kit === kit;
  }

  connect(nsp: string, options: ConnectOptions & { tabs: number }): Promise<TestSocket[]>;
  connect(nsp: string, options?: ConnectOptions): Promise<TestSocket>;
  connect(nsp: string, options: ConnectOptions = {}): Promise<TestSocket | TestSocket[]> {
    checkNamespace('agent.connect', nsp);
    const tabs = checkTabs(options.tabs);
    const { auth, within, tabs: _tabs, ...tabOptions } = options;
    const one = (): Promise<TestSocket> => this.tab(tabOptions).connect(nsp, { auth, within });
    if (tabs === undefined) return one();
    return Promise.all(Array.from({ length: tabs }, one));
  }

  tab(options: TabOptions = {}): Tab {
    const node = this.kit.nodeFor(options.node, 'agent.tab');
    return openTab(node, this.tabContext(node), options);
  }

  private tabContext(node: TestNode): TabContext {
    return {
      owner: this.name,
      jar: this.jar,
      refresh: this.refresher(node),
      reasons: this.kit.reasons,
      track: (tab, manager) => {
        this.kit.track(tab, manager);
      },
    };
  }

  /**
   * What a page does on COOKIE_EXPIRING_EVENT when the kit has a `refreshCookiePath`: POST it with
   * the agent's cookies, which keeps the cookie the answer sets.
   */
  private refresher(node: TestNode): (() => void) | undefined {
    const path = this.kit.refreshCookiePath;
    if (path === undefined) return undefined;
    return () => {
      this.fetch(path, { method: 'POST', node }).then(
        (res) => res.arrayBuffer(),
        // As a page's fetch: a failed refresh shows later, as a cookie that has ended.
        () => undefined,
      );
    };
  }

  async fetch(path: string, init: AgentRequestInit = {}): Promise<Response> {
    if (typeof path !== 'string' || !path.startsWith('/')) {
      throw new TypeError("agent.fetch: the path must be a string starting with '/'");
    }
    const { node: which, headers, ...rest } = init;
    const node = this.kit.nodeFor(which, 'agent.fetch');
    const sent = new Headers(headers);
    const cookie = this.cookie;
    if (cookie !== '' && !sent.has('cookie')) sent.set('cookie', cookie);
    const res = await fetch(`${node.url}${path}`, { redirect: 'manual', ...rest, headers: sent });
    this.jar.absorb(res.headers.getSetCookie());
    return res;
  }

  async logout(path: string = this.kit.logoutPath, options: { node?: TestNode } = {}) {
    const res = await this.fetch(path, { method: 'POST', ...options });
    await res.arrayBuffer();
    const what = `logout of ${this.name}: POST ${path} answered ${res.status} ${res.statusText}`;
    if (res.status >= 400) throw failure(what);
    const seen = await this.kit.desk.read(this.cookie);
    if (seen.session?.passport?.user !== undefined) {
      throw failure(`${what}, but the session still has a user (does it call req.logout()?)`);
    }
  }

  async session(): Promise<AgentSession | undefined> {
    const { session, sessionID } = await this.kit.desk.read(this.cookie);
    if (!session) return undefined;
    return {
      id: sessionID,
      user: session.passport?.user,
      data: JSON.parse(JSON.stringify(session)) as Record<string, unknown>,
    };
  }
}
