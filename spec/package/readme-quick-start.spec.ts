// The README's Quick start, followed literally. Its code blocks are taken from README.md (never
// copied here) into a fresh project in a temp directory: the two `npm install` lines run as
// written (the packed package in place of its name, the rest the newest the npm registry has),
// the server runs as `server.mjs`, as CommonJS (each import line written as a require()) and as
// `server.ts` built with the README's commands (`tsc --init` settings, strict), each against the
// real socket.io-client; the page's code runs in Chromium. Nothing is mocked.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { ERR_SESSION_REVOKED, ERR_UNAUTHORIZED } from 'socket.io-session-auth';
import { connected, connectError, within } from '../support/bounded.js';
import { describeInChromium, launchChromium } from '../support/chromium.js';
import { mustSucceed, packPrivately, run, startServer, type Started } from '../support/npm.js';
import { codeBlocks, readmeSection, theBlock, type CodeBlock } from '../support/readme.js';
import { cookieOf } from '../support/server.js';
import { expectEnded, watchEnd } from '../support/session-ending.js';

const blocks = codeBlocks(readmeSection('## Quick start'));
const installLines = theBlock(blocks, 'the npm install lines', (b) =>
  b.code.startsWith('npm install '),
);
const server = theBlock(blocks, 'the server', (b) =>
  b.code.includes("from 'socket.io-session-auth'"),
);
const declaration = theBlock(blocks, 'the declaration of Express.User', (b) =>
  b.code.startsWith('declare global'),
);
const runLines = theBlock(blocks, 'how to run it', (b) => b.code.includes('SESSION_SECRET='));
const pageCode = theBlock(blocks, "the page's code", (b) => b.code.includes("io('/chat')"));

/** The commands of a `sh` block: one per line or per `&&`, comments and blank lines left out. */
function commands(block: CodeBlock): string[] {
  assert.equal(block.lang, 'sh');
  return block.code
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .flatMap((line) => line.split(' && '))
    .map((command) => command.trim());
}

const words = (command: string): string[] => command.split(/\s+/);

/** Each `import … from '…';` line written as the `require()` a CommonJS file has instead. */
function importsToRequires(code: string): string {
  const converted = code.replace(
    /^import (.+) from '([^']+)';$/gm,
    (_line, names: string, from: string) =>
      `const ${names.startsWith('{') ? names.replaceAll(' as ', ': ') : names} = require('${from}');`,
  );
  assert.doesNotMatch(converted, /^import /m, 'every import line has become a require()');
  return converted;
}

const USER = { id: '1', username: 'alice' };
const PASSWORD = 'alice-pass';
const SECRET = 'quick-start-spec-secret';

function postLogin(url: string, password: string): Promise<Response> {
  return fetch(`${url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: USER.username, password }),
  });
}

/** What the Quick start promises, through its own HTTP routes and the real socket.io-client. */
async function exercise(url: string): Promise<void> {
  const sockets: ClientSocket[] = [];
  const open = (cookie?: string): ClientSocket => {
    const socket = ioClient(`${url}/chat`, {
      forceNew: true,
      ...(cookie !== undefined && { extraHeaders: { cookie } }),
    });
    sockets.push(socket);
    return socket;
  };
  try {
    // A stranger is refused with the code, and does not retry.
    const stranger = open();
    assert.deepEqual((await connectError(stranger)).data, { code: ERR_UNAUTHORIZED, status: 401 });
    assert.equal(stranger.active, false, 'no reconnection');

    const wrong = await postLogin(url, 'not-the-password');
    assert.equal(wrong.status, 401, 'passport-local refuses a wrong password');
    await wrong.arrayBuffer();

    const res = await postLogin(url, PASSWORD);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), USER);
    const cookie = cookieOf(res);

    // The socket sees the session's user: `said` carries the name the server read from it.
    const socket = open(cookie);
    await connected(socket);
    const said = new Promise<unknown[]>((resolve) => {
      socket.once('said', (...args: unknown[]) => {
        resolve(args);
      });
    });
    socket.emit('say', 'hello from the spec');
    assert.deepEqual(await within(said, 'said'), [USER.username, 'hello from the spec']);

    // A logout over HTTP ends the socket: `session:ended`, then the server's disconnect.
    const seen = watchEnd(socket);
    const logout = await fetch(`${url}/logout`, { method: 'POST', headers: { cookie } });
    assert.equal(logout.status, 204);
    await expectEnded(socket, seen, ERR_SESSION_REVOKED, 'the socket');

    // The old cookie is a stranger's now.
    assert.equal((await connectError(open(cookie))).data?.code, ERR_UNAUTHORIZED);
  } finally {
    for (const socket of sockets) socket.disconnect();
  }
}

describe("the README's Quick start, followed literally", () => {
  let work = '';
  let project = '';
  /** `node <file>` as the README runs it, per build: `server.mjs`, and `server.js` from tsc. */
  const starts: string[] = [];

  before(
    async () => {
      work = mkdtempSync(path.join(tmpdir(), 'socket.io-session-auth-quick-start-'));
      project = path.join(work, 'app');
      mkdirSync(project);
      writeFileSync(
        path.join(project, 'package.json'),
        JSON.stringify({ name: 'quick-start', version: '1.0.0', private: true }, null, 2),
      );
      const tarball = await packPrivately(work);

      const installs = commands(installLines);
      assert.equal(installs.length, 2, 'two npm install lines: the packages, then the types');
      assert.ok(installs[0] && words(installs[0]).includes('socket.io-session-auth'));
      for (const [npm = '', ...args] of installs.map(words)) {
        assert.equal(npm, 'npm');
        const withTarball = args.map((arg) => (arg === 'socket.io-session-auth' ? tarball : arg));
        const flags = ['--no-audit', '--no-fund', '--prefer-offline'];
        mustSucceed(
          await run('npm', [...withTarball, ...flags], project, 180_000),
          `npm ${args.join(' ')}`,
        );
      }

      writeFileSync(path.join(project, 'server.mjs'), server.code);
      writeFileSync(path.join(project, 'server.cjs'), importsToRequires(server.code));
      writeFileSync(path.join(project, 'server.ts'), `${server.code}\n${declaration.code}`);

      // The README's run lines: its build commands run here, as written; its `node …` starts
      // are for the tests, with the SESSION_SECRET it exports.
      const runs = commands(runLines);
      assert.match(runs[0] ?? '', /^export SESSION_SECRET=\S/);
      for (const command of runs.slice(1)) {
        const [first = '', ...args] = words(command);
        if (first === 'node') {
          assert.equal(args.length, 1, command);
          starts.push(args[0] ?? '');
          continue;
        }
        assert.ok(first === 'npm' || first === 'npx', command);
        mustSucceed(await run(first, args, project), command);
      }
      assert.deepEqual(starts, ['server.mjs', 'server.js']);
      // What the TypeScript build checked it with: strict, in the settings `tsc --init` wrote.
      const config = mustSucceed(await run('npx', ['tsc', '--showConfig'], project), 'tsc');
      const { compilerOptions } = JSON.parse(config.stdout) as {
        compilerOptions: Record<string, unknown>;
      };
      assert.equal(compilerOptions.strict, true, config.stdout);
    },
    { timeout: 360_000 },
  );

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('without SESSION_SECRET, the server stops at once and says why', async () => {
    const result = await run(process.execPath, ['server.mjs'], project, 20_000);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /Set SESSION_SECRET to a long random string/);
  });

  for (const [file, label] of [
    ['server.mjs', 'server.mjs, as written'],
    ['server.cjs', 'server.cjs, each import written as a require()'],
    ['server.js', 'server.ts, built by the README’s tsc commands'],
  ] as const) {
    test(`${label}: login over HTTP, the user on the socket, logout ends it with session:ended`, async () => {
      const started = await startServer(project, file, { SESSION_SECRET: SECRET });
      try {
        await exercise(started.url);
      } finally {
        await started.stop();
      }
    });
  }

  test('server.ts does not type-check without the declaration of Express.User', async () => {
    // The same settings (the tsconfig.json `tsc --init` wrote), the server block alone.
    const bare = path.join(project, 'without-declaration');
    mkdirSync(bare);
    writeFileSync(path.join(bare, 'server.ts'), server.code);
    copyFileSync(path.join(project, 'tsconfig.json'), path.join(bare, 'tsconfig.json'));
    const result = await run('npx', ['tsc', '--noEmit', '-p', bare], project);
    assert.notEqual(result.code, 0, 'tsc accepted it');
    assert.match(result.stdout, /error TS2339: Property 'id' does not exist on type 'User'/);
  });

  describeInChromium("the page's code, in Chromium, against server.mjs", () => {
    let browser: Browser | undefined;
    let started: Started | undefined;

    before(async () => {
      started = await startServer(project, 'server.mjs', { SESSION_SECRET: SECRET });
      browser = await launchChromium();
    });
    after(async () => {
      await browser?.close();
      await started?.stop();
    });

    /** Runs the README's page code in a page of the server's origin, as the app's page would. */
    async function runPageCode(page: Page, url: string): Promise<void> {
      // The Quick start serves no page of its own: the client script Socket.IO serves is a
      // document of the right origin, so cookies and the socket's requests are the app's.
      await page.goto(`${url}/socket.io/socket.io.js`);
      await page.addScriptTag({ url: '/socket.io/socket.io.js' });
      await page.addScriptTag({ content: pageCode.code });
    }

    test('a stranger goes to /login; once logged in it hears its own name, then the logout', async () => {
      assert.ok(browser && started);
      const { url } = started;
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        page.setDefaultTimeout(10_000);

        await runPageCode(page, url);
        await page.waitForURL(`${url}/login`); // ERR_UNAUTHORIZED: location.assign('/login')

        const login = await page.request.post(`${url}/login`, {
          form: { username: USER.username, password: PASSWORD },
        });
        assert.equal(login.status(), 200);
        const hello = page.waitForEvent('console', (m) => m.text() === 'alice: Hello!');
        await runPageCode(page, url);
        await hello;

        const ended = page.waitForEvent(
          'console',
          (m) => m.text() === `session ended: ${ERR_SESSION_REVOKED}`,
        );
        const logout = await page.request.post(`${url}/logout`);
        assert.equal(logout.status(), 204);
        await ended;
      } finally {
        await context.close();
      }
    });
  });
});
