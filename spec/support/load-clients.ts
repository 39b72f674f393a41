// The client child of the leak and load specs (forked by spec/support/client-process.ts): every
// socket.io-client lives here, so that the server's heap, timers and CPU are measured alone.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { io, Manager, type Socket } from 'socket.io-client';
import type {
  AcksArgs,
  AcksResult,
  Call,
  ClientCommands,
  HandshakesArgs,
  HandshakesResult,
  MultiplexRoundResult,
  OpenArgs,
  OpenResult,
  RefusedArgs,
  RefusedResult,
  ReleaseArgs,
  Reply,
  StatusResult,
} from './client-process.js';

interface ConnectError extends Error {
  data?: { code?: string };
}

/** How long any one step may take before it counts as a failure rather than a hang. */
const STEP_MS = 60_000;

const codeOf = (err: ConnectError): string => err.data?.code ?? err.message;

function add(codes: Record<string, number>, code: string): void {
  codes[code] = (codes[code] ?? 0) + 1;
}

/** Runs `task(i)` for i in [0, count), `concurrency` at a time. */
async function pool(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

type Outcome = { kind: 'connect' } | { kind: 'error'; code: string } | { kind: 'none' };

/** The socket's first answer: `connect`, `connect_error`, or none within `ms`. */
function answer(socket: Socket, ms: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const done = (outcome: Outcome): void => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
      resolve(outcome);
    };
    const onConnect = (): void => {
      done({ kind: 'connect' });
    };
    const onError = (err: ConnectError): void => {
      done({ kind: 'error', code: codeOf(err) });
    };
    const timer = setTimeout(() => {
      done({ kind: 'none' });
    }, ms);
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
  });
}

/** Resolves when the socket's connection (not its namespace) is open; false on error or timeout. */
function connectionOpen(socket: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const manager = socket.io;
    const done = (open: boolean): void => {
      clearTimeout(timer);
      manager.off('open', onOpen);
      manager.off('error', onFail);
      resolve(open);
    };
    const onOpen = (): void => {
      done(true);
    };
    const onFail = (): void => {
      done(false);
    };
    const timer = setTimeout(onFail, ms);
    manager.on('open', onOpen);
    manager.on('error', onFail);
  });
}

const headers = (cookie: string | undefined): Record<string, string> | undefined =>
  cookie === undefined ? undefined : { cookie };

// The `leave` handshakes waiting for the parent's word that the server reached their step.
const waitingForRelease = new Map<number, () => void>();
let handshakeCount = 0;

function release({ handshakes: released }: ReleaseArgs): null {
  for (const handshake of released) waitingForRelease.get(handshake)?.();
  return null;
}

type Cue = 'released' | 'answered' | 'none';

/**
 * Resolves once the parent releases `handshake` (the server reached the step under test for it),
 * or the server answers the socket first, or after `ms` with 'none'.
 */
function leaveCue(handshake: number, socket: Socket, ms: number): Promise<Cue> {
  return new Promise((resolve) => {
    const done = (cue: Cue): void => {
      clearTimeout(timer);
      waitingForRelease.delete(handshake);
      socket.off('connect', onAnswer);
      socket.off('connect_error', onAnswer);
      resolve(cue);
    };
    const onAnswer = (): void => {
      done('answered');
    };
    const timer = setTimeout(() => {
      done('none');
    }, ms);
    waitingForRelease.set(handshake, () => {
      done('released');
    });
    socket.on('connect', onAnswer);
    socket.on('connect_error', onAnswer);
  });
}

async function handshakes(args: HandshakesArgs): Promise<HandshakesResult> {
  const { url, nsps, count, concurrency, cookie, mode, stayMs = [10, 60] } = args;
  const result: HandshakesResult = { ms: 0, codes: {}, connected: 0, failures: [], maxStayMs: 0 };
  const started = performance.now();
  await pool(count, concurrency, async (i) => {
    const nsp = nsps[i % nsps.length] ?? '/';
    const handshake = handshakeCount++;
    const socket = io(`${url}${nsp}`, {
      forceNew: true,
      reconnection: false,
      transports: ['websocket'],
      extraHeaders: headers(cookie),
      ...(mode === 'leave' && { query: { h: String(handshake) } }),
    });
    try {
      if (mode === 'answer') {
        const outcome = await answer(socket, STEP_MS);
        if (outcome.kind === 'connect') result.connected++;
        else if (outcome.kind === 'error') add(result.codes, outcome.code);
        else result.failures.push(`${nsp}: no answer within ${STEP_MS} ms`);
        return;
      }
      // Leave mid-handshake: whatever the server says before we go is recorded.
      const early: { connected?: boolean; code?: string } = {};
      socket.once('connect', () => {
        early.connected = true;
      });
      socket.once('connect_error', (err: ConnectError) => {
        early.code = codeOf(err);
      });
      // Listening before the CONNECT packet goes: the release cannot come before it.
      const cue = leaveCue(handshake, socket, STEP_MS);
      if (!(await connectionOpen(socket, STEP_MS))) {
        result.failures.push(`${nsp}: the connection did not open`);
        release({ handshakes: [handshake] }); // stops the wait (and its timer)
        return;
      }
      const openedAt = performance.now();
      // Not a time guess: the server has taken this handshake as far as the step under test.
      if ((await cue) === 'none') {
        result.failures.push(`${nsp}: the server did not reach the step within ${STEP_MS} ms`);
        return;
      }
      const [min, max] = stayMs;
      await sleep(min + Math.random() * (max - min));
      result.maxStayMs = Math.max(result.maxStayMs, performance.now() - openedAt);
      if (early.connected) result.connected++;
      if (early.code !== undefined) add(result.codes, early.code);
    } finally {
      // Closes the socket and, with it (its last namespace), the connection.
      socket.disconnect();
    }
  });
  result.ms = performance.now() - started;
  return result;
}

// The authenticated sockets of the load spec, and what happened to them.
const openSockets: Socket[] = [];
const disconnects: string[] = [];

async function open(args: OpenArgs): Promise<OpenResult> {
  const { url, nsp, cookies, count, concurrency } = args;
  const result: OpenResult = { ms: 0, opened: 0, failures: [] };
  const started = performance.now();
  await pool(count, concurrency, async (i) => {
    const socket = io(`${url}${nsp}`, {
      forceNew: true,
      reconnection: false,
      transports: ['websocket'],
      extraHeaders: headers(cookies[i % cookies.length]),
    });
    const outcome = await answer(socket, STEP_MS);
    if (outcome.kind !== 'connect') {
      result.failures.push(outcome.kind === 'error' ? outcome.code : 'no answer');
      socket.disconnect();
      return;
    }
    socket.on('disconnect', (reason) => {
      disconnects.push(reason);
    });
    openSockets.push(socket);
    result.opened++;
  });
  result.ms = performance.now() - started;
  return result;
}

async function acks({ event, rounds, timeoutMs }: AcksArgs): Promise<AcksResult> {
  const result: AcksResult = { ms: 0, sent: 0, answered: 0, wrong: 0, failed: 0, maxLatencyMs: 0 };
  const started = performance.now();
  for (let round = 0; round < rounds; round++) {
    await Promise.all(
      openSockets.map(
        (socket, i) =>
          new Promise<void>((resolve) => {
            const value = round * openSockets.length + i;
            const sentAt = performance.now();
            result.sent++;
            socket.timeout(timeoutMs).emit(event, value, (err: Error | null, reply: unknown) => {
              result.maxLatencyMs = Math.max(result.maxLatencyMs, performance.now() - sentAt);
              if (err) result.failed++;
              else if (reply !== value) result.wrong++;
              else result.answered++;
              resolve();
            });
          }),
      ),
    );
  }
  result.ms = performance.now() - started;
  return result;
}

function status(): StatusResult {
  return {
    connected: openSockets.filter((socket) => socket.connected).length,
    disconnects: [...disconnects],
  };
}

function closeAll(): null {
  for (const socket of openSockets.splice(0)) {
    socket.off('disconnect');
    socket.disconnect();
  }
  disconnects.length = 0;
  return null;
}

async function refused(args: RefusedArgs): Promise<RefusedResult> {
  const { url, nsp, count, concurrency, reconnectEvery, quietMs } = args;
  const result: RefusedResult = {
    ms: 0,
    reconnecting: 0,
    codes: {},
    cameBack: 0,
    connected: 0,
    stillActive: 0,
    reconnectAttempts: 0,
    failures: [],
  };
  const clients: { socket: Socket; errors: number; connects: number }[] = [];
  const started = performance.now();
  await pool(count, concurrency, async (i) => {
    const reconnecting = reconnectEvery > 0 && i % reconnectEvery === 0;
    if (reconnecting) result.reconnecting++;
    // A browser tab's defaults (polling, then upgrade; reconnection on), or a Node client's.
    const socket = reconnecting
      ? io(`${url}${nsp}`, { forceNew: true })
      : io(`${url}${nsp}`, { forceNew: true, reconnection: false, transports: ['websocket'] });
    const client = { socket, errors: 0, connects: 0 };
    clients.push(client);
    socket.on('connect_error', () => {
      client.errors++;
    });
    socket.on('connect', () => {
      client.connects++;
    });
    socket.io.on('reconnect_attempt', () => {
      result.reconnectAttempts++;
    });
    const outcome = await answer(socket, STEP_MS);
    if (outcome.kind === 'error') add(result.codes, outcome.code);
    else if (outcome.kind === 'none') result.failures.push('no answer');
  });
  result.ms = performance.now() - started;
  // Long enough for the reconnection delays (1 s, then 2 s, ± 50 %) to have passed.
  await sleep(quietMs);
  for (const { socket, errors, connects } of clients) {
    if (connects > 0) result.connected++;
    if (socket.active) result.stillActive++;
    if (errors > 1 || connects > 0) result.cameBack++;
    socket.disconnect();
  }
  return result;
}

let multiplex: Manager | undefined;

async function multiplexOpen({ url }: { url: string }): Promise<null> {
  const manager = new Manager(url, {
    reconnection: false,
    autoConnect: false,
    transports: ['websocket'],
  });
  multiplex = manager;
  const root = manager.socket('/');
  const outcome = answer(root, STEP_MS);
  root.connect();
  const { kind } = await outcome;
  if (kind !== 'connect') throw new Error(`multiplex: / did not connect (${kind})`);
  return null;
}

async function multiplexRound({ nsps }: { nsps: string[] }): Promise<MultiplexRoundResult> {
  const manager = multiplex;
  if (!manager) throw new Error('multiplexOpen first');
  const result: MultiplexRoundResult = { codes: {}, connected: 0 };
  await Promise.all(
    nsps.map(async (nsp) => {
      const socket = manager.socket(nsp);
      const outcome = answer(socket, STEP_MS);
      socket.connect();
      const settled = await outcome;
      // socket.io-client keeps every socket a Manager made and, each time one is refused or
      // closed, lists them all (Manager#_destroy): 20 000 names made the client quadratic (most of
      // a flood's time). A socket is forgotten once refused; nothing on the wire changes.
      if (!socket.active) Reflect.deleteProperty((manager as unknown as Forgetful).nsps, nsp);
      if (settled.kind === 'connect') result.connected++;
      else add(result.codes, settled.kind === 'error' ? settled.code : 'no answer');
    }),
  );
  return result;
}

/** socket.io-client's Manager, as far as multiplexRound reaches into it. */
interface Forgetful {
  nsps: Record<string, unknown>;
}

function multiplexClose(): null {
  multiplex?.engine.close();
  multiplex = undefined;
  return null;
}

type Handlers = {
  [K in keyof ClientCommands]: (
    args: ClientCommands[K]['args'],
  ) => ClientCommands[K]['result'] | Promise<ClientCommands[K]['result']>;
};

const handlers: Handlers = {
  handshakes,
  release,
  open,
  acks,
  status,
  closeAll,
  refused,
  multiplexOpen,
  multiplexRound,
  multiplexClose,
};

const send = process.send?.bind(process);
if (!send) throw new Error('spec/support/load-clients.ts runs as a child process');
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
process.on('message', (call: Call) => {
  const reply = (message: Reply): void => {
    if (process.connected) send(message);
  };
  const handler = (handlers as Record<string, ((args: unknown) => unknown) | undefined>)[call.cmd];
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
send('ready');
