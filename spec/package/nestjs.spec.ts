// The README's NestJS recipe in a real NestJS 12 app: its three blocks (session.ts, main.ts,
// chat.gateway.ts) are taken from README.md, next to spec/fixtures/nestjs/ (the module, and login
// and logout with @nestjs/passport and passport-local), in a fresh app folder whose node_modules
// are the repo's, with the packed package in place of the repo's own. `tsc` compiles it with
// experimentalDecorators and emitDecoratorMetadata, as Nest needs (tsx emits no decorator
// metadata), and `node dist/main.js` runs it. Clients are the real socket.io-client.
import assert from 'node:assert/strict';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { ERR_SESSION_REVOKED, ERR_UNAUTHORIZED } from 'socket.io-session-auth';
import { connected, connectError } from '../support/bounded.js';
import { request } from '../support/client.js';
import {
  mustSucceed,
  packPrivately,
  root,
  run,
  startServer,
  tsc,
  type Started,
} from '../support/npm.js';
import { codeBlocks, readmeSection } from '../support/readme.js';
import { cookieOf } from '../support/server.js';
import { expectEnded, watchEnd } from '../support/session-ending.js';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'nestjs');

/** The README's blocks, by the file name each starts with (`// main.ts`). */
const recipe = new Map(
  codeBlocks(readmeSection('### NestJS'))
    .filter((block) => block.lang === 'ts')
    .map((block) => {
      const file = /^\/\/ ([\w.]+\.ts)\b/.exec(block.code)?.[1];
      assert.ok(file, `a NestJS block starts with its file name:\n${block.code}`);
      return [file, block.code] as const;
    }),
);

const ALICE = { id: '1', username: 'alice' };
const BOB = { id: '2', username: 'bob' };

describe('the README’s NestJS recipe, in a NestJS 12 app', () => {
  let work = '';
  let nest: Started | undefined;
  let url = '';
  const sockets: ClientSocket[] = [];

  function open(cookie?: string): ClientSocket {
    const socket = ioClient(`${url}/chat`, {
      forceNew: true,
      ...(cookie !== undefined && { extraHeaders: { cookie } }),
    });
    sockets.push(socket);
    return socket;
  }

  async function login(username: string, password: string): Promise<Response> {
    return fetch(`${url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username, password }),
    });
  }

  async function loggedIn(user: { username: string }): Promise<string> {
    const res = await login(user.username, `${user.username}-pass`);
    assert.equal(res.status, 200, `login as ${user.username}`);
    assert.deepEqual(await res.json(), user === ALICE ? ALICE : BOB);
    return cookieOf(res);
  }

  before(
    async () => {
      assert.deepEqual([...recipe.keys()].sort(), ['chat.gateway.ts', 'main.ts', 'session.ts']);
      work = mkdtempSync(path.join(tmpdir(), 'socket.io-session-auth-nestjs-'));
      const app = path.join(work, 'app');
      mkdirSync(path.join(app, 'src'), { recursive: true });
      writeFileSync(
        path.join(app, 'package.json'),
        JSON.stringify({ name: 'nestjs-app', private: true, type: 'module' }, null, 2),
      );
      // The repo's installed packages (NestJS among its devDependencies), one link each, and the
      // packed package itself, unpacked as npm would.
      const modules = path.join(app, 'node_modules');
      mkdirSync(modules);
      for (const entry of readdirSync(path.join(root, 'node_modules'))) {
        if (entry.startsWith('.')) continue;
        symlinkSync(path.join(root, 'node_modules', entry), path.join(modules, entry), 'dir');
      }
      const own = path.join(modules, 'socket.io-session-auth');
      mkdirSync(own);
      const tarball = await packPrivately(work);
      mustSucceed(
        await run('tar', ['-xzf', tarball, '-C', own, '--strip-components=1'], work),
        'tar',
      );

      for (const file of ['app.module.ts', 'auth.ts']) {
        copyFileSync(path.join(FIXTURE, file), path.join(app, 'src', file));
      }
      copyFileSync(path.join(FIXTURE, 'tsconfig.json'), path.join(app, 'tsconfig.json'));
      for (const [file, code] of recipe) writeFileSync(path.join(app, 'src', file), code);
      mustSucceed(await run(tsc, ['-p', app], app), 'tsc (the NestJS app)');

      nest = await startServer(app, 'dist/main.js', { SESSION_SECRET: 'nestjs-spec-secret' });
      url = nest.url;
    },
    { timeout: 180_000 },
  );

  after(async () => {
    for (const socket of sockets) socket.disconnect();
    await nest?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('a stranger is refused with ERR_UNAUTHORIZED, and does not retry', async () => {
    const stranger = open();
    const refusal = await connectError(stranger);
    assert.equal(refusal.message, 'Unauthorized');
    assert.deepEqual(refusal.data, { code: ERR_UNAUTHORIZED, status: 401 });
    assert.equal(stranger.active, false);
    const wrong = await login('alice', 'not-the-password');
    assert.equal(wrong.status, 401, 'the controller’s guard refuses a wrong password');
    await wrong.arrayBuffer();
  });

  test('a logged-in socket gets its user from the @SubscribeMessage handler', async () => {
    const socket = await connected(open(await loggedIn(ALICE)));
    assert.deepEqual(await request(socket, 'whoami'), ALICE);
  });

  test('a logout over HTTP ends that session’s gateway socket with session:ended, and no other', async () => {
    const alice = await loggedIn(ALICE);
    const aliceSocket = await connected(open(alice));
    const bobSocket = await connected(open(await loggedIn(BOB)));
    assert.deepEqual(await request(bobSocket, 'whoami'), BOB);

    const seen = watchEnd(aliceSocket);
    const logout = await fetch(`${url}/logout`, { method: 'POST', headers: { cookie: alice } });
    assert.equal(logout.status, 204);
    await expectEnded(aliceSocket, seen, ERR_SESSION_REVOKED, 'alice’s socket');

    // Bob's session is untouched; alice's old cookie is a stranger's now.
    assert.deepEqual(await request(bobSocket, 'whoami'), BOB);
    assert.equal((await connectError(open(alice))).data?.code, ERR_UNAUTHORIZED);
  });
});
