// createTestKit: the app under test on a loopback port (one node, or several on a shared store and
// adapter), agents logged in without a login form in the way, and session control (expire,
// destroy) through the app's own session store. Everything it opens, kit.close() closes.
import type { Server } from 'socket.io';
import type { Manager } from 'socket.io-client';
import { KitAgent, type Agent, type AgentContext, type Tab } from './agent.js';
import { asError, failure } from './bounded.js';
import { Desk, type SessionSeen } from './desk.js';
import { TestClock } from './clock.js';
import { recheckExpiryNow } from './expiry-now.js';
import {
  checkApp,
  spansNodes,
  startNode,
  type NodeRecord,
  type TestKitApp,
  type TestNode,
} from './nodes.js';

/** Settings of the kit itself, besides the app. */
export interface TestKitSettings {
  /**
   * The route `agent.logout()` posts to.
   * @default '/logout'
   */
  logoutPath?: string;
  /**
   * The route the agents' sockets POST to when the server tells them their cookie nears its end
   * (`session:cookie-expiring`, with `touchIntervalMs`), as your page does: mount
   * `refreshCookieRoute(io)` there. The cookie it sets goes into the agent's jar, which drops
   * cookies past their end as a browser does.
   * @default undefined (the event is received, and only recorded)
   */
  refreshCookiePath?: string;
}

/** Options for {@link createTestKit}: your app's objects, and the kit's settings. */
export interface TestKitOptions extends TestKitApp, TestKitSettings {}

/**
 * Builds one node of your app, each time it is called (`node` is 0 for the first): for several
 * nodes, each on the same session store and an adapter that spans nodes.
 */
export type TestKitAppFactory = (node: number) => TestKitApp | Promise<TestKitApp>;

/** Options for {@link TestKit.loginAs}. */
export interface LoginAsOptions {
  /**
   * A name for the agent, in failure messages.
   * @default the user's `username`, `name`, `email` or `id`
   */
  name?: string;
  /**
   * Data to put in the session beside the user, as your routes would (`req.session.cart = …`).
   * @default undefined
   */
  session?: Record<string, unknown>;
}

/** Options for {@link TestKit.loginWith}. */
export interface LoginWithOptions {
  /**
   * A name for the agent, in failure messages.
   * @default the form's `username` or `email`
   */
  name?: string;
  /**
   * The node whose login route is used.
   * @default the kit's first node
   */
  node?: TestNode;
}

/**
 * The time the package keeps its own deadlines by on the kit's nodes: session expiries, token
 * expiries, revalidation rounds, touch intervals. Until the first {@link KitClock.advance} it is
 * the real time; from then on it moves only when advanced, so a test of an expiry neither waits
 * for it nor depends on how busy the machine is. Only the package's time moves: Socket.IO's own
 * timers (pings, `connectTimeout`), the app's and the client's stay on real time.
 *
 * @example
 * ```ts
 * // The session's cookie has maxAge 60 000: an hour of the package's time, in no time.
 * const alice = await kit.loginAs({ id: '1', username: 'alice' });
 * const socket = await alice.connect('/chat');
 * await kit.clock.advance(59_000);
 * await socket.emitWithAck('ping'); // still connected
 * await kit.clock.advance(2_000);
 * await expectEnded(socket, 'ERR_SESSION_EXPIRED');
 * ```
 */
export interface KitClock {
  /** The package's time on the kit's nodes, in ms since epoch (`Date.now()` until advanced). */
  now(): number;
  /**
   * Moves the package's time `ms` forward on every node, and resolves once what came due has
   * run: the package's timers due by then fire in order, each at its own time, and as the time
   * passes the stored expiry of a session with a socket on the kit's nodes, that session is
   * written to the store as expired (so the store drops it, as at a real expiry). Sessions are
   * still read from the store, which decides as at a real expiry. HTTP requests, sessions no socket holds, and what the session
   * middleware writes (a touch moves the stored expiry from the real `Date.now()`) keep real time:
   * advance past such a write by less than the session's `maxAge`. Throws a TypeError if a node's
   * server had live sockets before the kit started (their timers keep real time).
   */
  advance(ms: number): Promise<void>;
}

/**
 * Your app on a loopback port, and what tests do with it. Made by {@link createTestKit}.
 *
 * @example
 * ```ts
 * await using kit = await createTestKit({ io, session: sessionMiddleware, passport, app });
 * const alice = await kit.loginAs({ id: '1', username: 'alice' });
 * await alice.connect('/chat');
 * ```
 */
export interface TestKit extends AsyncDisposable {
  /** The first node's base URL: `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The first node's Socket.IO server. */
  readonly io: Server;
  /** Every node started, the first at index 0. */
  readonly nodes: readonly TestNode[];
  /** The package's time on the kit's nodes, which a test moves instead of waiting. */
  readonly clock: KitClock;
  /**
   * An agent logged in as `user`, with no login form in the way: a real session in the app's
   * real store, made by the app's session middleware and Passport's `req.login(user)` (so through
   * the app's `serializeUser`), and the signed cookie the session middleware set. Needs
   * `passport`.
   */
  loginAs(user: Express.User, options?: LoginAsOptions): Promise<Agent>;
  /**
   * An agent logged in through the app's own login route: POSTs `form` (URL-encoded) to `path`
   * and keeps the cookies. Fails unless the agent's session then has a user.
   */
  loginWith(
    path: string,
    form: Record<string, string> | URLSearchParams,
    options?: LoginWithOptions,
  ): Promise<Agent>;
  /** An agent with no cookie: a stranger. */
  anonymous(options?: { name?: string }): Agent;
  /**
   * Makes the agent's session expire now: it is written to the store with its cookie expired a
   * second ago, so the store drops it, as at a real expiry; then the live sockets of that session
   * on the kit's nodes run their expiry check at once and end with `ERR_SESSION_EXPIRED`.
   */
  expire(agent: Agent): Promise<void>;
  /**
   * Deletes the agent's session from the store, as an admin tool of your app would (the store's
   * `destroy`). HTTP requests and new sockets are then strangers, and the live sockets of that
   * session end with `ERR_SESSION_REVOKED`, as at a logout.
   */
  destroy(agent: Agent): Promise<void>;
  /**
   * Starts one more node, from the factory given to `createTestKit`, and resolves with it. Fails
   * unless the nodes' adapter spans nodes.
   */
  node(): Promise<TestNode>;
  /** Closes every socket, tab and node the kit opened, and its own server. Safe to call twice. */
  close(): Promise<void>;
}

interface CheckedSettings {
  logoutPath: string;
  refreshCookiePath: string | undefined;
}

function checkSettings(settings: unknown): CheckedSettings {
  const { logoutPath = '/logout', refreshCookiePath } = (settings ?? {}) as TestKitSettings;
  for (const [name, path] of [
    ['logoutPath', logoutPath],
    ['refreshCookiePath', refreshCookiePath ?? '/'],
  ] as const) {
    if (typeof path !== 'string' || !path.startsWith('/')) {
      throw new TypeError(`createTestKit: ${name} must be a path starting with '/'`);
    }
  }
  return { logoutPath, refreshCookiePath };
}

function nameOf(user: unknown): string {
  const fields = (user ?? {}) as Record<string, unknown>;
  for (const key of ['username', 'name', 'email', 'id']) {
    const value = fields[key];
    if (typeof value === 'string' || typeof value === 'number') return String(value);
  }
  return 'user';
}

class Kit implements AgentContext, TestKit {
  // Defined below, where Symbol.asyncDispose exists (Node 20 has it; older runtimes do not).
  declare readonly [Symbol.asyncDispose]: () => Promise<void>;
  readonly nodes: NodeRecord[] = [];
  readonly desk: Desk;
  readonly clock: KitClock;
  private readonly time = new TestClock();
  /** Nodes whose server had live sockets before the kit: their time cannot be moved. */
  private readonly unclocked: number[] = [];
  private readonly tabs = new Map<Tab, Manager>();
  private closing: Promise<void> | undefined;

  constructor(
    first: NodeRecord,
    private readonly factory: TestKitAppFactory | undefined,
    readonly logoutPath: string,
    readonly refreshCookiePath: string | undefined,
  ) {
    if (!this.time.install(first.io)) this.unclocked.push(first.index);
    this.nodes.push(first);
    this.desk = new Desk(first.app.session, first.app.passport);
    const { time } = this;
    const open = (helper: string): void => {
      this.open(helper);
      const [index] = this.unclocked;
      if (index !== undefined) {
        throw new TypeError(
          `${helper}: node ${index}'s Socket.IO server had live sockets of a session namespace ` +
            'before the kit started, which keep real time: start the kit before any connects',
        );
      }
    };
    this.clock = {
      now: function now() {
        return time.now();
      },
      advance: function advance(ms: number) {
        open('kit.clock.advance');
        if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
          throw new TypeError('kit.clock.advance: expected a number of milliseconds (0 or more)');
        }
        return time.advance(ms);
      },
    };
  }

  get url(): string {
    return this.first().url;
  }

  get io(): Server {
    return this.first().io;
  }

  nodeFor(which: TestNode | undefined, helper: string): TestNode {
    this.open(helper);
    if (which === undefined) return this.first();
    if (!this.nodes.includes(which as NodeRecord)) {
      throw new TypeError(`${helper}: options.node must be one of kit.nodes`);
    }
    return which;
  }

  track(tab: Tab, manager: Manager): void {
    this.tabs.set(tab, manager);
  }

  async loginAs(user: Express.User, options: LoginAsOptions = {}): Promise<Agent> {
    this.open('kit.loginAs');
    const given: unknown = user;
    if (given === null || given === undefined) {
      throw new TypeError('kit.loginAs: expected the user to log in, as serializeUser takes it');
    }
    if (options.session !== undefined && typeof options.session !== 'object') {
      throw new TypeError('kit.loginAs: options.session must be an object');
    }
    const name = options.name ?? nameOf(user);
    const { setCookie } = await this.desk.login(user, options.session);
    if (setCookie.length === 0) {
      throw failure(
        `kit.loginAs(${name}): the session middleware set no cookie (with cookie.secure: true, ` +
          "express-session sends none over plain HTTP: use secure: 'auto' in tests)",
      );
    }
    return new KitAgent(this, name, setCookie);
  }

  async loginWith(
    path: string,
    form: Record<string, string> | URLSearchParams,
    options: LoginWithOptions = {},
  ): Promise<Agent> {
    this.open('kit.loginWith');
    if (typeof path !== 'string' || !path.startsWith('/')) {
      throw new TypeError("kit.loginWith: the path must be a string starting with '/'");
    }
    const fields: unknown = form;
    if (fields === null || typeof fields !== 'object') {
      throw new TypeError('kit.loginWith: the form must be an object of strings');
    }
    const body = new URLSearchParams(form);
    const name = options.name ?? body.get('username') ?? body.get('email') ?? 'agent';
    const agent = new KitAgent(this, name);
    const res = await agent.fetch(path, {
      method: 'POST',
      body,
      ...(options.node !== undefined && { node: options.node }),
    });
    await res.arrayBuffer();
    const seen = await this.desk.read(agent.cookie);
    if (seen.session?.passport?.user === undefined) {
      const location = res.headers.get('location');
      throw failure(
        `kit.loginWith('${path}') as ${name}: the app answered ${res.status} ${res.statusText}` +
          `${location === null ? '' : ` → ${location}`}, and no session with a user came of it`,
      );
    }
    return agent;
  }

  anonymous({ name = 'anonymous' }: { name?: string } = {}): Agent {
    this.open('kit.anonymous');
    return new KitAgent(this, name);
  }

  async expire(agent: Agent): Promise<void> {
    const { session, sessionID } = await this.storedSession('kit.expire', agent);
    const { cookie } = session;
    if (!cookie) throw new TypeError(`kit.expire: ${agent.name}'s session has no cookie`);
    // express-session's own Cookie: a store that keeps time itself (memorystore, connect-redis)
    // takes its TTL from it, and drops the session at once.
    cookie.expires = new Date(Date.now() - 1000);
    await new Promise<void>((resolve, reject) => {
      session.save?.((err) => {
        if (err) reject(asError(err));
        else resolve();
      });
    });
    for (const node of this.nodes) recheckExpiryNow(node.io, sessionID);
  }

  async destroy(agent: Agent): Promise<void> {
    const { session } = await this.storedSession('kit.destroy', agent);
    await new Promise<void>((resolve, reject) => {
      session.destroy?.((err) => {
        if (err) reject(asError(err));
        else resolve();
      });
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      // The nodes end their own sockets, as in a shutdown, with no client trying to come back;
      // the last started closes first, while the others are still up to answer it (fetchSockets,
      // a revocation). Then the tabs of a server the kit leaves open, and the kit's own server.
      for (const manager of this.tabs.values()) manager.reconnection(false);
      const errors: unknown[] = [];
      for (const node of [...this.nodes].reverse()) {
        await node.close().catch((error: unknown) => errors.push(error));
      }
      for (const tab of this.tabs.keys()) tab.close();
      this.tabs.clear();
      await this.desk.close().catch((error: unknown) => errors.push(error));
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, 'kit.close: closing failed');
    })();
    return this.closing;
  }

  private first(): NodeRecord {
    const [first] = this.nodes;
    if (!first) throw new Error('the kit has no node');
    return first;
  }

  private open(helper: string): void {
    if (this.closing) throw new Error(`${helper}: the kit is closed`);
  }

  private async storedSession(
    helper: string,
    agent: Agent,
  ): Promise<{ session: NonNullable<SessionSeen['session']>; sessionID: string }> {
    this.open(helper);
    if (!(agent instanceof KitAgent) || !agent.isOf(this)) {
      throw new TypeError(`${helper}: expected an agent of this kit`);
    }
    const seen = await this.desk.read(agent.cookie);
    if (!seen.stored) {
      throw new TypeError(
        `${helper}: the session middleware keeps sessions in the cookie (cookie-session): there ` +
          'is no store to change them in',
      );
    }
    const { session, sessionID } = seen;
    if (!session || sessionID === undefined) {
      throw failure(
        `${helper}(${agent.name}): ${agent.name} has no session in the store (logged out, ` +
          'destroyed or expired already?)',
      );
    }
    return { session, sessionID };
  }

  async node(): Promise<TestNode> {
    this.open('kit.node');
    const { factory } = this;
    if (!factory) {
      throw new TypeError(
        'kit.node: needs a factory of your app: createTestKit((node) => createApp(…))',
      );
    }
    const index = this.nodes.length;
    const node = await startNode(checkApp('kit.node', await factory(index)), index);
    if (!spansNodes(node.io) || !spansNodes(this.first().io)) {
      await node.close();
      throw new TypeError(
        "kit.node: the app's Socket.IO adapter is the in-memory one, so nodes would not hear " +
          "each other's logouts: give every node an adapter that spans nodes (such as " +
          '@socket.io/redis-adapter) and the same session store',
      );
    }
    if (!this.time.install(node.io)) this.unclocked.push(node.index);
    this.nodes.push(node);
    return node;
  }
}

if (typeof Symbol.asyncDispose === 'symbol') {
  Object.defineProperty(Kit.prototype, Symbol.asyncDispose, {
    configurable: true,
    writable: true,
    value: function asyncDispose(this: Kit) {
      return this.close();
    },
  });
}

/**
 * Starts your app for a test: its HTTP server on `127.0.0.1:0` (unless it already listens), and a
 * kit to log users in, open real sockets, end sessions and start more nodes. `kit.close()` (or
 * `await using`) closes everything it opened.
 *
 * Pass your app's objects, or a factory of them (needed for `kit.node()`: each node is built by
 * one call).
 *
 * @example
 * ```ts
 * import { createTestKit, expectRefused } from 'socket.io-session-auth/testing';
 *
 * test('a member is refused the admin namespace', async (t) => {
 *   const kit = await createTestKit(() => createApp({ sessionSecret: 'test' }));
 *   t.after(() => kit.close());
 *   const bob = await kit.loginAs({ id: '2', username: 'bob', role: 'member' });
 *   await expectRefused(bob.connect('/admin'), 'ERR_FORBIDDEN');
 * });
 * ```
 */
export function createTestKit(options: TestKitOptions): Promise<TestKit>;
export function createTestKit(
  factory: TestKitAppFactory,
  settings?: TestKitSettings,
): Promise<TestKit>;
export function createTestKit(
  appOrFactory: TestKitOptions | TestKitAppFactory,
  settings?: TestKitSettings,
): Promise<TestKit> {
  if (typeof appOrFactory === 'function') {
    const { logoutPath, refreshCookiePath } = checkSettings(settings);
    return (async () => {
      const first = await startNode(checkApp('createTestKit', await appOrFactory(0)), 0);
      return new Kit(first, appOrFactory, logoutPath, refreshCookiePath);
    })();
  }
  const app = checkApp('createTestKit', appOrFactory);
  if (settings !== undefined) {
    throw new TypeError('createTestKit: with the app as an object, put the settings in it');
  }
  const { logoutPath, refreshCookiePath } = checkSettings(appOrFactory);
  return startNode(app, 0).then(
    (first) => new Kit(first, undefined, logoutPath, refreshCookiePath),
  );
}
