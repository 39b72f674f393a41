// Two copies of the demo (`npm run example` twice, on two ports) with REDIS_URL set: separate
// Node processes sharing a real redis-server for sessions and the Socket.IO adapter.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { connected, waitFor } from './support/client.js';
import { freePort, redisUnavailable, startRedis, type RedisServer } from './support/redis.js';
import { cookieOf } from './support/server.js';

const skip = redisUnavailable();

interface Copy {
  url: string;
  child: ChildProcess;
}

async function startCopy(redisUrl: string): Promise<Copy> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/passport/server.ts'], {
    env: {
      ...process.env,
      PORT: String(port),
      REDIS_URL: redisUrl,
      SESSION_SECRET: 'cluster-spec',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    output += chunk;
  });
  await waitFor(() => output.includes('Demo accounts'), 20_000, `the demo on port ${port}`);
  assert.match(output, /Sessions and Socket\.IO: Redis/);
  return { url: `http://127.0.0.1:${port}`, child };
}

async function login(copy: Copy, username: string): Promise<string> {
  const res = await fetch(`${copy.url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password: `${username}-pass` }),
    redirect: 'manual',
  });
  assert.equal(res.status, 302, `login as ${username} on ${copy.url}`);
  await res.arrayBuffer();
  return cookieOf(res);
}

describe('the demo, two copies over Redis', { skip }, () => {
  let redis: RedisServer | undefined;
  const copies: Copy[] = [];
  const clients: ClientSocket[] = [];

  before(async () => {
    redis = await startRedis();
    copies.push(...(await Promise.all([startCopy(redis.url), startCopy(redis.url)])));
  });

  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(
      copies.map(async ({ child }) => {
        if (child.exitCode !== null) return;
        child.kill('SIGTERM');
        await once(child, 'exit');
      }),
    );
    await redis?.stop();
  });

  function connect(copy: Copy, nsp: string, cookie: string): ClientSocket {
    const socket = ioClient(`${copy.url}${nsp}`, {
      forceNew: true,
      reconnection: false,
      transports: ['websocket'],
      extraHeaders: { cookie },
    });
    clients.push(socket);
    return socket;
  }

  test('log in on one, chat with a user on the other, log out on one and be cut off on the other', async () => {
    const [a, b] = copies as [Copy, Copy];
    // bob logs in on A and chats on B; alice logs in on B and chats on A.
    const bob = await login(a, 'bob');
    const alice = await login(b, 'alice');
    const bobOnB = await connected(connect(b, '/chat', bob));
    const aliceOnA = await connected(connect(a, '/chat', alice));

    const said = new Promise<{ from: string; text: string }>((resolve) => {
      aliceOnA.on('said', resolve);
    });
    const reply = (await bobOnB.timeout(5000).emitWithAck('say', { text: 'hi from B' })) as unknown;
    assert.deepEqual(reply, { ok: true });
    assert.deepEqual(
      { ...(await said), at: undefined },
      { from: 'bob', text: 'hi from B', at: undefined },
    );

    // Who's online, seen from A, lists the user connected to B.
    const online = new Promise<unknown>((resolve) => {
      aliceOnA.once('online', resolve);
    });
    connect(b, '/chat', bob);
    assert.match(JSON.stringify(await online), /"username":"bob"/);

    // bob logs out through A: his sockets on B end, with the reason first.
    const events: string[] = [];
    bobOnB.on('session:ended', (payload: { data: { code: string } }) => {
      events.push(payload.data.code);
    });
    bobOnB.on('disconnect', (reason) => {
      events.push(reason);
    });
    const out = await fetch(`${a.url}/logout`, {
      method: 'POST',
      headers: { cookie: bob },
      redirect: 'manual',
    });
    assert.equal(out.status, 303);
    await waitFor(() => events.length >= 2, 10_000, "bob's socket on B to end");
    assert.deepEqual(events, ['ERR_SESSION_REVOKED', 'io server disconnect']);
    assert.equal(aliceOnA.connected, true, 'alice is untouched');
  });
});
