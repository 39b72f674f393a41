// Fidelity: Socket.IO's own namespace and middleware behaviours, replayed with the package layered
// on every namespace involved. Each scenario is one function run twice: on a stock server (no
// package) and on a server where every namespace it uses is
// `requireAuth(sessionNamespace(nsp, session, { passport }))`, the client logged in over HTTP and
// sending the real cookie in both runs. What the client saw and what the server's handlers saw
// must be the same. Where the package changes an outcome on purpose (a stranger is refused), the
// test says so in its name and asserts the documented outcome.
import assert from 'node:assert/strict';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import type { Namespace, Socket as ServerSocket } from 'socket.io';
import { Manager, type ManagerOptions, type Socket as ClientSocket } from 'socket.io-client';
import { requireAuth, sessionNamespace } from '../lib/index.js';
import { connected, connectError } from './support/bounded.js';
import { start } from './support/server.js';
import { Server, versions } from './support/stack.js';

// ---------------------------------------------------------------------------------------------
// The run-twice harness
// ---------------------------------------------------------------------------------------------

type Mode = 'stock' | 'layered';

/** Entries in the order they happened, one list per key (a client socket's name, a namespace). */
type Log = Record<string, string[]>;

/** What a scenario observed: on the client, and in the server's handlers. */
interface Outcome {
  client: Log;
  server: Log;
}

/** What a connection handler saw of the package, recorded by the harness on every namespace. */
interface SeenUser {
  socket: string;
  user: string | null;
  dataUser: unknown;
}

interface ConnectionOptions {
  /** No cookie: a stranger. */
  anonymous?: boolean;
  manager?: Partial<ManagerOptions>;
}

/** Opens a namespace on one client connection; `name` is sent as `auth.name` to label it. */
type Opener = (nsp: string, name: string, auth?: Record<string, unknown>) => ClientSocket;

/** What a scenario gets: the same in both runs, so that it cannot tell which one it is in. */
interface Run {
  readonly io: Server;
  /** alice's session cookie, from a real HTTP login (sent in both runs). */
  readonly cookie: string;
  /** Stock: the namespace as it is. Layered: requireAuth(sessionNamespace(target, …)). */
  layer(target: Namespace | Server): Namespace;
  client(key: string, entry: string): void;
  server(key: string, entry: string): void;
  /** One engine.io connection (one Manager); reconnection is off unless asked for. */
  connection(options?: ConnectionOptions): Opener;
}

type Scenario = (run: Run) => Promise<void>;

/**
 * Reconnection on, 1 ms apart (0 would mean Socket.IO's default, 1 s): a client that was going to
 * retry does so before a probe's round trip ends.
 */
const RETRY_AT_ONCE: Partial<ManagerOptions> = {
  reconnection: true,
  reconnectionDelay: 1,
  reconnectionDelayMax: 1,
  randomizationFactor: 0,
};

/** The harness's own event: the last round trip of a run (never logged). */
const FLUSH = 'fidelity:flush';

/** The label a client gave its socket (`auth.name`). */
function nameOf(socket: Pick<ServerSocket, 'handshake'>): string {
  const { name } = socket.handshake.auth as { name?: unknown };
  return typeof name === 'string' ? name : '?';
}

function logClient(run: Run, socket: ClientSocket, name: string): void {
  socket.on('connect', () => {
    run.client(name, 'connect');
  });
  socket.on('connect_error', (err: Error & { data?: unknown }) => {
    const data = err.data === undefined ? 'undefined' : JSON.stringify(err.data);
    run.client(name, `connect_error ${err.message} data=${data} active=${socket.active}`);
  });
  socket.on('disconnect', (reason) => {
    run.client(name, `disconnect: ${reason} active=${socket.active}`);
  });
  socket.onAny((event: string, ...args: unknown[]) => {
    run.client(name, `${event} ${JSON.stringify(args)}`);
  });
}

async function runOnce(
  tc: NodeTestContext,
  mode: Mode,
  scenario: Scenario,
): Promise<{ outcome: Outcome; users: SeenUser[] }> {
  const t = await start(tc, () => undefined);
  const cookie = await t.login('alice');
  const outcome: Outcome = { client: {}, server: {} };
  const users: SeenUser[] = [];
  const sockets: ClientSocket[] = [];
  let layered = false;
  const push = (log: Log, key: string, entry: string): void => {
    (log[key] ??= []).push(entry);
  };
  // A connection listener on every concrete namespace, children included: did the package put
  // the session user on this socket? (Counted once the scenario has layered something.) It also
  // answers the last round trip of each client socket (see below).
  const watch = (nsp: Namespace): void => {
    nsp.on('connection', (socket) => {
      socket.on(FLUSH, (ack: () => void) => {
        ack();
      });
      if (!layered) return;
      users.push({
        socket: `${nsp.name} ${nameOf(socket)}`,
        user: socket.request.user?.username ?? null,
        dataUser: (socket.data as { user?: unknown }).user ?? null,
      });
    });
  };
  watch(t.io.of('/'));
  t.io.on('new_namespace', watch);

  const run: Run = {
    io: t.io,
    cookie,
    layer(target) {
      layered = true;
      if (mode === 'stock') return target instanceof Server ? target.of('/') : target;
      return requireAuth(sessionNamespace(target, t.session, { passport: t.passport }));
    },
    client(key, entry) {
      push(outcome.client, key, entry);
    },
    server(key, entry) {
      push(outcome.server, key, entry);
    },
    connection({ anonymous = false, manager: managerOptions } = {}) {
      const manager = new Manager(t.url, {
        reconnection: false,
        ...(!anonymous && { extraHeaders: { cookie } }),
        ...managerOptions,
      });
      return (nsp, name, auth = {}) => {
        const socket = manager.socket(nsp, { auth: { name, ...auth } });
        sockets.push(socket);
        logClient(run, socket, name);
        return socket;
      };
    },
  };
  try {
    await scenario(run);
    // One last round trip on every socket still connected: whatever the server sent it before
    // (an event the package added, say) has arrived by the time the answer does.
    await Promise.all(
      sockets
        .filter((socket) => socket.connected)
        .map((socket) => socket.timeout(5000).emitWithAck(FLUSH)),
    );
    return { outcome: structuredClone(outcome), users: [...users] };
  } finally {
    for (const socket of sockets) socket.disconnect();
  }
}

/**
 * A scenario run on a stock server and on a layered one: the two outcomes must be equal, and, when
 * given, equal to `expected` (what stock Socket.IO does, in every supported minor).
 */
function fidelity(name: string, scenario: Scenario, expected?: Outcome): void {
  test(name, async (tc) => {
    const stock = await runOnce(tc, 'stock', scenario);
    const layered = await runOnce(tc, 'layered', scenario);
    assert.deepStrictEqual(
      layered.outcome,
      stock.outcome,
      `layered vs stock (socket.io ${versions.socketIo}): the package changed what the app sees`,
    );
    if (expected) {
      assert.deepStrictEqual(
        stock.outcome,
        expected,
        `stock socket.io ${versions.socketIo} does not do what this scenario expects of it`,
      );
    }
    // The package was really there: every socket the app saw connect after layering had the
    // logged-in user, and its summary in socket.data.user; on the stock server, none did.
    assert.ok(stock.users.length > 0, 'the scenario connected no socket after layering');
    // Sorted: namespaces opened together on one connection may connect in either order.
    const bySocket = (a: SeenUser, b: SeenUser): number => a.socket.localeCompare(b.socket);
    assert.deepStrictEqual(
      layered.users.sort(bySocket),
      stock.users.sort(bySocket).map(({ socket }) => ({
        socket,
        user: 'alice',
        dataUser: { id: '1', username: 'alice' },
      })),
      'layered: every socket the app saw connect has the session user',
    );
    assert.deepStrictEqual(
      stock.users.map(({ user, dataUser }) => [user, dataUser]),
      stock.users.map(() => [null, null]),
      'stock: no socket has a user',
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Small helpers for scenarios
// ---------------------------------------------------------------------------------------------
/** Answers `probe` acks with their argument, and logs them. */
function answerProbes(run: Run, nsp: Namespace): void {
  nsp.on('connection', (socket) => {
    socket.on('probe', (n: number, ack: (n: number) => void) => {
      run.server(nsp.name, `probe ${n} from ${nameOf(socket)}`);
      ack(n);
    });
  });
}

/** A full round trip on the client's connection. */
async function probe(socket: ClientSocket, n: number): Promise<void> {
  const answer: unknown = await socket.timeout(5000).emitWithAck('probe', n);
  assert.equal(answer, n);
}

// ---------------------------------------------------------------------------------------------
// 1. Middleware order
// ---------------------------------------------------------------------------------------------

describe('fidelity: namespace middleware', () => {
  fidelity(
    'app middleware added before and after the layering runs in the order added, then connect, then connection',
    async (run) => {
      const { io } = run;
      const log = (entry: string): void => {
        run.server('/chat', entry);
      };
      io.use((_socket, next) => {
        run.server('/', 'middleware of / (never for /chat)');
        next();
      });
      const chat = io.of('/chat');
      chat.use((socket, next) => {
        log(`before layering 1 (sync), connected=${socket.connected}`);
        next();
      });
      chat.use((_socket, next) => {
        log('before layering 2 (async)');
        setImmediate(next);
      });
      chat.on('connect', () => {
        log('connect listener added before layering');
      });
      chat.on('connection', (socket) => {
        log(`connection listener added before layering, connected=${socket.connected}`);
      });
      run.layer(io);
      run.layer(chat);
      chat.use((socket, next) => {
        log(`after layering 1 (lengthy), connected=${socket.connected}`);
        setTimeout(next, 20);
      });
      chat.use((_socket, next) => {
        log('after layering 2 (sync)');
        next();
      });
      chat.on('connect', () => {
        log('connect listener added after layering');
      });
      chat.on('connection', (socket) => {
        log(`connection listener added after layering, connected=${socket.connected}`);
      });
      await connected(run.connection()('/chat', 'A'));
    },
    {
      client: { A: ['connect'] },
      server: {
        '/chat': [
          'before layering 1 (sync), connected=false',
          'before layering 2 (async)',
          'after layering 1 (lengthy), connected=false',
          'after layering 2 (sync)',
          'connect listener added before layering',
          'connect listener added after layering',
          'connection listener added before layering, connected=true',
          'connection listener added after layering, connected=true',
        ],
      },
    },
  );
});

// ---------------------------------------------------------------------------------------------
// 2. next(err) from app middleware
// ---------------------------------------------------------------------------------------------

describe('fidelity: refusals by app middleware', () => {
  fidelity(
    'next(err) with err.data, before or after the layering: same message and data, no other field, no reconnect, no room left',
    async (run) => {
      const { io } = run;
      const refusal = (message: string): Error =>
        Object.assign(new Error(message), { data: { a: 'b', c: 3 }, code: 'E_APP', status: 418 });
      answerProbes(run, run.layer(io));

      const late = io.of('/late');
      late.use((socket, next) => {
        run.server('/late', `handshake of ${nameOf(socket)}`);
        next();
      });
      run.layer(late);
      late.use((_socket, next) => {
        run.server('/late', 'refusing');
        next(refusal('Authentication error'));
      });
      late.use((_socket, next) => {
        run.server('/late', 'middleware after the refusal (never)');
        next();
      });
      late.on('connection', () => {
        run.server('/late', 'connection (never)');
      });

      const early = io.of('/early');
      early.use((socket, next) => {
        run.server('/early', `refusing ${nameOf(socket)}`);
        next(refusal('Refused early'));
      });
      run.layer(early);
      early.use((_socket, next) => {
        run.server('/early', 'middleware after the refusal (never)');
        next();
      });

      // Reconnection on, at once: a client that retried would have done it before the second
      // probe's answer.
      const open = run.connection({ manager: RETRY_AT_ONCE });
      const probeSocket = open('/', 'P');
      await connected(probeSocket);
      const lateSocket = open('/late', 'L');
      const earlySocket = open('/early', 'E');
      const [lateError, earlyError] = await Promise.all([
        connectError(lateSocket),
        connectError(earlySocket),
      ]);
      run.client('L', `error fields: ${Object.keys(lateError).join(',')}`);
      run.client('E', `error fields: ${Object.keys(earlyError).join(',')}`);
      await probe(probeSocket, 1);
      await probe(probeSocket, 2);
      for (const socket of [lateSocket, earlySocket]) {
        run.client(socket === lateSocket ? 'L' : 'E', `after the probes: active=${socket.active}`);
      }
      for (const nsp of [late, early]) {
        const rooms = JSON.stringify([...nsp.adapter.rooms.keys()]);
        run.server(nsp.name, `after the probes: sockets=${nsp.sockets.size} rooms=${rooms}`);
      }
    },
    {
      client: {
        P: ['connect'],
        L: [
          'connect_error Authentication error data={"a":"b","c":3} active=false',
          'error fields: data',
          'after the probes: active=false',
        ],
        E: [
          'connect_error Refused early data={"a":"b","c":3} active=false',
          'error fields: data',
          'after the probes: active=false',
        ],
      },
      server: {
        '/': ['probe 1 from P', 'probe 2 from P'],
        '/late': ['handshake of L', 'refusing', 'after the probes: sockets=0 rooms=[]'],
        '/early': ['refusing E', 'after the probes: sockets=0 rooms=[]'],
      },
    },
  );
});
