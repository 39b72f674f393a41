// The parent's side of spec/support/load-clients.ts: a child process that holds the many
// socket.io-clients of the leak and load specs, so that the server's heap, timers and CPU in the
// test process are its own.
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/** Many handshakes, `concurrency` at a time, each on its own websocket-only connection. */
export interface HandshakesArgs {
  url: string;
  /** Namespaces, used in turn: handshake i goes to `nsps[i % nsps.length]`. */
  nsps: string[];
  count: number;
  concurrency: number;
  cookie?: string;
  /**
   * `answer`: wait for the server's answer (`connect` or `connect_error`), then close.
   * `leave`: each handshake carries its number in its query (`?h=<n>`, see {@link handshakeOf});
   * the client waits until the server has reached the step under test for it (the parent then
   * calls `release` with that number), stays a random time in `stayMs`, then closes, whether the
   * server answered or not. A server that answers first ends the wait, and the answer is counted.
   */
  mode: 'answer' | 'leave';
  stayMs?: [number, number];
}

/**
 * The handshake number a `leave` client put in its query, read from the request's URL on the
 * server; undefined for a handshake without one.
 */
export function handshakeOf(req: { url?: string }): number | undefined {
  const value = new URL(req.url ?? '/', 'http://localhost').searchParams.get('h');
  return value === null ? undefined : Number(value);
}

export interface HandshakesResult {
  ms: number;
  /** `connect_error` codes (`err.data.code`, else the message) and how many of each. */
  codes: Record<string, number>;
  /** Handshakes that connected. */
  connected: number;
  /** Handshakes whose connection did not open, or that got no answer in time. */
  failures: string[];
  /** `leave`: the longest time a client actually stayed after its connection opened. */
  maxStayMs: number;
}

/** `leave` handshakes the server has reached the step under test for: their clients may go. */
export interface ReleaseArgs {
  handshakes: number[];
}

export interface OpenArgs {
  url: string;
  nsp: string;
  cookies: string[];
  count: number;
  concurrency: number;
}

export interface OpenResult {
  ms: number;
  opened: number;
  failures: string[];
}

export interface AcksArgs {
  /** Event the server answers with its first argument. */
  event: string;
  rounds: number;
  timeoutMs: number;
}

export interface AcksResult {
  ms: number;
  sent: number;
  answered: number;
  wrong: number;
  failed: number;
  maxLatencyMs: number;
}

export interface StatusResult {
  /** Sockets still connected. */
  connected: number;
  /** `disconnect` events seen on the open sockets. */
  disconnects: string[];
}

export interface RefusedArgs {
  url: string;
  nsp: string;
  count: number;
  concurrency: number;
  /** Every `reconnectEvery`-th client uses reconnection: true and the default transports. */
  reconnectEvery: number;
  /** How long to watch, after its refusal, that a client does not come back. */
  quietMs: number;
}

export interface RefusedResult {
  ms: number;
  reconnecting: number;
  codes: Record<string, number>;
  /** Clients with more than one connect_error, that connected, or still active. */
  cameBack: number;
  connected: number;
  stillActive: number;
  reconnectAttempts: number;
  failures: string[];
}

export interface MultiplexRoundResult {
  codes: Record<string, number>;
  connected: number;
}

export interface ClientCommands {
  handshakes: { args: HandshakesArgs; result: HandshakesResult };
  release: { args: ReleaseArgs; result: null };
  open: { args: OpenArgs; result: OpenResult };
  acks: { args: AcksArgs; result: AcksResult };
  status: { args: null; result: StatusResult };
  closeAll: { args: null; result: null };
  refused: { args: RefusedArgs; result: RefusedResult };
  /** One connection with `/` connected, kept open across rounds. */
  multiplexOpen: { args: { url: string }; result: null };
  /** One handshake per namespace, all at once, on that one connection. */
  multiplexRound: { args: { nsps: string[] }; result: MultiplexRoundResult };
  multiplexClose: { args: null; result: null };
}

export interface Call {
  id: number;
  cmd: string;
  args: unknown;
}

export type Reply =
  { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A forked spec/support/load-clients.ts, called with typed commands over IPC. */
export class ClientProcess {
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void }
  >();
  private exited: Error | undefined;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (message: Reply) => {
      const call = this.pending.get(message.id);
      if (!call) return;
      this.pending.delete(message.id);
      if (message.ok) call.resolve(message.result);
      else call.reject(new Error(`${name}: ${message.error}`));
    });
    child.once('exit', (code, signal) => {
      running.delete(child);
      this.exited = new Error(`${name} exited (${signal ?? `code ${code ?? '?'}`})`);
      for (const call of this.pending.values()) call.reject(this.exited);
      this.pending.clear();
    });
  }

  static async start(name: string): Promise<ClientProcess> {
    const child = fork(join(__dirname, 'load-clients.ts'), [], {
      execArgv: ['--import', 'tsx', '--max-old-space-size=4096'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    running.add(child);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: unknown): void => {
        if (message !== 'ready') return;
        child.off('exit', onExit);
        child.off('message', onMessage);
        resolve();
      };
      const onExit = (code: number | null): void => {
        reject(new Error(`${name} exited before it was ready (code ${code ?? '?'})`));
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
    return new ClientProcess(name, child);
  }

  call<K extends keyof ClientCommands>(
    cmd: K,
    args: ClientCommands[K]['args'],
  ): Promise<ClientCommands[K]['result']> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve: (value) => {
          resolve(value as ClientCommands[K]['result']);
        },
        reject,
      });
      const call: Call = { id, cmd, args };
      this.child.send(call);
    });
  }

  /** Ends the child and waits until it has exited. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(timer);
  }
}
