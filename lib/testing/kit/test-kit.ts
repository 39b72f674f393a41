// A running kit: the app's nodes, the kit's desk and clock, the tabs it opened; logging in and
// session control are in login.ts and session-control.ts. Everything it opens, close() closes.
import type { Server } from 'socket.io';
import type { Manager } from 'socket.io-client';
import { serverState } from '../../core/state.js';
import { connectionDigest } from '../../diagnostics/diagnostics.js';
import { KitAgent, type Agent } from '../client/agent.js';
import { RefusalReasons } from '../client/refusal.js';
import type { Tab } from '../client/tab.js';
import type { ReasonSource } from '../client/test-socket.js';
import { TestClock } from '../clock.js';
import { Desk } from './desk.js';
import { kitClock, type KitClock } from './kit-clock.js';
import {
  loginAs,
  loginWith,
  type LoginAsOptions,
  type LoginContext,
  type LoginWithOptions,
} from './login.js';
import {
  checkApp,
  spansNodes,
  startNode,
  type NodeRecord,
  type TestKitAppFactory,
  type TestNode,
} from './nodes.js';
import { destroySession, expireSession, removeFromStore } from './session-control.js';

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
   * `passport`. Fails unless the app's `deserializeUser` then finds the user by the key
   * `serializeUser` stored, as it must at each of the agent's handshakes: the failure names the
   * key and what `deserializeUser` gave (false or null, undefined, an error).
   *
   * @example
   * ```ts
   * const alice = await kit.loginAs(findUserById('1'));
   * // AssertionError: kit.loginAs(ghost): deserializeUser gave false (or null) for the user key
   * // '99' that serializeUser stored: no such user, so every socket of this agent would be …
   * await kit.loginAs({ id: '99', username: 'ghost' });
   * ```
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
   * Deletes the agent's session from the store behind the package's back, as an admin script or
   * another app sharing the store would: with the store class's own `destroy`, which the package
   * does not hear. The live sockets of that session then end only through a store event feed
   * (`storeEvents`: at once, `ERR_SESSION_REVOKED`) or at the next revalidation round; without
   * either they stay connected, which is what this lets a test show.
   *
   * @example
   * ```ts
   * const chat = await alice.connect('/chat');
   * await kit.removeFromStore(alice);
   * await expectEnded(chat, 'ERR_SESSION_REVOKED'); // with storeEvents: redisStoreEvents({ client })
   * ```
   */
  removeFromStore(agent: Agent): Promise<void>;
  /**
   * Starts one more node, from the factory given to `createTestKit`, and resolves with it. Fails
   * unless the nodes' adapter spans nodes.
   */
  node(): Promise<TestNode>;
  /**
   * Starts `rateLimit`'s budgets afresh on every node of the kit: every count forgotten (in Redis
   * too, with rateLimit's `redis`), so that a test's limits do not depend on the tests before it.
   *
   * @example
   * ```ts
   * beforeEach(() => kit.resetLimits());
   * ```
   */
  resetLimits(): Promise<void>;
  /** Closes every socket, tab and node the kit opened, and its own server. Safe to call twice. */
  close(): Promise<void>;
}

/** The kit's settings, checked. */
export interface KitSettings {
  logoutPath: string;
  refreshCookiePath: string | undefined;
}

export class Kit implements LoginContext, TestKit {
  // Defined below, where Symbol.asyncDispose exists (Node 20 has it; older runtimes do not).
  declare readonly [Symbol.asyncDispose]: () => Promise<void>;
  readonly nodes: NodeRecord[] = [];
  readonly desk: Desk;
  readonly clock: KitClock;
  readonly logoutPath: string;
  readonly refreshCookiePath: string | undefined;
  private readonly time = new TestClock();
  /** Nodes whose server had live sockets before the kit: their time cannot be moved. */
  private readonly unclocked: number[] = [];
  private readonly tabs = new Map<Tab, Manager>();
  /** Why the package refused the kit's sockets: heard from the kit's start to its close. */
  private readonly refusals = new RefusalReasons((id) => this.isTab(id));
  readonly reasons: ReasonSource = (id, namespace) => this.refusals.take(id, namespace);
  private closing: Promise<void> | undefined;

  constructor(
    first: NodeRecord,
    private readonly factory: TestKitAppFactory | undefined,
    settings: KitSettings,
  ) {
    ({ logoutPath: this.logoutPath, refreshCookiePath: this.refreshCookiePath } = settings);
    if (!this.time.install(first.io)) this.unclocked.push(first.index);
    this.nodes.push(first);
    this.desk = new Desk(first.app.session, first.app.passport);
    this.clock = kitClock(this.time, (helper) => {
      this.open(helper);
      const [index] = this.unclocked;
      if (index !== undefined) {
        throw new TypeError(
          `${helper}: node ${index}'s Socket.IO server had live sockets of a session namespace ` +
            'before the kit started, which keep real time: start the kit before any connects',
        );
      }
    });
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

  /** Whether the connection with that digest is one of the kit's tabs. */
  private isTab(connection: string): boolean {
    for (const manager of this.tabs.values()) {
      if (connectionDigest(manager.engine.id) === connection) return true;
    }
    return false;
  }

  loginAs(user: Express.User, options?: LoginAsOptions): Promise<Agent> {
    return loginAs(this, user, options);
  }

  loginWith(
    path: string,
    form: Record<string, string> | URLSearchParams,
    options?: LoginWithOptions,
  ): Promise<Agent> {
    return loginWith(this, path, form, options);
  }

  anonymous({ name = 'anonymous' }: { name?: string } = {}): Agent {
    this.open('kit.anonymous');
    return new KitAgent(this, name);
  }

  expire(agent: Agent): Promise<void> {
    return expireSession(this, this.nodes, agent);
  }

  destroy(agent: Agent): Promise<void> {
    return destroySession(this, agent);
  }

  removeFromStore(agent: Agent): Promise<void> {
    return removeFromStore(this, agent);
  }

  async resetLimits(): Promise<void> {
    this.open('kit.resetLimits');
    // Nodes sharing a Redis share the budgets: each reset once.
    const limiters = new Set(this.nodes.flatMap((node) => [...serverState(node.io).limiters]));
    await Promise.all([...limiters].map((limiter) => limiter.resetAll()));
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
      this.refusals.stop();
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

  /** Throws once the kit is closed: every helper of the kit asks first. */
  open(helper: string): void {
    if (this.closing) throw new Error(`${helper}: the kit is closed`);
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
