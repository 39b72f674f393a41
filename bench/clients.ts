// The client child: every socket.io-client of the bench lives in this one process, so that the
// servers' CPU figures count server work only.
//
// Run by bench/run.ts as: node --import tsx --no-memory-reducer bench/clients.ts
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { io, Manager, type Socket } from 'socket.io-client';
import { serve } from './ipc.js';
import { limitsClientHandlers } from './limits-child.js';
import { presenceHandlers } from './presence-clients.js';
import { storeEventsClientHandlers } from './store-events-clients.js';
import { ECHO_EVENT, USER, userName, type ClientCommands } from './variants.js';

interface ConnectError extends Error {
  data?: { code?: string };
}

/** Resolves when the socket connects; rejects with its connect_error. */
function connected(socket: Socket, name = 'socket'): Promise<void> {
  return new Promise((resolve, reject) => {
    const onConnect = (): void => {
      socket.off('connect_error', onError);
      resolve();
    };
    const onError = (err: ConnectError): void => {
      socket.off('connect', onConnect);
      reject(new Error(`${name}: connect_error ${err.message} ${err.data?.code ?? ''}`));
    };
    socket.once('connect', onConnect);
    socket.once('connect_error', onError);
  });
}

/** `promise`, or a rejection after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what}: no answer within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `task` `count` times, `concurrency` at a time. */
async function pool(count: number, concurrency: number, task: () => Promise<void>): Promise<void> {
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < count) {
      started++;
      await task();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

const headers = (cookie: string | undefined): Record<string, string> | undefined =>
  cookie === undefined ? undefined : { cookie };

async function login(base: string, username: string = USER.username): Promise<string> {
  const res = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password: USER.password }),
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`login at ${base}: HTTP ${res.status}`);
  return res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0] ?? '')
    .join('; ');
}

const groups = new Map<number, Socket[]>();
let nextGroup = 0;

function closeAll(sockets: Iterable<Socket>): void {
  for (const socket of sockets) socket.disconnect();
}

serve<ClientCommands>(
  {
    ...limitsClientHandlers((group) => groups.get(group)),
    ...storeEventsClientHandlers((group) => groups.get(group)),
    async login({ base, count, concurrency, from }) {
      const cookies: string[] = [];
      let next = 0;
      await pool(count, concurrency, async () => {
        if (from === undefined) cookies.push(await login(base));
        else {
          const i = next++;
          cookies[i] = await login(base, userName(from + i));
        }
      });
      return cookies;
    },

    async probe({ url, cookie }) {
      const socket = io(url, {
        forceNew: true,
        reconnection: false,
        extraHeaders: headers(cookie),
      });
      try {
        await within(connected(socket), 5000, `probe ${url}`);
        return 'connected';
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      } finally {
        socket.disconnect();
      }
    },

    async handshakes({ url, cookie, cookies, token, transports, namespaces, count, concurrency }) {
      const started = performance.now();
      let next = 0;
      await pool(count, concurrency, async () => {
        const manager = new Manager(url, {
          reconnection: false,
          transports,
          extraHeaders: headers(cookies ? cookies[next++ % cookies.length] : cookie),
        });
        const sockets = namespaces.map((name) =>
          manager.socket(name, token === undefined ? {} : { auth: { token } }),
        );
        try {
          await Promise.all(
            sockets.map((socket) => {
              const done = connected(socket);
              socket.connect();
              return done;
            }),
          );
        } finally {
          // The manager closes the connection once its last namespace has left.
          closeAll(sockets);
        }
      });
      return { ms: performance.now() - started };
    },

    async refused({ urls, clients, durationMs }) {
      const all: Socket[] = [];
      const errors = urls.map(() => 0);
      let unexpected: string | undefined;
      urls.forEach((url, i) => {
        for (let c = 0; c < clients; c++) {
          // Default reconnection, default transports: what a browser tab does.
          const socket = io(url, { forceNew: true });
          socket.on('connect_error', () => {
            errors[i] = (errors[i] ?? 0) + 1;
          });
          socket.on('connect', () => {
            unexpected = `an unauthenticated client connected to ${url}`;
          });
          all.push(socket);
        }
      });
      await sleep(durationMs);
      closeAll(all);
      if (unexpected) throw new Error(unexpected);
      return { connectErrors: errors };
    },

    async open({ url, nsp, cookies, count, concurrency }) {
      const sockets: Socket[] = [];
      const group = nextGroup++;
      groups.set(group, sockets);
      await pool(count, concurrency, async () => {
        const socket = io(`${url}${nsp}`, {
          forceNew: true,
          reconnection: false,
          transports: ['websocket'],
          extraHeaders: headers(cookies[sockets.length % cookies.length]),
        });
        sockets.push(socket);
        await connected(socket);
      });
      return group;
    },

    async acks({ group, count, inflight }) {
      const socket = groups.get(group)?.[0];
      if (!socket) throw new Error(`no socket in group ${group}`);
      const started = performance.now();
      const answered = new Promise<void>((resolve, reject) => {
        let sent = 0;
        let answered = 0;
        const send = (): void => {
          const value = sent++;
          socket.emit(ECHO_EVENT, value, (reply: unknown) => {
            if (reply !== value) {
              reject(new Error(`echo ${value} answered ${JSON.stringify(reply)}`));
              return;
            }
            answered++;
            if (sent < count) send();
            else if (answered === count) resolve();
          });
        };
        for (let i = 0; i < Math.min(inflight, count); i++) send();
      });
      await within(answered, 120_000, `${count} acks`);
      return { ms: performance.now() - started };
    },

    close({ group }) {
      closeAll(groups.get(group) ?? []);
      groups.delete(group);
      return null;
    },

    async latency({ httpBase, socketBase, nsp, samples, action }) {
      const afterResponse: number[] = [];
      const afterRequest: number[] = [];
      for (let i = 0; i < samples; i++) {
        const cookie = await login(httpBase);
        const socket = io(`${socketBase}${nsp}`, {
          forceNew: true,
          reconnection: false,
          transports: ['websocket'],
          extraHeaders: { cookie },
        });
        try {
          await connected(socket);
          let disconnectedAt = 0;
          const disconnected = new Promise<void>((resolve) => {
            socket.once('disconnect', () => {
              disconnectedAt = performance.now();
              resolve();
            });
          });
          const sentAt = performance.now();
          const res = await fetch(`${httpBase}/${action}`, { method: 'POST', headers: { cookie } });
          const respondedAt = performance.now();
          await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`${action}: HTTP ${res.status}`);
          await within(disconnected, 5000, `disconnect after ${action}`);
          afterResponse.push(disconnectedAt - respondedAt);
          afterRequest.push(disconnectedAt - sentAt);
        } finally {
          socket.disconnect();
        }
      }
      return { afterResponse, afterRequest };
    },

    ...presenceHandlers(groups, connected),
  },
  { pid: process.pid },
);
