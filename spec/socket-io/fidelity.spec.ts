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
import { ERR_UNAUTHORIZED, requireAuth, sessionNamespace } from '../../lib/index.js';
import { connected, connectError, within } from '../support/bounded.js';
import { start } from '../support/server.js';
import { Server, socketIoVersion, versions } from '../support/stack.js';
import { childrenOf } from '../../lib/socket-io/socket-io-internals.js';

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

/**
 * A scenario whose outcome the package changes on purpose: each run is asserted against what
 * Socket.IO does (stock) and what the README documents (layered).
 */
function documented(
  name: string,
  scenario: Scenario,
  expected: { stock: Outcome; layered: Outcome },
): void {
  test(name, async (tc) => {
    const stock = await runOnce(tc, 'stock', scenario);
    const layered = await runOnce(tc, 'layered', scenario);
    assert.deepStrictEqual(stock.outcome, expected.stock, `stock socket.io ${versions.socketIo}`);
    assert.deepStrictEqual(layered.outcome, expected.layered, 'layered: the documented outcome');
  });
}

// ---------------------------------------------------------------------------------------------
// Small helpers for scenarios
// ---------------------------------------------------------------------------------------------

/** The next `event` of a client socket, with its arguments; fails within 5 s. */
function clientEvent(socket: ClientSocket, event: string): Promise<unknown[]> {
  return within(
    new Promise<unknown[]>((resolve) => {
      socket.once(event, (...args: unknown[]) => {
        resolve(args);
      });
    }),
    `client event ${event}`,
  );
}

/** The next `disconnect` of a server socket, with its reason; fails within 5 s. */
function serverDisconnect(socket: ServerSocket): Promise<string> {
  return within(
    new Promise<string>((resolve) => {
      socket.once('disconnect', (reason) => {
        resolve(reason);
      });
    }),
    `server disconnect of ${nameOf(socket)}`,
  );
}

/** The connected server socket a client labelled `name`. */
function serverSocket(nsp: Namespace, name: string): ServerSocket {
  const socket = [...nsp.sockets.values()].find((s) => nameOf(s) === name);
  assert.ok(socket, `no server socket ${name} in ${nsp.name}`);
  return socket;
}

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

/** Logs the app's middleware, connect and connection listeners on `nsp`, labelled `label`. */
function hooks(run: Run, nsp: Namespace, label: string): void {
  nsp.use((socket, next) => {
    run.server(nameOf(socket), `middleware ${label} (${socket.nsp.name})`);
    next();
  });
  nsp.on('connect', (socket) => {
    run.server(nameOf(socket), `connect ${label}`);
  });
  nsp.on('connection', (socket) => {
    run.server(nameOf(socket), `connection ${label}`);
  });
}

/** The package's own rooms start with this: they are left out of every comparison of rooms. */
const PACKAGE_ROOMS = 'session-auth:';

/** A socket's rooms as the app knows them: the package's left out, its own ID as `self`. */
function roomsOf(socket: ServerSocket): string {
  return [...socket.rooms]
    .filter((room) => !room.startsWith(PACKAGE_ROOMS))
    .map((room) => (room === socket.id ? 'self' : room))
    .join(',');
}

const TENANTS = /^\/tenant-[\w-]+$/;

/** What a client socket logs when it is disconnected for `reason` and stays so. */
const ended = (reason: string): string => `disconnect: ${reason} active=false`;

/** What logDisconnects logs for a socket disconnected for `reason`. */
const serverEnded = (reason: string): string[] => [
  `disconnecting: ${reason}`,
  `disconnect: ${reason}`,
];

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

// ---------------------------------------------------------------------------------------------
// 3. Parent namespaces (regex and function) and their children
// ---------------------------------------------------------------------------------------------

type ParentKind = 'regex' | 'function';

/** A parent for /tenant-…; a function parent logs what it is asked. */
function tenantParent(run: Run, kind: ParentKind): Namespace {
  if (kind === 'regex') return run.io.of(TENANTS);
  return run.io.of((name, auth, next) => {
    run.server('parent', `asked about ${name} with auth ${JSON.stringify(auth)}`);
    next(null, TENANTS.test(name));
  });
}

/** Broadcasts through the parent and through a child, then a last `end` every client waits for. */
async function broadcastThrough(
  run: Run,
  parent: Namespace,
  clients: ClientSocket[],
): Promise<void> {
  parent.emit('hello', 1, '2', { 3: '4' });
  try {
    parent.to('members').emit('members', 'parent.to(members)');
  } catch (error) {
    // Socket.IO 4.7 builds the parent's adapter before its set of children exists.
    run.server('parent', `parent.to(members).emit threw: ${String(error)}`);
  }
  run.io.of('/tenant-acme').emit('only', 'io.of(/tenant-acme)');
  const ends = clients.map((socket) => clientEvent(socket, 'end'));
  parent.emit('end');
  await Promise.all(ends);
}

// Stock Socket.IO 4.7 builds a parent's adapter before its set of children exists: a parent cannot
// emit to a room there (it throws). The runs still compare layered with stock on 4.7.
const parentRoomsThrow = socketIoVersion === '4.7';
const membersSeen = parentRoomsThrow ? [] : ['members ["parent.to(members)"]'];
const parentThrew = parentRoomsThrow
  ? [
      "parent.to(members).emit threw: TypeError: Cannot read properties of undefined (reading 'forEach')",
    ]
  : [];
const broadcastsSeen = {
  acme: ['hello [1,"2",{"3":"4"}]', ...membersSeen, 'only ["io.of(/tenant-acme)"]', 'end []'],
  globex: ['hello [1,"2",{"3":"4"}]', ...membersSeen, 'end []'],
};

describe('fidelity: parent namespaces', () => {
  for (const kind of ['regex', 'function'] as const) {
    fidelity(
      `${kind} parent: children a client's connect creates after the layering get the parent's middleware and listeners, added before and after it`,
      async (run) => {
        const { io } = run;
        const parent = tenantParent(run, kind);
        io.on('new_namespace', (nsp) => {
          run.server('parent', `new_namespace ${nsp.name}`);
        });
        hooks(run, parent, 'added before layering');
        run.layer(parent);
        hooks(run, parent, 'added after layering');
        parent.on('connection', (socket) => {
          void socket.join('members');
        });
        const open = run.connection();
        const acme = open('/tenant-acme', 'A');
        await connected(acme);
        const globex = open('/tenant-globex', 'B');
        await connected(globex);
        const children = [...(childrenOf(parent) ?? [])];
        run.server(
          'parent',
          `children: ${children.map((child) => `${child.name} ${io.of(child.name) === child}`).join(', ')}`,
        );
        await broadcastThrough(run, parent, [acme, globex]);
      },
      {
        client: {
          A: ['connect', ...broadcastsSeen.acme],
          B: ['connect', ...broadcastsSeen.globex],
        },
        server: {
          parent: [
            ...(kind === 'function' ? ['asked about /tenant-acme with auth {"name":"A"}'] : []),
            'new_namespace /tenant-acme',
            ...(kind === 'function' ? ['asked about /tenant-globex with auth {"name":"B"}'] : []),
            'new_namespace /tenant-globex',
            'children: /tenant-acme true, /tenant-globex true',
            ...parentThrew,
          ],
          A: [
            'middleware added before layering (/tenant-acme)',
            'middleware added after layering (/tenant-acme)',
            'connect added before layering',
            'connect added after layering',
            'connection added before layering',
            'connection added after layering',
          ],
          B: [
            'middleware added before layering (/tenant-globex)',
            'middleware added after layering (/tenant-globex)',
            'connect added before layering',
            'connect added after layering',
            'connection added before layering',
            'connection added after layering',
          ],
        },
      },
    );
  }

  // A child that exists before the layering (io.of('/tenant-acme') under a regex parent, or one a
  // client's connect created) has what the parent had when it was created, as in stock Socket.IO,
  // and must be guarded like the others. Known package bug, fix in progress: such children are
  // left without the session today, so these fail until it lands.
  for (const kind of ['regex', 'function'] as const) {
    const how = kind === 'regex' ? "by io.of('/tenant-acme')" : "by a client's connect";
    fidelity(
      `${kind} parent: a child created before the layering ${how} keeps what the parent had then, and gets the session too`,
      async (run) => {
        const { io } = run;
        const parent = tenantParent(run, kind);
        hooks(run, parent, 'added to the parent before the child existed');
        const clients: ClientSocket[] = [];
        if (kind === 'regex') {
          io.of('/tenant-acme');
        } else {
          // Stays connected: it gets the broadcasts too.
          clients.push(await connected(run.connection()('/tenant-acme', 'early')));
        }
        const acmeNsp = io.of('/tenant-acme');
        run.server('parent', `/tenant-acme is a child: ${childrenOf(parent)?.has(acmeNsp)}`);
        hooks(run, acmeNsp, 'added to the child itself');
        run.layer(parent);
        hooks(run, parent, 'added to the parent after layering');
        parent.on('connection', (socket) => {
          void socket.join('members');
        });
        const open = run.connection();
        const acme = open('/tenant-acme', 'A');
        await connected(acme);
        const globex = open('/tenant-globex', 'B');
        await connected(globex);
        await broadcastThrough(run, parent, [...clients, acme, globex]);
      },
      {
        client: {
          ...(kind === 'function' && {
            early: ['connect', 'hello [1,"2",{"3":"4"}]', 'only ["io.of(/tenant-acme)"]', 'end []'],
          }),
          A: ['connect', 'hello [1,"2",{"3":"4"}]', 'only ["io.of(/tenant-acme)"]', 'end []'],
          B: ['connect', ...broadcastsSeen.globex],
        },
        server: {
          parent: [
            ...(kind === 'function'
              ? [
                  'asked about /tenant-acme with auth {"name":"early"}',
                  '/tenant-acme is a child: true',
                  'asked about /tenant-globex with auth {"name":"B"}',
                ]
              : ['/tenant-acme is a child: true']),
            ...parentThrew,
          ],
          ...(kind === 'function' && {
            early: [
              'middleware added to the parent before the child existed (/tenant-acme)',
              'connect added to the parent before the child existed',
              'connection added to the parent before the child existed',
            ],
          }),
          A: [
            'middleware added to the parent before the child existed (/tenant-acme)',
            'middleware added to the child itself (/tenant-acme)',
            'connect added to the parent before the child existed',
            'connect added to the child itself',
            'connection added to the parent before the child existed',
            'connection added to the child itself',
          ],
          B: [
            'middleware added to the parent before the child existed (/tenant-globex)',
            'middleware added to the parent after layering (/tenant-globex)',
            'connect added to the parent before the child existed',
            'connect added to the parent after layering',
            'connection added to the parent before the child existed',
            'connection added to the parent after layering',
          ],
        },
      },
    );
  }
});

// ---------------------------------------------------------------------------------------------
// 4. A name no namespace or parent matches
// ---------------------------------------------------------------------------------------------

describe('fidelity: unknown namespaces', () => {
  fidelity(
    'a name no parent matches: connect_error "Invalid namespace" with no data, no reconnect, no namespace created',
    async (run) => {
      const { io } = run;
      answerProbes(run, run.layer(io));
      run.layer(io.of(TENANTS));
      run.layer(
        io.of((name, _auth, next) => {
          run.server('parent', `function parent asked about ${name}`);
          next(null, name === '/room-1');
        }),
      );
      const open = run.connection({ manager: RETRY_AT_ONCE });
      const probeSocket = open('/', 'P');
      await connected(probeSocket);
      const elsewhere = open('/elsewhere', 'X');
      await connectError(elsewhere);
      // '/tenant-' is one character short of the pattern.
      const almost = open('/tenant-', 'Y');
      await connectError(almost);
      await probe(probeSocket, 1);
      await probe(probeSocket, 2);
      run.server('parent', `namespaces: ${[...io._nsps.keys()].join(', ')}`);
    },
    {
      client: {
        P: ['connect'],
        X: ['connect_error Invalid namespace data=undefined active=false'],
        Y: ['connect_error Invalid namespace data=undefined active=false'],
      },
      server: {
        parent: [
          'function parent asked about /elsewhere',
          'function parent asked about /tenant-',
          'namespaces: /',
        ],
        '/': ['probe 1 from P', 'probe 2 from P'],
      },
    },
  );
});

// ---------------------------------------------------------------------------------------------
// 5. Rooms
// ---------------------------------------------------------------------------------------------

describe('fidelity: rooms', () => {
  fidelity(
    `join, leave, to, except, io.to vs io.of(name).to, socket.rooms (rooms starting with ${PACKAGE_ROOMS}, the package's own, left out)`,
    async (run) => {
      const { io } = run;
      const root = run.layer(io);
      const chat = run.layer(io.of('/chat'));
      chat.use((socket, next) => {
        void socket.join('joined-in-middleware');
        next();
      });
      chat.on('connection', (socket) => {
        const { room } = socket.handshake.auth as { room: string };
        void socket.join([room, 'all']);
        run.server(nameOf(socket), `rooms at connection: ${roomsOf(socket)}`);
        socket.on('disconnecting', (reason) => {
          run.server(nameOf(socket), `disconnecting (${reason}), rooms: ${roomsOf(socket)}`);
        });
        socket.on('disconnect', () => {
          run.server(nameOf(socket), `disconnect, rooms: ${roomsOf(socket)}`);
        });
      });
      root.on('connection', (socket) => {
        void socket.join('a');
      });

      const openX = run.connection();
      const xRoot = openX('/', 'X/');
      const xChat = openX('/chat', 'Xchat', { room: 'a' });
      await Promise.all([connected(xRoot), connected(xChat)]);
      const yChat = run.connection()('/chat', 'Ychat', { room: 'b' });
      await connected(yChat);
      const x = serverSocket(chat, 'Xchat');
      const y = serverSocket(chat, 'Ychat');
      const names = new Map<string, string>();
      for (const socket of [...chat.sockets.values(), ...root.sockets.values()]) {
        names.set(socket.id, nameOf(socket));
      }
      const labels = (ids: Iterable<string>): string =>
        [...ids]
          .filter((room) => !room.startsWith(PACKAGE_ROOMS))
          .map((room) => names.get(room) ?? room)
          .sort()
          .join(',');

      chat.to('a').emit('ev', 'chat.to(a)');
      io.to('a').emit('ev', 'io.to(a)');
      io.of('/chat').to(['a', 'b']).emit('ev', "io.of('/chat').to([a, b])");
      chat.except('a').emit('ev', 'chat.except(a)');
      chat.to('all').except('b').emit('ev', 'chat.to(all).except(b)');
      chat.except(y.id).emit('ev', 'chat.except(Ychat.id)');
      x.to('all').emit('ev', 'Xchat.to(all)');
      chat.to('joined-in-middleware').emit('ev', 'chat.to(joined-in-middleware)');
      void x.leave('a');
      chat.to('a').emit('ev', 'chat.to(a) after Xchat left a');
      io.in('b').emit('ev', 'io.in(b)');
      const ends = [xRoot, xChat, yChat].map((socket) => clientEvent(socket, 'end'));
      chat.emit('end');
      io.emit('end');
      await Promise.all(ends);

      const queries = (entry: string): void => {
        run.server('queries', entry);
      };
      queries(`Xchat.rooms: ${roomsOf(x)}; Ychat.rooms: ${roomsOf(y)}`);
      const fetch = async (op: { fetchSockets(): Promise<{ id: string }[]> }): Promise<string> =>
        labels((await op.fetchSockets()).map((socket) => socket.id));
      queries(`chat.in(all): ${await fetch(chat.in('all'))}`);
      queries(`io.in(a): ${await fetch(io.in('a'))}`);
      queries(`io.of(/chat).in(a): ${await fetch(io.of('/chat').in('a'))}`);
      const fetched = await chat.fetchSockets();
      queries(
        `chat.fetchSockets: ${fetched
          .map((s) => `${nameOf(s)} in ${labels(s.rooms)}`)
          .sort()
          .join('; ')}`,
      );
      queries(`chat rooms: ${labels(chat.adapter.rooms.keys())}`);

      const gone = serverDisconnect(x);
      xChat.disconnect();
      await gone;
      queries(`chat rooms after Xchat left: ${labels(chat.adapter.rooms.keys())}`);
    },
    {
      client: {
        'X/': ['connect', 'ev ["io.to(a)"]', 'end []'],
        Xchat: [
          'connect',
          'ev ["chat.to(a)"]',
          `ev ["io.of('/chat').to([a, b])"]`,
          'ev ["chat.to(all).except(b)"]',
          'ev ["chat.except(Ychat.id)"]',
          'ev ["chat.to(joined-in-middleware)"]',
          'end []',
          ended('io client disconnect'),
        ],
        Ychat: [
          'connect',
          `ev ["io.of('/chat').to([a, b])"]`,
          'ev ["chat.except(a)"]',
          'ev ["Xchat.to(all)"]',
          'ev ["chat.to(joined-in-middleware)"]',
          'end []',
        ],
      },
      server: {
        Xchat: [
          'rooms at connection: joined-in-middleware,self,a,all',
          'disconnecting (client namespace disconnect), rooms: joined-in-middleware,self,all',
          'disconnect, rooms: ',
        ],
        Ychat: ['rooms at connection: joined-in-middleware,self,b,all'],
        queries: [
          'Xchat.rooms: joined-in-middleware,self,all; Ychat.rooms: joined-in-middleware,self,b,all',
          'chat.in(all): Xchat,Ychat',
          'io.in(a): X/',
          'io.of(/chat).in(a): ',
          'chat.fetchSockets: Xchat in Xchat,all,joined-in-middleware; Ychat in Ychat,all,b,joined-in-middleware',
          'chat rooms: Xchat,Ychat,all,b,joined-in-middleware',
          'chat rooms after Xchat left: Ychat,all,b,joined-in-middleware',
        ],
      },
    },
  );
});

// ---------------------------------------------------------------------------------------------
// 6. Disconnections and their reasons
// ---------------------------------------------------------------------------------------------

/** Logs each socket's disconnecting and disconnect reasons on the server. */
function logDisconnects(run: Run, nsp: Namespace): Namespace {
  nsp.on('connection', (socket) => {
    socket.on('disconnecting', (reason) => {
      run.server(nameOf(socket), `disconnecting: ${reason}`);
    });
    socket.on('disconnect', (reason) => {
      run.server(nameOf(socket), `disconnect: ${reason}`);
    });
  });
  return nsp;
}

/** '/' (answering probes) and '/chat', both logging their disconnections. */
function rootAndChat(run: Run): { root: Namespace; chat: Namespace } {
  const root = logDisconnects(run, run.layer(run.io));
  answerProbes(run, root);
  const chat = logDisconnects(run, run.layer(run.io.of('/chat')));
  return { root, chat };
}

/** One connection with '/' and '/chat' open, both connected. */
async function openBoth(
  run: Run,
  prefix: string,
  options?: ConnectionOptions,
): Promise<{ root: ClientSocket; chat: ClientSocket }> {
  const open = run.connection(options);
  const root = open('/', `${prefix}/`);
  const chat = open('/chat', `${prefix}chat`);
  await Promise.all([connected(root), connected(chat)]);
  return { root, chat };
}

describe('fidelity: disconnections', () => {
  fidelity(
    "server socket.disconnect(): that namespace only, 'server namespace disconnect' / 'io server disconnect'",
    async (run) => {
      const { chat } = rootAndChat(run);
      const client = await openBoth(run, 'X');
      const server = serverSocket(chat, 'Xchat');
      const seen = [clientEvent(client.chat, 'disconnect'), serverDisconnect(server)];
      server.disconnect();
      await Promise.all(seen);
      await probe(client.root, 1);
      run.client('X/', `connected=${client.root.connected}`);
    },
    {
      client: {
        'X/': ['connect', 'connected=true'],
        Xchat: ['connect', ended('io server disconnect')],
      },
      server: {
        Xchat: serverEnded('server namespace disconnect'),
        '/': ['probe 1 from X/'],
      },
    },
  );

  fidelity(
    "server socket.disconnect(true): every namespace of that client ends with 'io server disconnect' (each is sent a DISCONNECT before the close), none comes back",
    async (run) => {
      const { root, chat } = rootAndChat(run);
      const client = await openBoth(run, 'X', { manager: RETRY_AT_ONCE });
      const other = await openBoth(run, 'Y');
      const seen = [
        clientEvent(client.root, 'disconnect'),
        clientEvent(client.chat, 'disconnect'),
        serverDisconnect(serverSocket(root, 'X/')),
        serverDisconnect(serverSocket(chat, 'Xchat')),
      ];
      serverSocket(chat, 'Xchat').disconnect(true);
      await Promise.all(seen);
      await probe(other.root, 1);
      await probe(other.root, 2);
      run.server('/', `sockets: ${[...root.sockets.values()].map(nameOf).join(',')}`);
    },
    {
      client: {
        'X/': ['connect', ended('io server disconnect')],
        Xchat: ['connect', ended('io server disconnect')],
        'Y/': ['connect'],
        Ychat: ['connect'],
      },
      server: {
        'X/': serverEnded('server namespace disconnect'),
        Xchat: serverEnded('server namespace disconnect'),
        '/': ['probe 1 from Y/', 'probe 2 from Y/', 'sockets: Y/'],
      },
    },
  );

  fidelity(
    "client socket.disconnect(): 'client namespace disconnect' / 'io client disconnect'; the last one closes the connection",
    async (run) => {
      const { root, chat } = rootAndChat(run);
      const client = await openBoth(run, 'X');
      const first = [
        clientEvent(client.chat, 'disconnect'),
        serverDisconnect(serverSocket(chat, 'Xchat')),
      ];
      client.chat.disconnect();
      await Promise.all(first);
      await probe(client.root, 1);
      const conn = serverSocket(root, 'X/').conn;
      const closed = within(
        new Promise<string>((resolve) => {
          conn.once('close', (reason: string) => {
            resolve(reason);
          });
        }),
        'the connection to close',
      );
      const last = [
        clientEvent(client.root, 'disconnect'),
        serverDisconnect(serverSocket(root, 'X/')),
      ];
      client.root.disconnect();
      await Promise.all(last);
      run.server('/', `connection closed: ${await closed}`);
    },
    {
      client: {
        'X/': ['connect', ended('io client disconnect')],
        Xchat: ['connect', ended('io client disconnect')],
      },
      server: {
        Xchat: serverEnded('client namespace disconnect'),
        '/': ['probe 1 from X/', 'connection closed: transport close'],
        'X/': serverEnded('client namespace disconnect'),
      },
    },
  );

  fidelity(
    "the connection drops (socket.conn.close()): every namespace sees 'transport close', and reconnects on its own",
    async (run) => {
      const { root } = rootAndChat(run);
      // WebSocket only: engine.io closes a long-polling connection only at the client's next poll
      // (or after closeTimeout, 30 s), which would keep this process alive long after the test.
      const client = await openBoth(run, 'X', {
        manager: { ...RETRY_AT_ONCE, transports: ['websocket'] },
      });
      const back = [client.root, client.chat].map(async (socket) => {
        await clientEvent(socket, 'disconnect');
        await clientEvent(socket, 'connect');
      });
      serverSocket(root, 'X/').conn.close();
      await Promise.all(back);
      await probe(client.root, 1);
    },
    {
      client: {
        'X/': ['connect', 'disconnect: transport close active=true', 'connect'],
        Xchat: ['connect', 'disconnect: transport close active=true', 'connect'],
      },
      server: {
        'X/': serverEnded('forced close'),
        Xchat: serverEnded('forced close'),
        '/': ['probe 1 from X/'],
      },
    },
  );

  for (const close of [false, true]) {
    fidelity(
      `nsp.disconnectSockets(${close}): every socket of the namespace${close ? ', and their connections' : ' only'}`,
      async (run) => {
        const { root, chat } = rootAndChat(run);
        const x = await openBoth(run, 'X');
        const y = await openBoth(run, 'Y');
        const seen = [
          clientEvent(x.chat, 'disconnect'),
          clientEvent(y.chat, 'disconnect'),
          serverDisconnect(serverSocket(chat, 'Xchat')),
          serverDisconnect(serverSocket(chat, 'Ychat')),
          ...(close
            ? [
                clientEvent(x.root, 'disconnect'),
                clientEvent(y.root, 'disconnect'),
                serverDisconnect(serverSocket(root, 'X/')),
                serverDisconnect(serverSocket(root, 'Y/')),
              ]
            : []),
        ];
        chat.disconnectSockets(close);
        await Promise.all(seen);
        if (!close) {
          await probe(x.root, 1);
          await probe(y.root, 2);
        }
        run.server('/', `sockets: ${[...root.sockets.values()].map(nameOf).sort().join(',')}`);
      },
      {
        client: {
          'X/': ['connect', ...(close ? [ended('io server disconnect')] : [])],
          Xchat: ['connect', ended('io server disconnect')],
          'Y/': ['connect', ...(close ? [ended('io server disconnect')] : [])],
          Ychat: ['connect', ended('io server disconnect')],
        },
        server: {
          ...(close && {
            'X/': serverEnded('server namespace disconnect'),
            'Y/': serverEnded('server namespace disconnect'),
          }),
          Xchat: serverEnded('server namespace disconnect'),
          Ychat: serverEnded('server namespace disconnect'),
          '/': close ? ['sockets: '] : ['probe 1 from X/', 'probe 2 from Y/', 'sockets: X/,Y/'],
        },
      },
    );
  }

  fidelity(
    "io.close(): every socket of every namespace ends ('server shutting down'; on 4.6, '/' only)",
    async (run) => {
      const { root, chat } = rootAndChat(run);
      const x = await openBoth(run, 'X');
      const seen = [
        clientEvent(x.chat, 'disconnect'),
        clientEvent(x.root, 'disconnect'),
        serverDisconnect(serverSocket(chat, 'Xchat')),
        serverDisconnect(serverSocket(root, 'X/')),
      ];
      await run.io.close();
      await Promise.all(seen);
    },
    {
      client: {
        'X/': ['connect', 'disconnect: transport close active=true'],
        Xchat: ['connect', 'disconnect: transport close active=true'],
      },
      server: {
        'X/': serverEnded('server shutting down'),
        // Socket.IO 4.6 shuts down the sockets of '/' only; the others see the engine close.
        Xchat: serverEnded(socketIoVersion === '4.6' ? 'forced close' : 'server shutting down'),
      },
    },
  );
});

// ---------------------------------------------------------------------------------------------
// 7. io.of() identity
// ---------------------------------------------------------------------------------------------

describe('fidelity: io.of()', () => {
  fidelity(
    "io.of('/x') twice is one namespace, io.of('x') too; io.of('/') and io.of('') are io.sockets",
    async (run) => {
      const { io } = run;
      const log = (entry: string): void => {
        run.server('of', entry);
      };
      const x = io.of('/x');
      const layered = run.layer(x);
      const root = run.layer(io);
      log(`layer(io.of('/x')) returns it: ${layered === x}`);
      log(`io.of('/x') again: ${io.of('/x') === x}; io.of('x'): ${io.of('x') === x}`);
      log(`layer(io) returns io.sockets: ${root === io.sockets}`);
      log(`io.of('/'): ${io.of('/') === io.sockets}; io.of(''): ${io.of('') === io.sockets}`);
      const parent = io.of(TENANTS);
      run.layer(parent);
      const child = io.of('/tenant-acme');
      log(
        `io.of('/tenant-acme') twice: ${io.of('/tenant-acme') === child}, a child: ${childrenOf(parent)?.has(child)}`,
      );
      log(`namespaces: ${[...io._nsps.keys()].join(', ')}`);
      io.of('/x', (socket) => {
        run.server(nameOf(socket), "io.of('/x', fn) listener");
      });
      io.of('x').on('connection', (socket) => {
        run.server(nameOf(socket), `io.of('x') connection listener, nsp ${socket.nsp.name}`);
      });
      io.on('connection', (socket) => {
        run.server(nameOf(socket), `io.on(connection), nsp ${socket.nsp.name}`);
      });
      io.sockets.on('connect', (socket) => {
        run.server(nameOf(socket), `io.sockets.on(connect), nsp ${socket.nsp.name}`);
      });
      const open = run.connection();
      await Promise.all([connected(open('/x', 'X')), connected(open('/', 'R'))]);
    },
    {
      client: { X: ['connect'], R: ['connect'] },
      server: {
        of: [
          "layer(io.of('/x')) returns it: true",
          "io.of('/x') again: true; io.of('x'): true",
          'layer(io) returns io.sockets: true',
          "io.of('/'): true; io.of(''): true",
          "io.of('/tenant-acme') twice: true, a child: true",
          'namespaces: /, /x, /tenant-acme',
        ],
        X: ["io.of('/x', fn) listener", "io.of('x') connection listener, nsp /x"],
        R: ['io.sockets.on(connect), nsp /', 'io.on(connection), nsp /'],
      },
    },
  );
});

// ---------------------------------------------------------------------------------------------
// 8. connect/connection, socket.handshake, socket.data, multiplexing
// ---------------------------------------------------------------------------------------------

/** A request URL without the polling cache-buster `t`, which differs from run to run. */
function stableUrl(url: string): string {
  const search = new URL(url, 'http://localhost').searchParams;
  search.delete('t');
  return `${url.split('?')[0] ?? ''}?${search.toString()}`;
}

/** What an app reads of socket.handshake; `t` and the times left out. */
function handshakeOf(socket: ServerSocket, cookie: string): string {
  const { auth, query, headers, url, xdomain, secure, address, issued, time } = socket.handshake;
  const { t: _t, ...stableQuery } = query as Record<string, unknown>;
  return JSON.stringify({
    auth,
    query: stableQuery,
    url: stableUrl(url),
    xApp: headers['x-app'],
    cookieAsSent: headers.cookie === cookie,
    xdomain,
    secure,
    address,
    issued: typeof issued,
    time: typeof time,
  });
}

/** What an app reads of socket.request (the package gives each socket its own). */
function requestOf(socket: ServerSocket): string {
  const { method, url, headers, socket: tcp } = socket.request;
  return JSON.stringify({
    method,
    url: stableUrl(url ?? ''),
    xApp: headers['x-app'],
    remoteAddress: tcp.remoteAddress,
  });
}

describe('fidelity: connect, handshake and data', () => {
  fidelity(
    'several namespaces multiplexed on one connection: connect/connection, handshake (auth, query, headers), socket.request, socket.data from middleware (the package adds data.user, left out)',
    async (run) => {
      const { io } = run;
      const conns = new Map<object, string>();
      const connOf = (socket: ServerSocket): string => {
        if (!conns.has(socket.conn)) conns.set(socket.conn, `conn-${conns.size + 1}`);
        return conns.get(socket.conn) ?? '?';
      };
      for (const name of ['/', '/chat', '/news']) {
        const nsp = io.of(name);
        nsp.use((socket, next) => {
          Object.assign(socket.data as object, { before: `set before layering in ${name}` });
          next();
        });
        run.layer(nsp);
        nsp.use((socket, next) => {
          Object.assign(socket.data as object, { after: `set after layering in ${name}` });
          next();
        });
        let connectSocket: ServerSocket | undefined;
        nsp.on('connect', (socket) => {
          connectSocket = socket;
        });
        nsp.on('connection', (socket) => {
          const { user: _user, ...data } = socket.data as Record<string, unknown>;
          const log = (entry: string): void => {
            run.server(nameOf(socket), entry);
          };
          log(
            `connection on ${socket.nsp.name}, same socket as connect: ${connectSocket === socket}`,
          );
          log(`handshake: ${handshakeOf(socket, run.cookie)}`);
          log(`request: ${requestOf(socket)}`);
          log(`data: ${JSON.stringify(data)}`);
          log(`connected=${socket.connected} recovered=${socket.recovered} on ${connOf(socket)}`);
          log(
            `id is not the connection's: ${socket.id !== (socket.conn as unknown as { id: string }).id}`,
          );
          socket.on('whoami', (ack: (id: string) => void) => {
            ack(socket.id);
          });
        });
      }
      const manager = run.connection({
        manager: { extraHeaders: { cookie: run.cookie, 'x-app': 'fidelity' }, query: { q: 'one' } },
      });
      const sockets = [
        manager('/', 'R', { token: 'r' }),
        manager('/chat', 'C', { token: 'c' }),
        manager('/news', 'N', { token: 'n' }),
      ];
      await Promise.all(sockets.map((socket) => connected(socket)));
      for (const socket of sockets) {
        const id: unknown = await socket.timeout(5000).emitWithAck('whoami');
        const { name } = socket.auth as { name: string };
        run.client(name, `server id is mine: ${id === socket.id}`);
      }
      const ids = new Set(sockets.map((socket) => socket.id));
      run.client('all', `distinct ids: ${ids.size}`);
    },
    {
      client: {
        R: ['connect', 'server id is mine: true'],
        C: ['connect', 'server id is mine: true'],
        N: ['connect', 'server id is mine: true'],
        all: ['distinct ids: 3'],
      },
      server: Object.fromEntries(
        [
          ['R', '/', 'r'],
          ['C', '/chat', 'c'],
          ['N', '/news', 'n'],
        ].map(([name = '', nsp = '', token = '']) => [
          name,
          [
            `connection on ${nsp}, same socket as connect: true`,
            `handshake: ${JSON.stringify({
              auth: { name, token },
              query: { q: 'one', EIO: '4', transport: 'polling' },
              url: '/socket.io/?q=one&EIO=4&transport=polling',
              xApp: 'fidelity',
              cookieAsSent: true,
              xdomain: false,
              secure: false,
              address: '127.0.0.1',
              issued: 'number',
              time: 'string',
            })}`,
            `request: ${JSON.stringify({
              method: 'GET',
              url: '/socket.io/?q=one&EIO=4&transport=polling',
              xApp: 'fidelity',
              remoteAddress: '127.0.0.1',
            })}`,
            `data: ${JSON.stringify({ before: `set before layering in ${nsp}`, after: `set after layering in ${nsp}` })}`,
            'connected=true recovered=false on conn-1',
            "id is not the connection's: true",
          ],
        ]),
      ),
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Outcomes the package changes on purpose
// ---------------------------------------------------------------------------------------------

const UNAUTHORIZED_SEEN = `connect_error Unauthorized data=${JSON.stringify({ code: ERR_UNAUTHORIZED, status: 401 })} active=false`;

/** Waits for the socket's first answer, a connect or a connect_error. */
function answered(socket: ClientSocket): Promise<void> {
  return within(
    new Promise<void>((resolve) => {
      socket.once('connect', () => {
        resolve();
      });
      socket.once('connect_error', () => {
        resolve();
      });
    }),
    'an answer to the handshake',
  );
}

describe('documented changes: strangers are refused', () => {
  documented(
    'a stranger (no cookie) on a requireAuth namespace: stock connects; layered, refused with ERR_UNAUTHORIZED 401, and it does not retry',
    async (run) => {
      const { io } = run;
      const guarded = io.of('/private');
      guarded.use((socket, next) => {
        run.server('/private', `handshake of ${nameOf(socket)}`);
        next();
      });
      run.layer(guarded);
      guarded.on('connection', (socket) => {
        const user = socket.request.user?.username ?? 'none';
        run.server('/private', `connection of ${nameOf(socket)}, user ${user}`);
      });
      answerProbes(run, run.layer(io));
      const stranger = run.connection({ anonymous: true, manager: RETRY_AT_ONCE })('/private', 'S');
      await answered(stranger);
      // Two round trips of a later client: a stranger that retried at once would have been seen.
      const member = run.connection()('/', 'M');
      await connected(member);
      await probe(member, 1);
      await probe(member, 2);
      run.client('S', `after the probes: active=${stranger.active}`);
      run.server('/private', `connected sockets: ${guarded.sockets.size}`);
    },
    {
      stock: {
        client: { S: ['connect', 'after the probes: active=true'], M: ['connect'] },
        server: {
          '/private': ['handshake of S', 'connection of S, user none', 'connected sockets: 1'],
          '/': ['probe 1 from M', 'probe 2 from M'],
        },
      },
      layered: {
        client: { S: [UNAUTHORIZED_SEEN, 'after the probes: active=false'], M: ['connect'] },
        server: {
          '/private': ['handshake of S', 'connected sockets: 0'],
          '/': ['probe 1 from M', 'probe 2 from M'],
        },
      },
    },
  );

  // Known package bug, fix in progress: a child that existed before the layering is left without
  // the session and without the guard today, so these fail until the fix lands.
  for (const kind of ['regex', 'function'] as const) {
    const how = kind === 'regex' ? "by io.of('/tenant-acme')" : "by a client's connect";
    documented(
      `${kind} parent, a child created before the layering ${how}: guarded like the others (a stranger refused with ERR_UNAUTHORIZED, a member sees socket.request.user)`,
      async (run) => {
        const { io } = run;
        const parent = tenantParent(run, kind);
        if (kind === 'regex') {
          io.of('/tenant-acme');
        } else {
          await connected(run.connection()('/tenant-acme', 'early'));
        }
        run.layer(parent);
        io.of('/tenant-acme').on('connection', (socket) => {
          const user = socket.request.user?.username ?? 'none';
          run.server(nameOf(socket), `connection on ${socket.nsp.name}, user ${user}`);
        });
        const stranger = run.connection({ anonymous: true })('/tenant-acme', 'S');
        await answered(stranger);
        await connected(run.connection()('/tenant-acme', 'A'));
      },
      {
        stock: {
          client: {
            ...(kind === 'function' && { early: ['connect'] }),
            S: ['connect'],
            A: ['connect'],
          },
          server: {
            ...(kind === 'function' && {
              parent: ['asked about /tenant-acme with auth {"name":"early"}'],
            }),
            S: ['connection on /tenant-acme, user none'],
            A: ['connection on /tenant-acme, user none'],
          },
        },
        layered: {
          client: {
            ...(kind === 'function' && { early: ['connect'] }),
            S: [UNAUTHORIZED_SEEN],
            A: ['connect'],
          },
          server: {
            ...(kind === 'function' && {
              parent: ['asked about /tenant-acme with auth {"name":"early"}'],
            }),
            A: ['connection on /tenant-acme, user alice'],
          },
        },
      },
    );
  }
});
