// Child processes for the specs that build, pack and install the package as its users do
// (spec/package/index.spec.ts, readme-quick-start.spec.ts, testing-your-app.spec.ts, nestjs.spec.ts).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { within } from './bounded.js';
import { freePort } from './redis.js';

export const root = path.resolve(__dirname, '..', '..');
/** The repo's own TypeScript compiler (the version of package-lock.json). */
export const tsc = path.join(root, 'node_modules', '.bin', 'tsc');

export interface Run {
  code: number | string | null;
  stdout: string;
  stderr: string;
}

/** The environment for child processes, without what the test runner and `npm run` set. */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const dropped = (key: string): boolean =>
    key === 'NODE_TEST_CONTEXT' ||
    key === 'INIT_CWD' ||
    key === 'npm_command' ||
    key === 'npm_config_call' ||
    key === 'npm_config_package' ||
    key === 'npm_config_local_prefix' ||
    key.startsWith('npm_lifecycle_') ||
    key.startsWith('npm_package_');
  return {
    ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !dropped(key))),
    npm_config_update_notifier: 'false',
    ...extra,
  };
}

/** Runs a command to its end; never rejects (the result says how it ended). */
export function run(file: string, args: string[], cwd: string, timeout = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd, timeout, env: childEnv(), maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (error.code ?? error.signal ?? 'failed') : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export function mustSucceed(result: Run, what: string): Run {
  assert.equal(
    result.code,
    0,
    `${what} failed (${String(result.code)}):\n${result.stdout}\n${result.stderr}`,
  );
  return result;
}

export interface PackInfo {
  filename: string;
  files: { path: string }[];
}

/** Parses the `npm pack --json` output, even if a lifecycle script printed before it. */
export function parsePackJson(stdout: string): PackInfo[] {
  const start = stdout.startsWith('[') ? 0 : stdout.indexOf('\n[') + 1;
  return JSON.parse(stdout.slice(start)) as PackInfo[];
}

/**
 * The package as `npm publish` would ship it, packed into `work`, and the tarball's path. It is
 * built from lib/ into a folder of its own, so that it never reads or rebuilds the repo's dist/,
 * which spec/package/index.spec.ts's `npm pack` may be rebuilding at the same time.
 */
export async function packPrivately(work: string): Promise<string> {
  const source = path.join(work, 'package-source');
  mkdirSync(source, { recursive: true });
  mustSucceed(
    await run(tsc, ['-p', 'tsconfig.build.json', '--outDir', path.join(source, 'dist')], root),
    'tsc -p tsconfig.build.json',
  );
  for (const file of ['package.json', 'README.md', 'LICENSE']) {
    copyFileSync(path.join(root, file), path.join(source, file));
  }
  cpSync(path.join(root, 'docs'), path.join(source, 'docs'), { recursive: true });
  // No scripts: `prepack` would build into the copy's dist/ again, from a lib/ it does not have.
  const packed = mustSucceed(
    await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], source),
    'npm pack (private build)',
  );
  const [info] = parsePackJson(packed.stdout);
  assert.ok(info, 'npm pack printed what it packed');
  return path.join(work, info.filename);
}

/** A project of a page's code: a temp folder holding it (`work`) and the packed package. */
export interface NewProject {
  /** The temp folder: the caller removes it. */
  work: string;
  /** `work/app`, with a package.json of its own. */
  project: string;
  /** The package as npm would ship it ({@link packPrivately}). */
  tarball: string;
}

/** A new, empty npm project named `name` in a temp folder, and the package packed beside it. */
export async function newProject(name: string): Promise<NewProject> {
  const work = mkdtempSync(path.join(tmpdir(), `socket.io-session-auth-${name}-`));
  const project = path.join(work, 'app');
  try {
    mkdirSync(project);
    writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify({ name, version: '1.0.0', private: true }, null, 2),
    );
    return { work, project, tarball: await packPrivately(work) };
  } catch (error) {
    rmSync(work, { recursive: true, force: true });
    throw error;
  }
}

/** Runs a page's `npm install …` lines in `project`, the packed package in place of its name. */
export async function installAsWritten(
  lines: readonly (readonly string[])[],
  { project, tarball }: Pick<NewProject, 'project' | 'tarball'>,
): Promise<void> {
  for (const [npm = '', ...args] of lines) {
    assert.equal(npm, 'npm');
    const withTarball = args.map((arg) => (arg === 'socket.io-session-auth' ? tarball : arg));
    const flags = ['--no-audit', '--no-fund', '--prefer-offline'];
    mustSucceed(
      await run('npm', [...withTarball, ...flags], project, 180_000),
      `npm ${args.join(' ')}`,
    );
  }
}

export interface Started {
  /** Where it listens, on a free port of this machine. */
  url: string;
  stop(): Promise<void>;
}

/**
 * Runs `node file` in `dir` with `env` and a free `PORT`, until it prints that it listens on that
 * port (`Listening on http://<host>:<port>`, as the README's apps do).
 */
export async function startServer(
  dir: string,
  file: string,
  env: NodeJS.ProcessEnv,
): Promise<Started> {
  const port = await freePort();
  const child = spawn(process.execPath, [file], {
    cwd: dir,
    env: childEnv({ PORT: String(port), ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const listening = new Promise<void>((resolve, reject) => {
    const ready = new RegExp(`^Listening on http://\\S+:${port}/?$`, 'm');
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      if (ready.test(output)) resolve();
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    void exited.then((code) => {
      reject(new Error(`node ${file} exited (${String(code)}) before it listened:\n${output}`));
    });
  });
  try {
    await within(listening, `node ${file} listening on ${port}`, 30_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM');
      await within(exited, `node ${file} exiting`, 10_000);
    },
  };
}
