// npx tsx bench/ip-flood.ts [plain|ip] [attempts]
//
// Server CPU per refused handshake of a stranger's flood from one address (issue 22): `plain` is
// requireAuth's ordinary refusal of a cookie whose session holds no user (one store read), `ip` the
// same flood refused by rateLimit's perIp before the read. The clients run in a child process (this
// file again), so the figure is the server's own CPU (process.cpuUsage), after 300 warm-up attempts.
// Compare runs of one machine: differences under ~15% are noise here.
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import { Passport } from 'passport';
import { Server } from 'socket.io';
import { io as ioClient } from 'socket.io-client';
import { rateLimit, requireAuth, sessionNamespace } from '../lib/index.js';

const WARM = 300;

async function server(mode: string, attempts: number): Promise<void> {
  const app = express();
  const middleware = session({ secret: 'bench', resave: false, saveUninitialized: true });
  app.use(middleware);
  app.get('/session', (_req, res) => res.end('ok'));
  const passport = new Passport();
  const http = createServer(app);
  const io = new Server(http, { transports: ['websocket'] });
  requireAuth(sessionNamespace(io.of('/chat'), middleware, { passport, app }));
  if (mode === 'ip')
    rateLimit(io, { connections: { perIp: { points: 1, durationMs: 3_600_000 } } });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}/session`);
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const child = fork(__filename, ['client', String(port), cookie, String(attempts)], {
    execArgv: ['--import', 'tsx'],
  });
  let start = process.cpuUsage();
  child.on('message', (message) => {
    if (message === 'warm') start = process.cpuUsage();
    if (message !== 'done') return;
    const { user, system } = process.cpuUsage(start);
    console.log(
      `${mode}: server CPU per refused attempt ${((user + system) / attempts).toFixed(0)} µs`,
    );
    child.kill();
    void io.close();
  });
}

async function client(port: string, cookie: string, attempts: number): Promise<void> {
  const one = (): Promise<unknown> =>
    new Promise((resolve) => {
      const socket = ioClient(`http://127.0.0.1:${port}/chat`, {
        forceNew: true,
        transports: ['websocket'],
        reconnection: false,
        extraHeaders: { cookie },
      });
      socket.on('connect_error', (err: Error & { data?: { code?: string } }) => {
        socket.close();
        resolve(err.data?.code);
      });
    });
  for (let i = 0; i < WARM; i++) await one();
  process.send?.('warm');
  for (let i = 0; i < attempts; i++) await one();
  process.send?.('done');
}

const [role = 'plain', ...rest] = process.argv.slice(2);
if (role === 'client') void client(rest[0] ?? '', rest[1] ?? '', Number(rest[2]));
else void server(role, Number(rest[0] ?? 2000));
