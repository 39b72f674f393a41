// The README's Quick start, followed literally. Its code blocks are taken from README.md (never
// copied here) into a fresh project in a temp directory: the two `npm install` lines run as
// written (the packed package in place of its name, the rest the newest the npm registry has),
// the app and server run as `app.js` and `server.js` (ES modules, as the README's
// `npm pkg set type=module` makes them), as CommonJS (each import line written as a require(),
// as the README says) and as `app.ts` and `server.ts` built with the README's commands (`tsc
// --init` settings, strict, into dist/), each against the real socket.io-client; the login page,
// `public/index.html`, runs in Chromium. Nothing is mocked.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { ERR_SESSION_REVOKED, ERR_UNAUTHORIZED } from 'socket.io-session-auth';
import { connected, connectError, within } from '../support/bounded.js';
import { describeInChromium, launchChromium } from '../support/chromium.js';
import {
  installAsWritten,
  mustSucceed,
  newProject,
  run,
  startServer,
  type Started,
} from '../support/npm.js';
import { codeBlocks, readmeSection, theBlock, type CodeBlock } from '../support/readme.js';
import { cookieOf } from '../support/server.js';
import { expectEnded, watchEnd } from '../support/session-ending.js';

const blocks = codeBlocks(readmeSection('## Quick start'));
const installLines = theBlock(blocks, 'the npm install lines', (b) =>
  b.code.startsWith('npm install '),
);
const appCode = theBlock(blocks, 'the app', (b) =>
  b.code.includes("from 'socket.io-session-auth'"),
);
const server = theBlock(blocks, 'the server', (b) => b.code.includes("from './app.js'"));
const declaration = theBlock(blocks, 'the declaration of Express.User', (b) =>
  b.code.startsWith('declare global'),
);
const runLines = theBlock(blocks, 'how to run it', (b) => b.code.includes('SESSION_SECRET='));
const page = theBlock(blocks, 'the login page', (b) => b.lang === 'html');

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

/**
 * A module of the Quick start as CommonJS, as the README says: each `import … from '…';` line
 * written as a `require()`, and the export as `module.exports`.
 */
function toCommonJS(code: string): string {
  const exported = /^export function (\w+)/m.exec(code)?.[1];
  const converted = code.replace(
    /^import (.+) from '([^']+)';$/gm,
    (_line, names: string, from: string) =>
      `const ${names.startsWith('{') ? names.replaceAll(' as ', ': ') : names} = require('${from}');`,
  );
  assert.doesNotMatch(converted, /^import /m, 'every import line has become a require()');
  if (exported === undefined) return converted;
  return `${converted.replace(/^export /m, '')}\nmodule.exports = { ${exported} };\n`;
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
  /** `node <file>` as the README runs it, per build: `server.js`, and `dist/server.js` from tsc. */
  const starts: string[] = [];

  before(
    async () => {
      const made = await newProject('quick-start');
      ({ work, project } = made);

      const installs = commands(installLines);
      assert.equal(installs.length, 2, 'two npm install lines: the packages, then the types');
      assert.ok(installs[0] && words(installs[0]).includes('socket.io-session-auth'));
      await installAsWritten(installs.map(words), made);

      // ES modules and TypeScript side by side (tsc leaves .js files alone, and builds into
      // dist/); CommonJS in a folder of its own, whose package.json says so.
      writeFileSync(path.join(project, 'app.js'), appCode.code);
      writeFileSync(path.join(project, 'server.js'), server.code);
      writeFileSync(path.join(project, 'app.ts'), `${appCode.code}\n${declaration.code}`);
      writeFileSync(path.join(project, 'server.ts'), server.code);
      mkdirSync(path.join(project, 'public'));
      writeFileSync(path.join(project, 'public', 'index.html'), page.code);
      mkdirSync(path.join(project, 'cjs'));
      writeFileSync(path.join(project, 'cjs', 'package.json'), '{ "type": "commonjs" }\n');
      writeFileSync(path.join(project, 'cjs', 'app.js'), toCommonJS(appCode.code));
      writeFileSync(path.join(project, 'cjs', 'server.js'), toCommonJS(server.code));

      // The README's run lines: its build commands run here, as written; its `node …` starts
      // are for the tests, with the SESSION_SECRET it exports.
      const runs = commands(runLines);
      assert.deepEqual(runs.slice(0, 2), ['npm pkg set type=module', runs[1]]);
      assert.match(runs[1] ?? '', /^export SESSION_SECRET=\S/);
      for (const command of runs.filter((_, i) => i !== 1)) {
        const [first = '', ...args] = words(command);
        if (first === 'node') {
          assert.equal(args.length, 1, command);
          starts.push(args[0] ?? '');
          continue;
        }
        assert.ok(first === 'npm' || first === 'npx', command);
        mustSucceed(await run(first, args, project), command);
      }
      assert.deepEqual(starts, ['server.js', 'dist/server.js']);
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
    const result = await run(process.execPath, ['server.js'], project, 20_000);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /Set SESSION_SECRET to a long random string/);
  });

  for (const [dir, file, label] of [
    ['.', 'server.js', 'app.js and server.js, as written'],
    ['cjs', 'server.js', 'in CommonJS, each import written as a require()'],
    ['.', 'dist/server.js', 'app.ts and server.ts, built by the README’s tsc commands'],
  ] as const) {
    test(`${label}: login over HTTP, the user on the socket, logout ends it with session:ended`, async () => {
      const cwd = path.join(project, dir);
      const started = await startServer(cwd, file, { SESSION_SECRET: SECRET });
      try {
        await exercise(started.url);
      } finally {
        await started.stop();
      }
    });
  }

  test('app.ts does not type-check without the declaration of Express.User', async () => {
    // The same settings (the tsconfig.json `tsc --init` wrote), the app block alone.
    const bare = path.join(project, 'without-declaration');
    mkdirSync(bare);
    writeFileSync(path.join(bare, 'app.ts'), appCode.code);
    copyFileSync(path.join(project, 'tsconfig.json'), path.join(bare, 'tsconfig.json'));
    const result = await run('npx', ['tsc', '--noEmit', '-p', bare], project);
    assert.notEqual(result.code, 0, 'tsc accepted it');
    assert.match(result.stdout, /error TS2339: Property 'id' does not exist on type 'User'/);
  });

  describeInChromium('the login page, in Chromium, against server.js', () => {
    let browser: Browser | undefined;
    let started: Started | undefined;

    before(async () => {
      started = await startServer(project, 'server.js', { SESSION_SECRET: SECRET });
      browser = await launchChromium();
    });
    after(async () => {
      await browser?.close();
      await started?.stop();
    });

    /** The next console line of `page` that is `text`, from now on. */
    const line = (page: Page, text: string): Promise<unknown> =>
      page.waitForEvent('console', (m) => m.text() === text);

    test('refused until logged in, then its own name, then the logout: every step in the console', async () => {
      assert.ok(browser && started);
      const { url } = started;
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        page.setDefaultTimeout(10_000);

        const refused = line(page, `refused: Unauthorized ${ERR_UNAUTHORIZED}`);
        await page.goto(`${url}/`); // public/index.html, served by the app
        await refused;

        const wrong = line(page, 'login: 401');
        await page.fill('input[name=password]', 'not-the-password');
        await page.click('text=Log in');
        await wrong;

        const hello = line(page, 'alice: Hello!');
        const ok = line(page, 'login: 200');
        await page.fill('input[name=password]', PASSWORD);
        await page.click('text=Log in');
        await ok;
        await hello;

        const ended = line(page, `ended: Session revoked ${ERR_SESSION_REVOKED}`);
        await page.click('text=Log out');
        await ended;
      } finally {
        await context.close();
      }
    });
  });
});
