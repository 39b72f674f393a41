// docs/testing.md's first test, followed literally, on the README's Quick start. The code blocks
// are taken from README.md and docs/testing.md (never copied here) into a fresh project in a temp
// directory: the Quick start's install lines and the page's (the packed package in place of its
// name, the rest the newest the npm registry has), the Quick start's app and server as TypeScript
// built with its commands (into dist/), then the page's test under node:test (through tsx, as the
// page runs it) and under Vitest, each with the page's own command. Each run must pass and exit by
// itself; and each must fail once the app breaks, unbuilt, which is what shows that the tests run
// against app.ts and not against a compiled copy of it. Nothing is mocked.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stripVTControlCharacters } from 'node:util';
import { installAsWritten, mustSucceed, newProject, run, type Run } from '../support/npm.js';
import { codeBlocks, readmeSection, theBlock, type CodeBlock } from '../support/readme.js';

const quickStart = codeBlocks(readmeSection('## Quick start'));
const quickInstall = theBlock(quickStart, 'the npm install lines', (b) =>
  b.code.startsWith('npm install '),
);
const appCode = theBlock(quickStart, 'the app', (b) =>
  b.code.includes("from 'socket.io-session-auth'"),
);
const declaration = theBlock(quickStart, 'the declaration', (b) =>
  b.code.startsWith('declare global'),
);
const server = theBlock(quickStart, 'the server', (b) => b.code.includes("from './app.js'"));
const runLines = theBlock(quickStart, 'how to run it', (b) => b.code.includes('SESSION_SECRET='));

const PAGE = 'docs/testing.md';
const first = codeBlocks(readmeSection('## A first test, on the Quick start', PAGE));
const nodeInstall = theBlock(
  first,
  'the install line of the kit and tsx',
  (b) => b.code.startsWith('npm install') && b.code.includes(' tsx'),
);
const nodeTest = theBlock(first, 'the node:test file', (b) => b.code.includes("from 'node:test'"));
const nodeRun = theBlock(first, 'the node:test command', (b) => b.code.startsWith('node '));
const vitest = codeBlocks(readmeSection('### Under Vitest', PAGE));
const vitestTest = theBlock(vitest, 'the Vitest file', (b) => b.code.includes("from 'vitest'"));
const vitestLines = theBlock(vitest, 'the Vitest commands', (b) => b.code.includes('vitest run'));

/** The commands of a `sh` block: one per line or per `&&`, comments and blank lines left out. */
function commands(block: CodeBlock): string[][] {
  assert.equal(block.lang, 'sh');
  return block.code
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .flatMap((line) => line.split(' && '))
    .map((command) => words(command.trim()));
}

/** A command's words; a word in single quotes loses them, as the shell would take it. */
const words = (command: string): string[] =>
  command.split(/\s+/).map((w) => (/^'.*'$/.test(w) ? w.slice(1, -1) : w));

/**
 * How long a test run may take before it counts as a process that does not exit: a run takes a
 * few seconds; a test process kept alive by a server nobody closed hung 30 to 60 s, or for ever.
 */
const RUN_BOUND_MS = 60_000;

/** Runs a command of the page in the project, bounded: a run that never exits is killed. */
async function runCommand([file = '', ...args]: string[], cwd: string): Promise<Run> {
  const bin = file === 'node' ? process.execPath : file;
  const result = await run(bin, args, cwd, RUN_BOUND_MS);
  const plain = stripVTControlCharacters; // Vitest's colours
  return { ...result, stdout: plain(result.stdout), stderr: plain(result.stderr) };
}

const summary = (r: Run): string => `exit ${String(r.code)}\n${r.stdout}\n${r.stderr}`;

describe('docs/testing.md, followed literally on the Quick start', () => {
  let work = '';
  let project = '';
  let appTs = '';

  /** Builds the project with the Quick start's TypeScript commands, as written. */
  async function build(): Promise<void> {
    for (const [first = '', ...args] of commands(runLines)) {
      if (first === 'export' || first === 'node') continue; // the secret, and the starts
      if (first === 'npx' && args[0] === 'tsc' && args[1] === '--init') {
        if (readFileSafe(path.join(project, 'tsconfig.json')) !== undefined) continue;
      }
      mustSucceed(await run(first, args, project), [first, ...args].join(' '));
    }
  }

  function readFileSafe(file: string): string | undefined {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
  }

  /** The Quick start's app with its guard taken off: strangers get in. Not built. */
  function breakTheApp(): void {
    const broken = appTs.replace('requireAuth(sessionNamespace(', '(sessionNamespace(');
    assert.notEqual(broken, appTs, 'the app has the guard to take off');
    writeFileSync(path.join(project, 'app.ts'), broken);
  }
  const mendTheApp = (): void => {
    writeFileSync(path.join(project, 'app.ts'), appTs);
  };

  before(
    async () => {
      const made = await newProject('testing-page');
      ({ work, project } = made);
      await installAsWritten(commands(quickInstall), made);
      await installAsWritten(commands(nodeInstall), made);
      const [vitestInstall] = commands(vitestLines).filter(([first]) => first === 'npm');
      assert.ok(vitestInstall, 'the Vitest section says how to install Vitest');
      await installAsWritten([vitestInstall], made);

      appTs = `${appCode.code}\n${declaration.code}`;
      writeFileSync(path.join(project, 'app.ts'), appTs);
      writeFileSync(path.join(project, 'server.ts'), server.code);
      writeFileSync(path.join(project, 'chat.test.ts'), nodeTest.code);
      await build(); // the test file type-checks with the app, in `tsc --init`'s strict settings
      assert.ok(readFileSafe(path.join(project, 'dist', 'chat.test.js')), 'tsc built the test too');
    },
    { timeout: 480_000 },
  );

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('node:test: every test passes, and the process exits by itself', async () => {
    const [command] = commands(nodeRun);
    assert.deepEqual(command, ['node', '--import', 'tsx', '--test', 'chat.test.ts']);
    const result = await runCommand(command, project);
    assert.equal(result.code, 0, summary(result));
    assert.match(result.stdout, /^(#|ℹ) pass 4$/m, summary(result));
  });

  test('node:test: with the guard taken off app.ts (not rebuilt), the stranger test fails', async () => {
    breakTheApp();
    try {
      const result = await runCommand(commands(nodeRun)[0] ?? [], project);
      assert.notEqual(result.code, 0, summary(result));
      assert.match(result.stdout, /^(#|ℹ) fail [1-9]$/m, summary(result));
      assert.match(summary(result), /expected connect_error ERR_UNAUTHORIZED/);
    } finally {
      mendTheApp();
    }
  });

  describe('Vitest', () => {
    const vitestRun = (): string[] =>
      commands(vitestLines).find(([first]) => first === 'npx') ?? assert.fail('no npx line');

    before(async () => {
      writeFileSync(path.join(project, 'chat.test.ts'), vitestTest.code);
      await build(); // dist/ now holds the Vitest file, compiled, next to the compiled app
    });

    test('every test passes, and the process exits by itself', async () => {
      assert.deepEqual(vitestRun(), ['npx', 'vitest', 'run', '--exclude', 'dist/**']);
      const result = await runCommand(vitestRun(), project);
      assert.equal(result.code, 0, summary(result));
      assert.match(result.stdout, /Tests\s+4 passed \(4\)/, summary(result));
      assert.doesNotMatch(result.stdout, /dist\/chat\.test\.js/, 'dist/ is left out');
    });

    test('with the guard taken off app.ts (not rebuilt), the stranger test fails', async () => {
      breakTheApp();
      try {
        const result = await runCommand(vitestRun(), project);
        assert.notEqual(result.code, 0, summary(result));
        assert.match(result.stdout, /Tests\s+[1-9] failed/, summary(result));
        assert.match(summary(result), /expected connect_error ERR_UNAUTHORIZED/);

        // Why the page's --exclude: without it, Vitest also runs the compiled copy of the test in
        // dist/, against the app as built, where the broken app passes.
        const [npx = '', ...args] = vitestRun();
        const all = await runCommand([npx, ...args.slice(0, 2)], project);
        assert.match(all.stdout, /✓ dist\/chat\.test\.js \(4 tests\)/, summary(all));
      } finally {
        mendTheApp();
      }
    });
  });
});
