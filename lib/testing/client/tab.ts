// One browser tab of an agent: one real socket.io-client connection (a Manager) that sends the
// agent's cookie as a browser would, read from its jar at each request, on which several
// namespaces may be opened.
import { Manager, type ManagerOptions, type SocketOptions } from 'socket.io-client';
import { connectionDigest } from '../../diagnostics/diagnostics.js';
import { COOKIE_EXPIRING_EVENT } from '../../live/cookie-refresh.js';
import { DEFAULT_WITHIN_MS, checkWithin } from '../bounded.js';
import type { TestNode } from '../kit/nodes.js';
import type { ConnectOptions } from './agent.js';
import type { CookieJar } from './cookie-jar.js';
import { connected } from './refusal.js';
import { recordOf } from './socket-record.js';
import { toTestSocket, type ReasonSource, type TestSocket } from './test-socket.js';

/** Options of one tab's connection. */
export interface TabOptions {
  /**
   * The one transport to use.
   * @default undefined (socket.io-client's default: polling, then an upgrade to WebSocket)
   */
  transport?: 'websocket' | 'polling';
  /**
   * The `Origin` header to send, as a browser page of that origin would.
   * @default undefined (no Origin header, as Node and mobile clients)
   */
  origin?: string;
  /**
   * Whether the client reconnects after a lost connection, as a browser does by default.
   * @default false
   */
  reconnection?: boolean;
  /**
   * The node to connect to.
   * @default the kit's first node
   */
  node?: TestNode;
  /**
   * Any other socket.io-client option (headers are added to the cookie and origin).
   * @default {}
   */
  client?: Partial<ManagerOptions & SocketOptions>;
}

/** One browser tab: one connection, on which several namespaces may be opened. */
export interface Tab {
  /** Opens a socket of `nsp` on this tab's connection, and resolves once it has connected. */
  connect(nsp: string, options?: Pick<ConnectOptions, 'auth' | 'within'>): Promise<TestSocket>;
  /** Closes the tab: its sockets and its connection. */
  close(): void;
}

/** What a tab needs of its agent and kit. */
export interface TabContext {
  /** The agent's name, for messages. */
  owner: string;
  jar: CookieJar;
  /** What the page does on COOKIE_EXPIRING_EVENT, if anything. */
  refresh: (() => void) | undefined;
  reasons: ReasonSource;
  /** Remembers the tab and its connection's manager, for `kit.close()`. */
  track(tab: Tab, manager: Manager): void;
}

/** Checks a namespace argument; throws a TypeError naming `helper`. */
export function checkNamespace(helper: string, nsp: unknown): string {
  if (typeof nsp !== 'string' || !nsp.startsWith('/')) {
    throw new TypeError(`${helper}: the namespace must be a string starting with '/'`);
  }
  return nsp;
}

/** Opens a tab to `node`: its connection's manager, not yet connected. */
export function openTab(node: TestNode, context: TabContext, options: TabOptions): Tab {
  const { transport, origin, reconnection = false, client = {} } = options;
  const chosen: unknown = transport;
  if (chosen !== undefined && chosen !== 'websocket' && chosen !== 'polling') {
    throw new TypeError("agent.tab: options.transport must be 'websocket' or 'polling'");
  }
  const fixed: Record<string, string> = {
    ...(origin !== undefined && { origin }),
    ...client.extraHeaders,
  };
  const headers = Object.keys(fixed).some((name) => name.toLowerCase() === 'cookie')
    ? fixed
    : withJarCookie(fixed, context.jar);
  const manager = new Manager(node.url, {
    reconnection,
    ...(transport !== undefined && { transports: [transport] }),
    ...client,
    extraHeaders: headers,
  });
  const sockets: TestSocket[] = [];
  const { owner, refresh, reasons } = context;
  // The connection's digest, as the `handshake` channel publishes it, kept from the open: a refused client closes its connection, and forgets its id, first.
  let connectionId: string | undefined;
  manager.on('open', () => {
    connectionId = connectionDigest(manager.engine.id);
  });
  const tab: Tab = {
    connect(nsp, { auth, within } = {}) {
      checkNamespace('tab.connect', nsp);
      const ms = checkWithin('agent.connect', within, DEFAULT_WITHIN_MS);
      const raw = manager.socket(nsp, auth === undefined ? {} : { auth });
      const socket = toTestSocket(raw, nsp, owner, () => reasons(connectionId, nsp));
      sockets.push(socket);
      if (refresh) socket.on(COOKIE_EXPIRING_EVENT, refresh);
      const record = recordOf(socket);
      if (!record) throw new Error('the socket was not recorded');
      return connected(record, ms);
    },
    close() {
      // The manager closes its connection once none of its sockets is open (a refused socket
      // is closed already).
      for (const socket of sockets) socket.disconnect();
    },
  };
  context.track(tab, manager);
  return tab;
}

/**
 * The headers, with a `cookie` read from the jar at each HTTP request and WebSocket of the
 * connection, reconnects included, as a browser sends it (a cookie past its end is not sent),
 * and no `cookie` at all while the jar is empty.
 */
function withJarCookie(fixed: Record<string, string>, jar: CookieJar): Record<string, string> {
  const cookie = (key: string | symbol): string | undefined => {
    if (key !== 'cookie') return undefined;
    const header = jar.header();
    return header === '' ? undefined : header;
  };
  return new Proxy(fixed, {
    get: (target, key) => cookie(key) ?? (Reflect.get(target, key) as unknown),
    has: (target, key) => cookie(key) !== undefined || Reflect.has(target, key),
    ownKeys: (target) => [
      ...Reflect.ownKeys(target),
      ...(cookie('cookie') === undefined ? [] : ['cookie']),
    ],
    getOwnPropertyDescriptor: (target, key) => {
      const value = cookie(key);
      return value === undefined
        ? Reflect.getOwnPropertyDescriptor(target, key)
        : { value, enumerable: true, configurable: true, writable: false };
    },
  });
}
