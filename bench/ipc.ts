// Typed request/reply over Node's IPC channel, and child processes that never outlive the bench.
import { fork, type ChildProcess } from 'node:child_process';

/** A command map: each command's arguments and result, both serialisable. */
export type Commands<C> = { [K in keyof C]: { args: unknown; result: unknown } };

type Handlers<C extends Commands<C>> = {
  [K in keyof C]: (args: C[K]['args']) => Promise<C[K]['result']> | C[K]['result'];
};

interface Call {
  id: number;
  cmd: string;
  args: unknown;
}

type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

interface Ready {
  ready: unknown;
}

const children = new Set<ChildProcess>();

/** Kills every child still running. Called on exit, on signals and on errors. */
export function killChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
}

process.once('exit', killChildren);

/** The parent's side of one child process. */
export class Child<C extends Commands<C>> {
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  private exited: Error | undefined;

  private constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    process.on('message', (message: Reply) => {
      const call = this.pending.get(message.id);
      if (!call) return;
      this.pending.delete(message.id);
      if (message.ok) call.resolve(message.result);
      else call.reject(new Error(`${name}: ${message.error}`));
    });
    process.once('exit', (code, signal) => {
      children.delete(process);
      this.exited = new Error(`${name} exited (${signal ?? `code ${code ?? '?'}`})`);
      for (const call of this.pending.values()) call.reject(this.exited);
      this.pending.clear();
    });
  }

  /** Forks `file` under tsx and waits for its `ready` message. */
  static async start<C extends Commands<C>>(
    name: string,
    file: string,
    argv: string[],
    nodeFlags: string[],
  ): Promise<{ child: Child<C>; ready: unknown }> {
    const proc = fork(file, argv, {
      execArgv: ['--import', 'tsx', ...nodeFlags],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    children.add(proc);
    const child = new Child<C>(name, proc);
    const ready = await new Promise((resolve, reject) => {
      const onMessage = (message: Partial<Ready>): void => {
        if (!('ready' in message)) return;
        proc.off('message', onMessage);
        proc.off('exit', onExit);
        resolve(message.ready);
      };
      const onExit = (code: number | null): void => {
        reject(new Error(`${name} exited before it was ready (code ${code ?? '?'})`));
      };
      proc.on('message', onMessage);
      proc.once('exit', onExit);
    });
    return { child, ready };
  }

  call<K extends keyof C & string>(
    cmd: K,
    args: C[K]['args'],
    timeoutMs = 10 * 60_000,
  ): Promise<C[K]['result']> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      const call: Call = { id, cmd, args };
      this.process.send(call);
    });
  }

  /** Ends the child and waits for it to be gone. */
  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const gone = new Promise((resolve) => this.process.once('exit', resolve));
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(timer);
  }
}

/**
 * The child's side: answers the parent's calls with `handlers`, after telling it `ready`. The child
 * exits as soon as the parent is gone, so a killed bench never leaves a process behind.
 */
export function serve<C extends Commands<C>>(handlers: Handlers<C>, ready: unknown): void {
  const send = process.send?.bind(process);
  if (!send) throw new Error('this module runs as a child process of bench/run.ts');
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  process.on('message', (call: Call) => {
    const handler = (handlers as Record<string, ((args: unknown) => unknown) | undefined>)[
      call.cmd
    ];
    const reply = (message: Reply): void => {
      if (process.connected) send(message);
    };
    if (!handler) {
      reply({ id: call.id, ok: false, error: `unknown command ${call.cmd}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(call.args))
      .then(
        (result) => {
          reply({ id: call.id, ok: true, result });
        },
        (error: unknown) => {
          reply({
            id: call.id,
            ok: false,
            error: error instanceof Error ? (error.stack ?? error.message) : String(error),
          });
        },
      );
  });
  const message: Ready = { ready };
  send(message);
}
