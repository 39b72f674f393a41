// The package as users install it: `npm pack`, then two fresh projects in temp directories, a
// CommonJS one with Express 4 and an ES module one with Express 5, each installing the tarball and
// using it end to end (Express + express-session + Passport + Socket.IO, a real socket.io-client),
// and type-checking a TypeScript consumer against the published declarations.
import assert from 'node:assert/strict';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  mustSucceed,
  parsePackJson,
  root,
  run,
  tsc,
  type PackInfo,
  type Run,
} from './support/npm.js';

const fixtures = path.join(__dirname, 'fixtures');
const rootPackage = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  exports: unknown;
};

/** Every runtime export of the package, in both module systems: no more, no fewer. */
const PUBLIC_EXPORTS = [
  'wrapExpressMiddleware',
  'sessionNamespace',
  'passportNamespace',
  'TOKEN_EVENT',
  'requireAuth',
  'SessionAuthError',
  'ERR_MIDDLEWARE_ENDED',
  'ERR_MIDDLEWARE_TIMEOUT',
  'ERR_MIDDLEWARE_ERROR',
  'ERR_UNAUTHORIZED',
  'ERR_FORBIDDEN',
  'ERR_AUTHORIZE_ERROR',
  'disconnectSession',
  'disconnectUser',
  'disconnectOnLogout',
  'refreshUser',
  'refreshSession',
  'ROOMS_LEFT_EVENT',
  'reloadSession',
  'saveSession',
  'SESSION_ENDED_EVENT',
  'ERR_SESSION_REVOKED',
  'ERR_SESSION_ROTATED',
  'ERR_SESSION_EXPIRED',
  'ERR_ORIGIN_FORBIDDEN',
  'ERR_SESSION_UNAVAILABLE',
].sort();

interface Outcome {
  connected: boolean;
  message?: string;
  data?: Record<string, unknown> | null;
}

/** What spec/fixtures/package/app.cjs and app.mjs print. */
interface AppResult {
  moduleSystem: string;
  expressVersion: string;
  resolved: string;
  requireResolved?: string;
  version: string;
  deepImport: string;
  exports: string[];
  requireExports?: string[];
  dual: {
    sameSessionAuthError: boolean;
    sameFunctions: boolean;
    crossInstanceof?: boolean;
    sharedState?: string;
  };
  error: { isError: boolean; name: string; message: string; data: unknown };
  login: { status: number; hasCookie: boolean };
  me: { sessionID: string; username: string | null };
  admin: Outcome & { hello: { username: string | null; sessionID: string } | null };
  anonymous: Outcome;
  member: Outcome;
  redirect: Outcome;
}

interface Project {
  name: 'cjs' | 'esm';
  type: 'commonjs' | 'module';
  expressMajor: number;
  app: string;
  entry: string;
  tsconfig: Record<string, unknown>;
  tsFiles: string[];
}

const strictTs = {
  target: 'ES2022',
  lib: ['ES2022'],
  strict: true,
  esModuleInterop: true,
  forceConsistentCasingInFileNames: true,
  skipLibCheck: false,
  noEmit: true,
};

const projects: Project[] = [
  {
    name: 'cjs',
    type: 'commonjs',
    expressMajor: 4,
    app: 'app.cjs',
    entry: 'dist/index.js',
    // consumer.ts is CommonJS here (require types, index.d.ts); consumer-esm.mts is an ES module
    // under node16 (import types, index.d.mts).
    tsconfig: { ...strictTs, module: 'node16', moduleResolution: 'node16' },
    tsFiles: ['consumer.ts', 'consumer-esm.mts'],
  },
  {
    name: 'esm',
    type: 'module',
    expressMajor: 5,
    app: 'app.mjs',
    entry: 'dist/index.mjs',
    tsconfig: { ...strictTs, module: 'esnext', moduleResolution: 'bundler' },
    tsFiles: ['consumer.ts'],
  },
];

const nodeMajor = process.versions.node.split('.')[0] ?? '20';
const commonDependencies = [
  'socket.io@4',
  'socket.io-client@4',
  'express-session@1',
  'passport@0.7',
  'passport-local@1',
  '@types/express-session@1',
  '@types/passport@1',
  '@types/passport-local@1',
  `@types/node@${nodeMajor}`,
];

/** The consumer of spec/fixtures/types, importing the installed package instead of lib/. */
function consumerSource(): string {
  const source = readFileSync(path.join(fixtures, 'types', 'consumer.ts'), 'utf8');
  const specifier = `'../../../lib/index.js'`;
  assert.equal(source.split(specifier).length, 2, `consumer.ts imports ${specifier} once`);
  return source.replace(specifier, `'${rootPackage.name}'`);
}

function parseResult(result: Run, what: string): AppResult {
  mustSucceed(result, what);
  const line = result.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `${what} printed no RESULT line:\n${result.stdout}\n${result.stderr}`);
  return JSON.parse(line.slice('RESULT '.length)) as AppResult;
}

describe('the packed package, installed in fresh projects', { concurrency: true }, () => {
  let work = '';
  let tarball = '';
  let pack: PackInfo | undefined;
  const dirs = new Map<string, string>();
  const results = new Map<string, Promise<AppResult>>();

  /** Runs a project's app once; the tests that look at its result share it. */
  function appResult(project: Project): Promise<AppResult> {
    let result = results.get(project.name);
    if (!result) {
      const dir = dirs.get(project.name) ?? assert.fail(`${project.name} was not installed`);
      result = run(process.execPath, [project.app], dir, 60_000).then((r) => {
        assert.doesNotMatch(r.stderr, /socket\.io-session-auth|SOCKET_IO_SESSION_AUTH/);
        return parseResult(r, `node ${project.app} (${project.name})`);
      });
      results.set(project.name, result);
    }
    return result;
  }

  async function install(project: Project): Promise<void> {
    const dir = path.join(work, project.name);
    mkdirSync(dir);
    const packageJson = { name: `${project.name}-app`, version: '1.0.0', private: true };
    writeFileSync(
      path.join(dir, 'package.json'),
      JSON.stringify({ ...packageJson, type: project.type }, null, 2),
    );
    const result = await run(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        tarball,
        `express@${project.expressMajor}`,
        `@types/express@${project.expressMajor}`,
        ...commonDependencies,
      ],
      dir,
      150_000,
    );
    mustSucceed(result, `npm install (${project.name})`);
    writeFileSync(
      path.join(dir, project.app),
      readFileSync(path.join(fixtures, 'package', project.app)),
    );
    const consumer = consumerSource();
    for (const file of project.tsFiles) writeFileSync(path.join(dir, file), consumer);
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: project.tsconfig, files: project.tsFiles }, null, 2),
    );
    dirs.set(project.name, realpathSync(dir));
  }

  before(
    async () => {
      work = mkdtempSync(path.join(tmpdir(), 'socket.io-session-auth-spec-'));
      // `prepack` builds dist/ first, as it does for `npm publish`.
      const packed = mustSucceed(
        await run('npm', ['pack', '--json', '--pack-destination', work], root),
        'npm pack',
      );
      const info = parsePackJson(packed.stdout);
      assert.equal(info.length, 1);
      pack = info[0];
      assert.ok(pack);
      tarball = path.join(work, pack.filename);
      await Promise.all(projects.map(install));
    },
    { timeout: 240_000 },
  );

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('npm pack ships the built entry points, and leaves no tarball in the repo', () => {
    assert.ok(pack);
    const files = pack.files.map((f) => f.path).sort();
    const unexpected = files.filter(
      (f) => !/^(dist\/.+\.(js|mjs|d\.ts|d\.mts|map)|package\.json|README\.md|LICENSE)$/.test(f),
    );
    assert.deepEqual(unexpected, [], 'files outside dist/ in the tarball');
    // Every file the exports map points at is in the tarball.
    const targets = JSON.stringify(rootPackage.exports).match(/"\.\/[^"]+"/g) ?? [];
    assert.ok(targets.length >= 5);
    for (const target of targets) {
      const file = target.slice(3, -1);
      assert.ok(files.includes(file), `exports points at ${file}, which is not packed`);
    }
    assert.deepEqual(
      readdirSync(root).filter((f) => f.endsWith('.tgz')),
      [],
    );
  });

  test('every source map in the tarball points at files the tarball has', () => {
    assert.ok(pack);
    const packed = new Set(pack.files.map((f) => f.path));
    // What `npm install` unpacked: the same files, read as users get them.
    const installed = path.join(dirs.get('cjs') ?? assert.fail(), 'node_modules', rootPackage.name);
    const broken: string[] = [];
    for (const file of packed) {
      const text = readFileSync(path.join(installed, file), 'utf8');
      const dir = path.posix.dirname(file);
      const inTarball = (target: string): boolean =>
        packed.has(path.posix.normalize(path.posix.join(dir, target)));
      for (const [, url = ''] of text.matchAll(/^\/\/# sourceMappingURL=(.+)$/gm)) {
        if (!url.startsWith('data:') && !inTarball(url)) broken.push(`${file} -> ${url}`);
      }
      if (file.endsWith('.map')) {
        const map = JSON.parse(text) as { sourceRoot?: string; sources?: string[] };
        for (const source of map.sources ?? []) {
          const target = path.posix.join(map.sourceRoot ?? '', source);
          if (!inTarball(target)) broken.push(`${file} -> ${target}`);
        }
      }
    }
    assert.deepEqual(broken, [], 'maps or sourceMappingURL comments pointing outside the tarball');
  });

  test('publint reports no errors, on the repo and on the tarball', async () => {
    for (const args of [['publint'], ['publint', tarball]]) {
      const result = await run('npx', ['--no-install', ...args], root, 60_000);
      mustSucceed(result, `npx ${args.join(' ')}`);
      assert.doesNotMatch(result.stdout, /Errors:/, result.stdout);
    }
  });

  for (const project of projects) {
    const label = `${project.name} (Express ${project.expressMajor})`;

    test(`${label}: the installed package resolves to ${project.entry} and exports exactly the public names`, async () => {
      const result = await appResult(project);
      const dir = dirs.get(project.name) ?? '';
      assert.equal(result.moduleSystem, project.name === 'cjs' ? 'commonjs' : 'esm');
      assert.equal(result.expressVersion.split('.')[0], String(project.expressMajor));
      assert.equal(
        result.resolved,
        path.join(dir, 'node_modules', rootPackage.name, ...project.entry.split('/')),
      );
      assert.equal(result.version, rootPackage.version);
      assert.equal(result.deepImport, 'ERR_PACKAGE_PATH_NOT_EXPORTED');
      assert.deepEqual(result.exports, PUBLIC_EXPORTS);
      assert.deepEqual(result.error, {
        isError: true,
        name: 'SessionAuthError',
        message: 'Unauthorized',
        data: { code: 'ERR_UNAUTHORIZED', status: 401 },
      });
    });

    test(`${label}: login over HTTP, then the guarded namespace, end to end`, async () => {
      const result = await appResult(project);
      assert.deepEqual(result.login, { status: 200, hasCookie: true });
      assert.equal(result.me.username, 'alice');
      assert.deepEqual(result.admin, {
        connected: true,
        hello: { username: 'alice', sessionID: result.me.sessionID },
      });
      assert.deepEqual(result.anonymous, {
        connected: false,
        message: 'Unauthorized',
        data: { code: 'ERR_UNAUTHORIZED', status: 401 },
      });
      assert.deepEqual(result.member, {
        connected: false,
        message: 'Forbidden',
        data: { code: 'ERR_FORBIDDEN', status: 403 },
      });
      assert.equal(result.redirect.connected, false);
      assert.deepEqual(result.redirect.data, {
        code: 'ERR_MIDDLEWARE_ENDED',
        status: 302,
        location: '/login',
      });
    });

    test(`${label}: the TypeScript consumer type-checks against the published declarations`, async () => {
      const dir = dirs.get(project.name) ?? assert.fail(`${project.name} was not installed`);
      mustSucceed(await run(tsc, ['-p', dir], dir), `tsc -p ${project.name}`);
    });
  }

  test('cjs: require() and import() of the package give the same exports', async () => {
    const cjs = projects.find((p) => p.name === 'cjs') ?? assert.fail();
    const result = await appResult(cjs);
    assert.deepEqual(result.dual, { sameSessionAuthError: true, sameFunctions: true });
  });

  test('esm: import and require() in one process share one copy of the package', async () => {
    const esm = projects.find((p) => p.name === 'esm') ?? assert.fail();
    const result = await appResult(esm);
    const dir = dirs.get('esm') ?? '';
    assert.equal(
      result.requireResolved,
      path.join(dir, 'node_modules', rootPackage.name, 'dist', 'index.js'),
    );
    assert.deepEqual(result.requireExports, PUBLIC_EXPORTS);
    assert.equal(result.dual.sameSessionAuthError, true, 'two SessionAuthError classes');
    assert.equal(result.dual.sameFunctions, true);
    assert.equal(result.dual.crossInstanceof, true);
    // requireAuth through require() is seen by sessionNamespace through import: one shared state.
    assert.match(result.dual.sharedState ?? '', /call it before requireAuth/);
  });
});
