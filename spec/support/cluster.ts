// The spec's side of a cluster of node processes (spec/support/cluster-node.ts), shared by the
// multi-node specs: starting, calling and stopping nodes, and browsers talking to them (HTTP logins
// and logouts with cookies, websocket-only Socket.IO clients).
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import type { SocketEndedCode } from '../../lib/index.js';
import { delay, type ConnectError } from './client.js';
import type { NodeCommands, NodeReady, NodeReply, NodeWho, PresenceSeen } from './cluster-node.js';
import { freePort } from './redis.js';
import { cookieOf, users } from './server.js';
import { expectEnded, sidOf, watchEnd, within, type Seen } from './session-ending.js';
import { whoami } from './whoami.js';

const NODE_ENTRY = path.join(__dirname, 'cluster-node.ts');

// ---------------------------------------------------------------------------------------------
// Node processes
// ---------------------------------------------------------------------------------------------

const running = new Set<ChildProcess>();
export function killAll(): void {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  running.clear();
}
// A spec process that dies any way at all takes its nodes with it (they also exit on their own
// when their IPC channel closes).
process.once('exit', killAll);

/** The spec's side of one node process. */
export class ClusterNode {
  private child: ChildProcess | undefined;
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void }
  >();

  private constructor(
    readonly name: string,
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  /** Settles when the process last launched exits, with its exit code or signal. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> = new Promise(() => {});

  get running(): boolean {
    const child = this.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** The process last launched, while it runs: for a signal such as SIGSTOP (a node frozen). */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(name: string, env: Record<string, string>): Promise<ClusterNode> {
    const node = new ClusterNode(name, await freePort(), env);
    await node.launch();
    return node;
  }

  /** Starts the process (again, on the same port) and waits until it listens. */
  async launch(): Promise<void> {
    const child = fork(NODE_ENTRY, [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, ...this.env, PORT: String(this.port), NODE_NAME: this.name },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    running.add(child);
    this.child = child;
    child.on('message', (message: unknown) => {
      const reply = message as NodeReply | { ready: NodeReady };
      if (!('id' in reply)) return;
      const call = this.pending.get(reply.id);
      if (!call) return;
      this.pending.delete(reply.id);
      if (reply.ok) call.resolve(reply.result);
      else call.reject(new Error(`${this.name}: ${reply.error}`));
    });
    this.exit = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        resolve({ code, signal });
      });
    });
    child.once('exit', (code, signal) => {
      running.delete(child);
      const error = new Error(`${this.name} exited (${signal ?? `code ${code ?? '?'}`})`);
      for (const call of this.pending.values()) call.reject(error);
      this.pending.clear();
    });
    const ready = new Promise<NodeReady>((resolve, reject) => {
      child.on('message', (message: unknown) => {
        const { ready: value } = message as { ready?: NodeReady };
        if (value) resolve(value);
      });
      child.once('exit', (code) => {
        reject(new Error(`${this.name} exited before it was ready (code ${code ?? '?'})`));
      });
    });
    const { port } = await within(ready, `${this.name} to start`, 30_000);
    assert.equal(port, this.port);
  }

  /** Sends a command and waits for its answer. */
  call<K extends keyof NodeCommands>(
    cmd: K,
    args: NodeCommands[K]['args'],
  ): Promise<NodeCommands[K]['result']> {
    const child = this.child;
    if (!child || !this.running) return Promise.reject(new Error(`${this.name} is not running`));
    const id = this.nextId++;
    const answer = new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      child.send({ id, cmd, args });
    });
    return within(answer, `${this.name}: ${cmd}`, 15_000) as Promise<NodeCommands[K]['result']>;
  }

  /** SIGKILL: a crash, not a shutdown. Waits until the process is gone. */
  async kill(): Promise<void> {
    await this.stop('SIGKILL');
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(timer);
  }
}

export async function startNodes(
  names: string[],
  env: Record<string, string>,
  nodes: ClusterNode[],
): Promise<void> {
  // Pushed as they come up, so that `after` stops those that started even if another did not.
  await Promise.all(
    names.map(async (name) => {
      nodes.push(await ClusterNode.start(name, env));
    }),
  );
  nodes.sort((a, b) => a.name.localeCompare(b.name));
}

export function nodeNamed(nodes: ClusterNode[], name: string): ClusterNode {
  const node = nodes.find((n) => n.name === name);
  assert.ok(node, `node ${name} started`);
  return node;
}

// ---------------------------------------------------------------------------------------------
// Browsers: HTTP with cookies, websocket-only Socket.IO clients
// ---------------------------------------------------------------------------------------------

/** POST /login as `username`; with `cookie`, a login again in that session (Passport rotates it). */
export async function login(node: ClusterNode, username: string, cookie?: string): Promise<string> {
  const user = users.find((u) => u.username === username);
  assert.ok(user);
  const res = await fetch(`${node.url}/login`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(cookie !== undefined && { cookie }),
    },
    body: new URLSearchParams({ username, password: user.password }),
    redirect: 'manual',
  });
  assert.equal(res.status, 200, `login as ${username} on ${node.name}`);
  await res.arrayBuffer();
  return cookieOf(res);
}

/** POST /logout with the cookie; asserts the response's status (200 unless told). */
export async function logout(node: ClusterNode, cookie: string, status = 200): Promise<void> {
  const res = await fetch(`${node.url}/logout`, { method: 'POST', headers: { cookie } });
  assert.equal(res.status, status, `logout on ${node.name}`);
  await res.arrayBuffer();
}

const clients = new Set<ClientSocket>();

export interface Tab {
  node: string;
  nsp: string;
  socket: ClientSocket;
  seen: Seen;
  /** When the client saw `disconnect` (ms since epoch). */
  endedAt: number | undefined;
  /** The `connect_error`s it saw, in order. */
  errors: ConnectError[];
}

/** A websocket-only client of `nsp` on `node`, sending `cookie`; reconnection off unless asked. */
export function open(
  node: ClusterNode,
  nsp: string,
  cookie: string,
  options: { reconnection?: boolean } = {},
): Tab {
  const socket = ioClient(`${node.url}${nsp}`, {
    forceNew: true,
    transports: ['websocket'],
    extraHeaders: { cookie },
    reconnection: options.reconnection ?? false,
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    randomizationFactor: 0,
  });
  clients.add(socket);
  const tab: Tab = {
    node: node.name,
    nsp,
    socket,
    seen: watchEnd(socket),
    endedAt: undefined,
    errors: [],
  };
  socket.on('disconnect', () => {
    tab.endedAt ??= Date.now();
  });
  socket.on('connect_error', (err: ConnectError) => {
    tab.errors.push(err);
  });
  return tab;
}

/** Opens one client per namespace on `node` and waits until each is in, as `username`. */
export async function tabs(
  node: ClusterNode,
  cookie: string,
  namespaces: string[],
  username: string | null,
): Promise<Tab[]> {
  const opened = namespaces.map((nsp) => open(node, nsp, cookie));
  for (const tab of opened) {
    const who = await whoami<NodeWho>(tab.socket, label(tab));
    assert.deepEqual(who, {
      node: node.name,
      nsp: tab.nsp,
      user: username,
      sessionID: username === null ? who.sessionID : sidOf(cookie),
    });
  }
  return opened;
}

/** The code and status of a namespace-level refusal. */
export function refusalOf(err: ConnectError | undefined): { code: unknown; status: unknown } {
  return { code: err?.data?.code, status: err?.data?.status };
}

export function label(tab: Tab): string {
  return `${tab.nsp} on ${tab.node}`;
}

export async function expectAllEnded(list: Tab[], code: SocketEndedCode): Promise<void> {
  await Promise.all(list.map((tab) => expectEnded(tab.socket, tab.seen, code, label(tab))));
}

export function closeClients(): void {
  for (const socket of clients) socket.disconnect();
  clients.clear();
}

/** Closes every client, and waits (bounded) until no running node has a socket left. */
export async function settle(nodes: ClusterNode[]): Promise<void> {
  closeClients();
  const start = Date.now();
  for (const node of nodes) {
    for (;;) {
      if (!node.running) break;
      const { sockets } = await node.call('stats', null);
      if (Object.values(sockets).every((count) => count === 0)) break;
      if (Date.now() - start > 5000) {
        assert.fail(`${node.name} still has sockets: ${JSON.stringify(sockets)}`);
      }
      // Polled, bounded: the node is another process, which tells nothing over IPC by itself.
      await delay(20);
    }
  }
}

/** The value at quantile `q` (0..1) of `values`, nearest rank (the latency measurements). */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

/**
 * Times `samples` rounds of: a fresh login on `from`, one tab on `to`, `end(cookie)`, until that
 * tab's `session:ended` (then `code`). Returns a line for `t.diagnostic`: measured, not asserted.
 */
export async function endLatency(
  what: string,
  {
    from,
    to,
    samples = 20,
    code,
  }: { from: ClusterNode; to: ClusterNode; samples?: number; code: SocketEndedCode },
  end: (cookie: string) => Promise<unknown>,
): Promise<string> {
  const latencies: number[] = [];
  for (let i = 0; i < samples; i++) {
    const cookie = await login(from, 'alice');
    const [tab] = await tabs(to, cookie, ['/chat'], 'alice');
    assert.ok(tab);
    const ended = new Promise<number>((resolve) => {
      tab.socket.once('session:ended', () => {
        resolve(Date.now());
      });
    });
    const start = Date.now();
    await end(cookie);
    latencies.push((await within(ended, `session:ended on ${to.name}`, 10_000)) - start);
    await expectAllEnded([tab], code);
  }
  return (
    `${what} → session:ended on ${to.name}'s client, ${samples} samples: ` +
    `p50 ${quantile(latencies, 0.5)} ms, p99 ${quantile(latencies, 0.99)} ms, ` +
    `min ${Math.min(...latencies)} ms`
  );
}

/** Polls `get` (an IPC call) until `done` holds; fails after `ms`, a hang guard. */
export async function until<T>(
  get: () => Promise<T>,
  done: (value: T) => boolean,
  ms: number,
  what: string,
): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = await get();
    if (done(value)) return value;
    if (Date.now() - start > ms) assert.fail(`timed out waiting for ${what}`);
    // Polled, bounded: the node is another process, which tells nothing over IPC by itself.
    await delay(20);
  }
}

/** The presence events a node (PRESENCE=on) emitted from the `from`-th on, as `type key` strings. */
export async function presenceSeen(node: ClusterNode, from = 0): Promise<string[]> {
  const events = await node.call('presenceEvents', { from });
  return events.map(({ type, userKey }: PresenceSeen) => `${type} ${userKey}`);
}

/** Waits (bounded) until the node has emitted `expected` from `from` on, then checks it exactly. */
export async function expectPresenceSeen(
  node: ClusterNode,
  from: number,
  expected: string[],
  ms = 10_000,
): Promise<void> {
  const got = await until(
    () => presenceSeen(node, from),
    (events) => events.length >= expected.length,
    ms,
    `${expected.join(', ')} on ${node.name}`,
  );
  assert.deepEqual(got, expected, `presence events on ${node.name}`);
}
