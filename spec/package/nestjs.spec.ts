// docs/nestjs.md, followed as a user would, in a real NestJS 12 app built from nothing but that
// page: its `sh` blocks are the commands, run in order in a fresh folder (`npm init -y` and
// `npm pkg set` for real; `npm install` links each package it names from the repo's node_modules,
// the package itself packed and unpacked as npm would; `npx tsc` is the repo's compiler; `node …`
// starts the app), and every other block is a whole file, named by its first line
// (`// src/main.ts`). A package the page forgets to install, a file it does not show, a broken
// block: the build or the run fails here. Clients are the real socket.io-client.
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
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
import { codeBlocks } from '../support/readme.js';
import { cookieOf } from '../support/server.js';
import { expectEnded, watchEnd } from '../support/session-ending.js';

const PAGE = path.join(root, 'docs', 'nestjs.md');

/** The page's files, by the path each block's first line names, and its commands, in order. */
function readPage(): { files: Map<string, string>; commands: string[] } {
  const files = new Map<string, string>();
  const commands: string[] = [];
  for (const block of codeBlocks(readFileSync(PAGE, 'utf8'))) {
    if (block.lang === 'sh') {
      commands.push(...block.code.split('\n').filter((line) => line.trim() !== ''));
      continue;
    }
    const file = /^\/\/ ([\w.-]+(?:\/[\w.-]+)*)\n/.exec(block.code)?.[1];
    assert.ok(file, `a ${block.lang} block of docs/nestjs.md starts with its file:\n${block.code}`);
    assert.ok(!files.has(file), `docs/nestjs.md shows ${file} once`);
    files.set(file, block.code);
  }
  return { files, commands };
}

const ALICE = { id: '1', username: 'alice' };
const BOB = { id: '2', username: 'bob' };

describe('docs/nestjs.md, followed in a fresh folder: a NestJS 12 app', () => {
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
      const { files, commands } = readPage();
      assert.ok(files.has('src/main.ts'), 'docs/nestjs.md shows src/main.ts');
      work = mkdtempSync(path.join(tmpdir(), 'socket.io-session-auth-nestjs-'));
      const app = path.join(work, 'app');
      mkdirSync(path.join(app, 'node_modules'), { recursive: true });
      for (const [file, code] of files) {
        mkdirSync(path.dirname(path.join(app, file)), { recursive: true });
        writeFileSync(path.join(app, file), code);
      }
      for (const command of commands) {
        const npmInstall = /^npm install (?:--save-dev )?([^-].*)$/.exec(command);
        const start = /^SESSION_SECRET=(?:\$\([^)]*\)|\S+) node (\S+)$/.exec(command);
        if (npmInstall?.[1]) {
          await install(app, npmInstall[1].split(' '));
        } else if (/^npm (?:init -y|pkg set \w+=\w+)$/.test(command)) {
          const [, ...args] = command.split(' ');
          mustSucceed(await run('npm', args, app), command);
        } else if (command === 'npx tsc') {
          mustSucceed(await run(tsc, [], app), 'npx tsc (the NestJS app of docs/nestjs.md)');
        } else if (start?.[1]) {
          nest = await startServer(app, start[1], { SESSION_SECRET: 'nestjs-spec-secret' });
          url = nest.url;
        } else {
          assert.fail(`a command of docs/nestjs.md this spec does not know: ${command}`);
        }
      }
      assert.ok(nest, 'docs/nestjs.md starts the app');
    },
    { timeout: 180_000 },
  );

  /**
   * `npm install`, offline: each package named is the repo's installed one, linked; the package
   * itself is packed and unpacked, and its own dependencies linked beside it, as npm places them.
   */
  async function install(app: string, names: readonly string[]): Promise<void> {
    const modules = path.join(app, 'node_modules');
    for (const name of names) {
      const into = path.join(modules, name);
      if (existsSync(into)) continue;
      mkdirSync(path.dirname(into), { recursive: true });
      if (name !== 'socket.io-session-auth') {
        const installed = path.join(root, 'node_modules', name);
        assert.ok(existsSync(installed), `${name} (of docs/nestjs.md) is installed in the repo`);
        symlinkSync(installed, into, 'dir');
        continue;
      }
      mkdirSync(into);
      const tarball = await packPrivately(work);
      mustSucceed(
        await run('tar', ['-xzf', tarball, '-C', into, '--strip-components=1'], work),
        'tar',
      );
      const manifest = JSON.parse(readFileSync(path.join(into, 'package.json'), 'utf8')) as {
        dependencies?: Record<string, string>;
      };
      await install(app, Object.keys(manifest.dependencies ?? {}));
    }
  }

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
