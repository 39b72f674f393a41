// The legs CI runs (`npm test` runs them all, after lint, type checks and the build): the whole
// suite once on the newest versions, then the core, lifecycle and test kit folders of spec/ on
// older versions and other session options and stores, one leg after another, each in its own
// `node --test` with its environment (see spec/support/stack.ts) on its Node line (see
// spec/support/node-lines.ts: a line other than the running Node's is installed from the npm
// registry on first use). Prints one line per leg, then what failed, and exits non-zero when any
// leg failed.
//
//   npm run spec:legs                     every leg
//   npm run spec:legs -- sio46-express4   only the legs named
//   npm run spec:legs -- --list           the legs and each one's files, without running them
//   npm run spec:legs -- --readme         rewrites the Compatibility table (docs/compatibility.md)
//
// The table in docs/compatibility.md is written from this list, and a run refuses to start when
// that page says otherwise: the table lists exactly what CI runs.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import * as prettier from 'prettier';
import { dimensions, installedVersion, packages, type Stack } from './support/matrix.js';
import { nodeBinary, nodeReleases, type NodeBinary, type NodeLine } from './support/node-lines.js';

interface LegResult {
  tests: number;
  passed: number;
  failed: number;
  skipped: number;
  failures: { file: string; test: string; error: string }[];
}

// ---------------------------------------------------------------------------------------------
// What runs
// ---------------------------------------------------------------------------------------------

// A leg runs folders of spec/, never a list of files: a spec belongs to a group by the folder it
// sits in, and a new spec runs where its folder does. The folders no group names (examples,
// feeds, hostile, kit, leaks, nodes, package: the package as installed, the examples, the store
// feeds on their real stores (Postgres is given to the newest leg only), hostile input, leaks and
// load, several nodes on Redis and Postgres, the kit's assertions and session control) run in the
// newest leg only, which keeps `npm test` near 12 minutes. A spec file outside every
// folder runs in no leg: a run refuses to start while there is one.

/**
 * Core: the public API on a live stack (sessionNamespace, requireAuth and its decisions,
 * wrapExpressMiddleware and its response stand-in, per-socket requests, origins, errors, setup),
 * fidelity: Socket.IO's own behaviours replayed with the package on (spec/socket-io), and
 * rateLimit's limits (spec/limits).
 */
const CORE = [
  'spec/socket-io',
  'spec/api',
  'spec/handshake',
  'spec/diagnostics',
  'spec/core',
  'spec/limits',
];

/**
 * Lifecycle: what happens to a socket while its session lives and ends (expiry, touch, logout,
 * destroy and regenerate, disconnectSession and disconnectUser, revalidation, reload, save and
 * autoSave), and presence, which those ends keep true.
 */
const LIFECYCLE = ['spec/live', 'spec/sessions', 'spec/presence'];

/** The test kit users run against their own stacks: every supported version is one of those. */
const KIT = ['spec/testing'];

const ALL = 'every spec/*/*.spec.ts';

interface Leg {
  name: string;
  stack: Stack;
  /** The Node.js line (major) its `node --test` runs on. */
  node: NodeLine;
  /** ALL, or the folders of spec/ it runs. */
  folders: typeof ALL | readonly string[];
  /** Why this leg, in a few words (the Compatibility table shows it). */
  why: string;
}

const newest: Stack = {
  SOCKET_IO: '4.8',
  EXPRESS: '5',
  PASSPORT: '0.7',
  SESSION: 'default',
  STORE: 'memory',
};
// The folders holding the longest files first: two files run at a time, and a long file started
// last would run alone.
const others = [...CORE, ...LIFECYCLE, ...KIT];

/**
 * Every value of every dimension runs, without the full cross product: besides the newest, the five
 * Socket.IO × Express pairs each carry other values of the remaining dimensions, so that each of
 * those runs on two Socket.IO versions, and each non-default session option with each non-default
 * store. The first keeps to the oldest lines of everything, Node's included, so a failure there is
 * the versions'. Every Node line runs the core, lifecycle, fidelity and kit specs at least once; the
 * newest LTS runs the whole suite; the oldest is the one package.json's `engines` names (checked
 * before a run: `engines` promises no line CI does not run).
 */
const LEGS: readonly Leg[] = [
  {
    name: 'newest',
    stack: newest,
    node: '26',
    folders: ALL,
    why: 'the whole suite, newest versions',
  },
  {
    name: 'sio46-express4',
    stack: { ...newest, SOCKET_IO: '4.6', EXPRESS: '4', PASSPORT: '0.6' },
    node: '20',
    folders: others,
    why: 'the oldest Node, Socket.IO, Express and Passport lines',
  },
  {
    name: 'sio46-express5',
    stack: { ...newest, SOCKET_IO: '4.6', SESSION: 'save-uninitialized', STORE: 'redis' },
    node: '22',
    folders: others,
    why: 'saved uninitialized sessions, Redis',
  },
  {
    name: 'sio47-express4',
    stack: { ...newest, SOCKET_IO: '4.7', EXPRESS: '4', SESSION: 'rolling', STORE: 'redis' },
    node: '20',
    folders: others,
    why: 'rolling sessions, Redis',
  },
  {
    name: 'sio47-express5',
    stack: {
      ...newest,
      SOCKET_IO: '4.7',
      PASSPORT: '0.6',
      SESSION: 'save-uninitialized',
      STORE: 'memorystore',
    },
    node: '22',
    folders: others,
    why: 'Passport 0.6, saved uninitialized sessions, memorystore',
  },
  {
    name: 'sio48-express4',
    stack: { ...newest, EXPRESS: '4', PASSPORT: '0.6', SESSION: 'rolling', STORE: 'memorystore' },
    node: '24',
    folders: others,
    why: 'Passport 0.6, rolling sessions, memorystore',
  },
];

// ---------------------------------------------------------------------------------------------
// How a leg is described
// ---------------------------------------------------------------------------------------------

const root = path.resolve(__dirname, '..');

const version = installedVersion;

const sessionText: Record<Stack['SESSION'], string> = {
  default: '`resave: false`, `saveUninitialized: false`',
  'save-uninitialized': '`resave: true`, `saveUninitialized: true`',
  rolling: '`rolling: true` (`resave`, `saveUninitialized`: false)',
};

function storeText(store: Stack['STORE']): string {
  const pkg = packages.STORE[store];
  if (store === 'memory') return `MemoryStore (express-session ${version(pkg)})`;
  const where = store === 'redis' ? ' on redis-server' : '';
  return `${pkg} ${version(pkg)}${where}`;
}

function versionsLine(leg: Leg, node: NodeBinary): string {
  return [
    `node ${node.version}`,
    `socket.io ${version(packages.SOCKET_IO[leg.stack.SOCKET_IO])}`,
    `express ${version(packages.EXPRESS[leg.stack.EXPRESS])}`,
    `passport ${version(packages.PASSPORT[leg.stack.PASSPORT])}`,
    `session ${leg.stack.SESSION}`,
    `store ${leg.stack.STORE}`,
  ].join(', ');
}

function envOf(leg: Leg): string {
  return (Object.keys(dimensions) as (keyof Stack)[]).map((d) => `${d}=${leg.stack[d]}`).join(' ');
}

/** The leg's environment and Node line, as the run and --list print it. */
function runsOn(leg: Leg): string {
  return `Node ${leg.node}, ${envOf(leg)}`;
}

const groups: [string, readonly string[]][] = [
  ['core', CORE],
  ['lifecycle', LIFECYCLE],
  ['test kit', KIT],
];

/** The leg's specs, by group where it runs a whole group. */
function filesText(leg: Leg): string {
  if (leg.folders === ALL) return 'all (`spec/*/*.spec.ts`)';
  const folders = new Set(leg.folders);
  const parts: string[] = [];
  for (const [name, members] of groups) {
    if (members.every((f) => folders.has(f))) {
      parts.push(name);
      for (const f of members) folders.delete(f);
    }
  }
  parts.push(...[...folders].map((f) => `\`${f}\``));
  return parts.join(', ');
}

// ---------------------------------------------------------------------------------------------
// The Compatibility table (docs/compatibility.md)
// ---------------------------------------------------------------------------------------------

/** The page whose table this writes, from the repository's root. */
const COMPATIBILITY_PAGE = 'docs/compatibility.md';
const START = '<!-- legs:start -->';
const END = '<!-- legs:end -->';

function readmeTable(): string {
  const rows = LEGS.map((leg) =>
    [
      `\`${leg.name}\``,
      leg.why,
      leg.node,
      version(packages.SOCKET_IO[leg.stack.SOCKET_IO]),
      version(packages.EXPRESS[leg.stack.EXPRESS]),
      version(packages.PASSPORT[leg.stack.PASSPORT]),
      sessionText[leg.stack.SESSION],
      storeText(leg.stack.STORE),
      filesText(leg),
    ].join(' | '),
  );
  const list = (folders: readonly string[]): string =>
    [...folders]
      .sort()
      .map((f) => `\`${f}/\``)
      .join(', ');
  const grouped = new Set(groups.flatMap(([, folders]) => folders));
  const newestOnly = specFolders().filter((f) => !grouped.has(f));
  return [
    START,
    '',
    'Written by `npm run spec:legs -- --readme` from `spec/legs.ts`, which `npm test` (and CI) runs; a run refuses to start when this table is out of date.',
    '',
    '| leg | what it adds | Node.js | socket.io | Express | Passport | express-session options | session store | specs |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((row) => `| ${row} |`),
    '',
    ...groups.map(([name, folders]) => `- **${name}**: ${list(folders)}`),
    `- **newest only**: ${list(newestOnly)}`,
    "- **Express**: the leg's major is the one of every test app whose test does not name one; tests that name Express 4 or 5 themselves (to run both) keep it on every leg.",
    `- **Node.js**: the leg's line runs on the machine's own Node when it is of that line, else on the release \`spec/support/node-lines.ts\` pins (${Object.values(nodeReleases).join(', ')}), installed on first use from the npm registry's \`node\` package into \`node_modules/.cache/node-lines/\`. Child processes the specs start (cluster nodes, client processes, servers, \`npm\`, \`tsc\`) run on the leg's Node too.`,
    '',
    END,
  ].join('\n');
}

/** The page with the table written in, formatted as `npm run format` would. */
async function readmeWithTable(readmePath: string, readme: string): Promise<string> {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start === -1 || end === -1 || end < start) {
    throw new Error(`${COMPATIBILITY_PAGE} has no ${START} … ${END} block for the table`);
  }
  const written = readme.slice(0, start) + readmeTable() + readme.slice(end + END.length);
  const options = (await prettier.resolveConfig(readmePath)) ?? {};
  return prettier.format(written, { ...options, filepath: readmePath });
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/** The spec files of a folder of spec/ (`spec/api`), sorted. */
function specsIn(folder: string): string[] {
  const dir = path.join(root, folder);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.spec.ts'))
    .sort()
    .map((f) => `${folder}/${f}`);
}

/** The folders of spec/ that hold specs (`spec/api`, …), sorted. */
function specFolders(): string[] {
  return readdirSync(path.join(root, 'spec'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && specsIn(`spec/${d.name}`).length > 0)
    .map((d) => `spec/${d.name}`)
    .sort();
}

/** The leg's files, folder by folder. */
function filesOf(leg: Leg): string[] {
  return leg.folders === ALL ? specFolders().flatMap(specsIn) : leg.folders.flatMap(specsIn);
}

/** Spec files outside every folder: no leg would run them. */
function looseSpecs(): string[] {
  return readdirSync(path.join(root, 'spec'))
    .filter((f) => f.endsWith('.spec.ts'))
    .map((f) => `spec/${f}`);
}

interface Outcome {
  leg: Leg;
  node: NodeBinary;
  files: string[];
  /** Folders the leg names that hold no spec. */
  missing: string[];
  seconds: number;
  exitCode: number;
  result: LegResult | undefined;
}

function loud(line: string): void {
  const bar = '*'.repeat(Math.min(100, line.length + 8));
  console.log(`\n${bar}\n*** ${line} ***\n${bar}\n`);
}

async function runLeg(
  leg: Leg,
  node: NodeBinary,
  index: number,
  count: number,
  dir: string,
): Promise<Outcome> {
  const files = filesOf(leg);
  const missing = leg.folders === ALL ? [] : leg.folders.filter((f) => specsIn(f).length === 0);
  for (const folder of missing) loud(`LEG ${leg.name}: ${folder} HAS NO SPECS - THE LEG FAILS`);
  console.log(
    `\n=== leg ${index}/${count} ${leg.name}: node ${node.version}, ${envOf(leg)}, ${files.length} files ===\n`,
  );
  const resultFile = path.join(dir, `${leg.name}.json`);
  const started = performance.now();
  const exitCode = await new Promise<number>((resolve) => {
    const child = spawn(
      node.path,
      [
        '--import',
        'tsx',
        '--test',
        '--test-concurrency=2',
        '--test-timeout=120000',
        '--test-reporter=spec',
        '--test-reporter-destination=stdout',
        '--test-reporter=./spec/support/leg-reporter.mjs',
        `--test-reporter-destination=${resultFile}`,
        ...files,
      ],
      // The leg's Node first on PATH: what the specs run as `npm`, `npx` or `tsc` (scripts that
      // start with `#!/usr/bin/env node`) runs on it too, as it would on a user's machine.
      {
        cwd: root,
        stdio: 'inherit',
        env: {
          ...process.env,
          ...leg.stack,
          PATH: [path.dirname(node.path), process.env.PATH].filter(Boolean).join(path.delimiter),
        },
      },
    );
    child.on('exit', (code, signal) => {
      resolve(code ?? (signal ? 128 : 1));
    });
  });
  const seconds = (performance.now() - started) / 1000;
  let result: LegResult | undefined;
  try {
    result = JSON.parse(readFileSync(resultFile, 'utf8')) as LegResult;
  } catch {
    result = undefined;
  }
  return { leg, node, files, missing, seconds, exitCode, result };
}

function failed(outcome: Outcome): boolean {
  return (
    outcome.exitCode !== 0 ||
    outcome.result === undefined ||
    outcome.result.failed > 0 ||
    outcome.missing.length > 0
  );
}

function summaryLine(outcome: Outcome): string {
  const { leg, node, result } = outcome;
  const files =
    leg.folders === ALL ? `all ${outcome.files.length} files` : `${outcome.files.length} files`;
  const skipped = outcome.missing.length > 0 ? ` (${outcome.missing.length} folders empty)` : '';
  const tests =
    result === undefined
      ? 'no result'
      : `${result.passed}/${result.tests} passed${result.skipped > 0 ? `, ${result.skipped} skipped` : ''}`;
  return [
    failed(outcome) ? 'FAIL' : 'pass',
    leg.name.padEnd(15),
    versionsLine(leg, node).padEnd(110),
    `${files}${skipped}`.padEnd(34),
    tests.padEnd(22),
    `${outcome.seconds.toFixed(1).padStart(6)} s`,
  ].join('  ');
}

/** Why package.json's `engines.node` is not what the legs run, or undefined when it is. */
function checkEngines(): string | undefined {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    engines?: { node?: string };
  };
  const engines = pkg.engines?.node ?? '';
  const lines = [...new Set(LEGS.map((leg) => Number(leg.node)))].sort((a, b) => a - b);
  const unused = Object.keys(nodeReleases).filter((line) => !LEGS.some((leg) => leg.node === line));
  if (unused.length > 0)
    return `spec/support/node-lines.ts pins Node ${unused.join(', ')}, which no leg runs`;
  if (engines !== `>=${String(lines[0])}`) {
    return `package.json's engines.node is "${engines}", but the oldest Node line the legs run is ${String(lines[0])}: make it ">=${String(lines[0])}" or give a leg that line`;
  }
  return undefined;
}

function load(): string {
  return loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const readmePath = path.join(root, COMPATIBILITY_PAGE);
  if (args.includes('--readme')) {
    writeFileSync(readmePath, await readmeWithTable(readmePath, readFileSync(readmePath, 'utf8')));
    console.log(`${COMPATIBILITY_PAGE}: Compatibility table written from spec/legs.ts`);
    return 0;
  }
  if (args.includes('--list')) {
    for (const leg of LEGS) {
      const files = filesOf(leg);
      console.log(
        `${leg.name.padEnd(15)}  ${runsOn(leg)}  ${filesText(leg)}: ${files.length} files`,
      );
      for (const file of files) console.log(`    ${file}`);
    }
    for (const file of looseSpecs()) console.log(`in no folder, run by no leg: ${file}`);
    return 0;
  }
  const loose = looseSpecs();
  if (loose.length > 0) {
    console.error(
      `${loose.join(', ')}: in no folder of spec/, so no leg would run it: move it into the folder of what it tests`,
    );
    return 1;
  }
  const enginesError = checkEngines();
  if (enginesError !== undefined) {
    console.error(enginesError);
    return 1;
  }
  const readme = readFileSync(readmePath, 'utf8');
  if ((await readmeWithTable(readmePath, readme)) !== readme) {
    console.error(
      `${COMPATIBILITY_PAGE}'s table is not what spec/legs.ts runs: run \`npm run spec:legs -- --readme\``,
    );
    return 1;
  }
  const names = args.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !LEGS.some((leg) => leg.name === n));
  if (unknown.length > 0) {
    console.error(
      `unknown leg ${unknown.join(', ')}; the legs: ${LEGS.map((l) => l.name).join(', ')}`,
    );
    return 1;
  }
  const legs = names.length === 0 ? LEGS : LEGS.filter((leg) => names.includes(leg.name));
  // Every binary before the first leg: an install that fails stops the run at once, and its time
  // is not counted in a leg's.
  const binaries = new Map<NodeLine, NodeBinary>();
  for (const leg of legs) {
    if (!binaries.has(leg.node)) binaries.set(leg.node, nodeBinary(leg.node, root));
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'spec-legs-'));
  const loadBefore = load();
  const started = performance.now();
  const outcomes: Outcome[] = [];
  try {
    for (const [i, leg] of legs.entries()) {
      const binary = binaries.get(leg.node);
      if (binary === undefined) throw new Error(`no Node ${leg.node} binary`);
      const outcome = await runLeg(leg, binary, i + 1, legs.length, dir);
      outcomes.push(outcome);
      console.log(`\n${summaryLine(outcome)}\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const total = (performance.now() - started) / 1000;
  console.log('\n=== legs ===');
  for (const outcome of outcomes) console.log(summaryLine(outcome));
  console.log(
    `${total.toFixed(1)} s in all; load average (1, 5, 15 min) ${loadBefore} before, ${load()} after`,
  );
  for (const outcome of outcomes) {
    for (const folder of outcome.missing) {
      console.log(`*** ${outcome.leg.name}: ${folder} has no specs: FAILED ***`);
    }
  }
  const failedLegs = outcomes.filter(failed);
  for (const outcome of failedLegs) {
    console.log(`\n--- ${outcome.leg.name} (${runsOn(outcome.leg)}) failed ---`);
    if (outcome.result === undefined)
      console.log(`node --test exited with ${outcome.exitCode} and no result`);
    for (const failure of outcome.result?.failures ?? []) {
      console.log(
        `✖ ${failure.file}: ${failure.test}\n    ${failure.error.split('\n').join('\n    ')}`,
      );
    }
  }
  return failedLegs.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
