// The package as users install it: `npm pack`, then two fresh projects in temp directories, a
// CommonJS one with Express 4 and an ES module one with Express 5, each installing the tarball and
// using it end to end (Express + express-session + Passport + Socket.IO, a real socket.io-client),
// and type-checking a TypeScript consumer against the published declarations.
import assert from 'node:assert/strict';
import {
  existsSync,
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
} from '../support/npm.js';

const fixtures = path.join(__dirname, '..', 'fixtures');
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
  'DIAGNOSTICS_CHANNELS',
  'reloadSession',
  'saveSession',
  'SESSION_ENDED_EVENT',
  'COOKIE_EXPIRING_EVENT',
  'refreshCookieRoute',
  'ERR_SESSION_REVOKED',
  'ERR_SESSION_ROTATED',
  'ERR_SESSION_EXPIRED',
  'ERR_ORIGIN_FORBIDDEN',
  'ERR_SESSION_UNAVAILABLE',
  'ERR_BAD_TOKEN_EXPIRY',
  'ERR_RATE_LIMITED',
  'rateLimit',
  'presence',
  'PRESENCE_STATE_EVENT',
  'PRESENCE_DIFF_EVENT',
  'sessionRegistry',
  'listSessions',
  'sessionHandle',
  'endSessions',
  'redisStoreEvents',
  'pgStoreEvents',
  'pgStoreEventsSql',
].sort();

/** Every runtime export of the test kit, socket.io-session-auth/testing. */
const TESTING_EXPORTS = [
  'createTestKit',
  'expectAckError',
  'expectEnded',
  'expectJoin',
  'expectLeave',
  'expectPresenceDiff',
  'expectRefused',
  'presenceSnapshot',
];

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
  kit: {
    exports: string[];
    sameCopy: boolean;
    sameUrl: boolean;
    hello: string;
    refusal: unknown;
    failure: { name: string; message: string } | null;
    expired: boolean;
  };
}

interface Project {
  name: 'cjs' | 'esm';
  type: 'commonjs' | 'module';
  expressMajor: number;
  app: string;
  entry: string;
  tsconfig: Record<string, unknown>;
  /** Each file, and the consumer fixture it is a copy of. */
  tsFiles: Record<string, 'consumer.ts' | 'testing-consumer.ts'>;
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
    tsFiles: {
      'consumer.ts': 'consumer.ts',
      'consumer-esm.mts': 'consumer.ts',
      'testing-consumer.ts': 'testing-consumer.ts',
      'testing-consumer-esm.mts': 'testing-consumer.ts',
    },
  },
  {
    name: 'esm',
    type: 'module',
    expressMajor: 5,
    app: 'app.mjs',
    entry: 'dist/index.mjs',
    tsconfig: { ...strictTs, module: 'esnext', moduleResolution: 'bundler' },
    tsFiles: { 'consumer.ts': 'consumer.ts', 'testing-consumer.ts': 'testing-consumer.ts' },
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

/** A consumer of spec/fixtures/types, importing the installed package instead of lib/. */
function consumerSource(fixture: 'consumer.ts' | 'testing-consumer.ts'): string {
  const source = readFileSync(path.join(fixtures, 'types', fixture), 'utf8');
  const [specifier, entry] =
    fixture === 'consumer.ts'
      ? [`'../../../lib/index.js'`, rootPackage.name]
      : [`'../../../lib/testing/index.js'`, `${rootPackage.name}/testing`];
  assert.equal(source.split(specifier).length, 2, `${fixture} imports ${specifier} once`);
  return source.replace(specifier, `'${entry}'`);
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
    for (const [file, fixture] of Object.entries(project.tsFiles)) {
      writeFileSync(path.join(dir, file), consumerSource(fixture));
    }
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify(
        { compilerOptions: project.tsconfig, files: Object.keys(project.tsFiles) },
        null,
        2,
      ),
    );
    dirs.set(project.name, realpathSync(dir));
  }

  /**
   * A production install: the tarball alone (npm adds the required peers, socket.io and express,
   * and none of the optional ones), and a script that loads the main entry both ways and then
   * tries the kit.
   */
  async function installBare(): Promise<void> {
    const dir = path.join(work, 'bare');
    mkdirSync(dir);
    writeFileSync(
      path.join(dir, 'package.json'),
      JSON.stringify({ name: 'bare-app', version: '1.0.0', private: true }, null, 2),
    );
    const result = await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball],
      dir,
      150_000,
    );
    mustSucceed(result, 'npm install (bare)');
    writeFileSync(
      path.join(dir, 'bare.cjs'),
      `'use strict';
const kitFiles = () =>
  Object.keys(require.cache).filter((f) => /[\\/]dist[\\/]testing[\\/]/.test(f));
const main = require('socket.io-session-auth');
import('socket.io-session-auth').then((esm) => {
  const loaded = kitFiles();
  let testing = 'loaded';
  try {
    require('socket.io-session-auth/testing');
  } catch (error) {
    testing = error.code + ' ' + (/'([^']+)'/.exec(error.message) || [])[1];
  }
  const names = (m) => Object.keys(m).filter((k) => k !== 'default' && k !== 'module.exports');
  const result = { exports: names(main).sort(), esm: names(esm).sort(), loaded, testing };
  console.log('RESULT ' + JSON.stringify(result));
});
`,
    );
    dirs.set('bare', realpathSync(dir));
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
      await Promise.all([...projects.map(install), installBare()]);
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
      (f) =>
        !/^(dist\/.+\.(js|mjs|d\.ts|d\.mts|map)|docs\/[\w-]+\.md|package\.json|README\.md|LICENSE)$/.test(
          f,
        ),
    );
    assert.deepEqual(unexpected, [], 'files outside dist/ in the tarball');
    // Every file the exports map points at is in the tarball.
    const targets = JSON.stringify(rootPackage.exports).match(/:"\.\/[^"]+"/g) ?? [];
    assert.ok(targets.length >= 9);
    for (const target of targets) {
      const file = target.slice(4, -1);
      assert.ok(files.includes(file), `exports points at ${file}, which is not packed`);
    }
    assert.deepEqual(
      readdirSync(root).filter((f) => f.endsWith('.tgz')),
      [],
    );
  });

  test('every relative link of the README and docs/ points at a file the tarball has', () => {
    // package.json has no `repository`: a link to a file the tarball lacks (examples/, spec/)
    // would break on the package page and in node_modules alike. Anchors are checked too, with
    // the ids GitHub and npm give headings.
    assert.ok(pack);
    const packed = new Set(pack.files.map((f) => f.path));
    const pages = [...packed].filter((f) => f.endsWith('.md'));
    assert.ok(pages.includes('README.md') && pages.includes('docs/api.md'), pages.join(', '));
    const prose = (page: string): string =>
      readFileSync(path.join(root, page), 'utf8').replace(/^```[\s\S]*?^```$/gm, '');
    const anchors = (page: string): Set<string> =>
      new Set(
        [...prose(page).matchAll(/^#+ (.+)$/gm)].map(([, heading = '']) =>
          heading
            .toLowerCase()
            .replace(/[^\w\- ]/g, '')
            .replaceAll(' ', '-'),
        ),
      );
    const broken: string[] = [];
    for (const page of pages) {
      for (const [, target = ''] of prose(page).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue;
        const [file = '', anchor] = target.split('#');
        const linked = file
          ? path.posix.normalize(path.posix.join(path.posix.dirname(page), file))
          : page;
        if (!packed.has(linked)) broken.push(`${page} → ${target}: no such file`);
        else if (anchor && !anchors(linked).has(anchor)) broken.push(`${page} → ${target}`);
      }
    }
    assert.deepEqual(broken, [], 'links to files or headings the tarball does not have');
  });

  test("the README's first screen is for users: install and the Quick start, then the API in brief", () => {
    // A newcomer reads the README in minutes: the package's install line near the top, the Quick
    // start next, every long guide one link away in docs/ (shipped), the contributor's commands
    // after the Quick start, not before it.
    const lines = readFileSync(path.join(root, 'README.md'), 'utf8').split('\n');
    const at = (line: string): number => lines.findIndex((l) => l === line);
    const install = at('npm install socket.io-session-auth');
    const quickStart = at('## Quick start');
    const apiInBrief = at('## API in brief');
    const contributors = lines.findIndex((l) => l.includes('npm install && npm run example'));
    assert.ok(install > 0 && install < 15, `the install line is at line ${install + 1}`);
    assert.ok(
      quickStart > install && quickStart < 20,
      `## Quick start is at line ${quickStart + 1}`,
    );
    assert.ok(
      apiInBrief > quickStart && apiInBrief <= 130,
      `## API in brief at line ${apiInBrief + 1}`,
    );
    assert.ok(contributors > apiInBrief, `the contributors' commands at line ${contributors + 1}`);
    assert.ok(
      lines.length < 250,
      `the README has ${lines.length} lines: the long guides go to docs/`,
    );
    const linked = new Set(lines.join('\n').match(/docs\/[\w-]+\.md/g));
    const pages = readdirSync(path.join(root, 'docs')).map((f) => `docs/${f}`);
    assert.deepEqual(
      pages.filter((page) => !linked.has(page)),
      [],
      'docs/ pages the README does not link',
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

    test(`${label}: the test kit, from socket.io-session-auth/testing, on the same copy of the package`, async () => {
      const { kit } = await appResult(project);
      assert.deepEqual(kit.exports, TESTING_EXPORTS);
      assert.equal(kit.sameCopy, true, 'import and require() give one copy of the kit');
      assert.equal(kit.sameUrl, true, 'the app already listened: the kit used its server');
      assert.equal(kit.hello, 'alice');
      assert.deepEqual(kit.refusal, {
        message: 'Forbidden',
        data: { code: 'ERR_FORBIDDEN', status: 403 },
      });
      assert.deepEqual(kit.failure, {
        name: 'AssertionError',
        message: 'expected connect_error ERR_FORBIDDEN on /admin (alice), but the socket connected',
      });
      assert.equal(kit.expired, true, "kit.expire ended the app's live socket");
    });

    test(`${label}: the TypeScript consumer type-checks against the published declarations`, async () => {
      const dir = dirs.get(project.name) ?? assert.fail(`${project.name} was not installed`);
      mustSucceed(await run(tsc, ['-p', dir], dir), `tsc -p ${project.name}`);
    });
  }

  test('a production install that does not import the kit gets nothing of it: no socket.io-client, no kit module loaded', async () => {
    const dir = dirs.get('bare') ?? assert.fail('bare was not installed');
    assert.equal(
      existsSync(path.join(dir, 'node_modules', 'socket.io-client')),
      false,
      'socket.io-client is an optional peer: npm does not install it',
    );
    const result = mustSucceed(await run(process.execPath, ['bare.cjs'], dir, 30_000), 'bare.cjs');
    const line = result.stdout.split('\n').find((l) => l.startsWith('RESULT ')) ?? '';
    assert.deepEqual(JSON.parse(line.slice('RESULT '.length)), {
      exports: PUBLIC_EXPORTS,
      esm: PUBLIC_EXPORTS,
      loaded: [],
      testing: 'MODULE_NOT_FOUND socket.io-client',
    });
  });

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
