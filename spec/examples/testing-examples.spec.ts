// The demo's tests shown in docs/testing.md ("The demo's tests") are the files
// examples/passport/test/*.test.ts, to the character, and both pass: the node:test one under
// `node --test`, the Vitest one under Vitest 4, each in its own process, each with a real
// redis-server for its two-node story.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';

const root = path.resolve(__dirname, '..', '..');
const NODE_EXAMPLE = 'examples/passport/test/demo.node.test.ts';
const VITEST_EXAMPLE = 'examples/passport/test/demo.vitest.test.ts';
const noRedis = redisUnavailable();

interface Run {
  code: number | string | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  // Without the runner's own variables: a child `node --test` would report to this runner.
  const { NODE_TEST_CONTEXT: _context, ...inherited } = process.env;
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd: root, timeout: 90_000, env: { ...inherited, ...env }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (error.code ?? error.signal ?? 'failed') : 0, stdout, stderr });
      },
    );
  });
}

/** The page that shows the demo's tests. */
const PAGE = 'docs/testing.md';

/** The ```ts block the page puts right after `<!-- example: <file> -->`. */
function readmeBlock(file: string): string {
  const readme = readFileSync(path.join(root, PAGE), 'utf8');
  const marker = `<!-- example: ${file} -->`;
  const at = readme.indexOf(marker);
  assert.ok(at >= 0, `${PAGE} has no ${marker}`);
  const block = /^\s*```ts\n([\s\S]*?)\n```/.exec(readme.slice(at + marker.length));
  assert.ok(block?.[1] !== undefined, `no ts block after ${marker}`);
  return `${block[1]}\n`;
}

describe('the demo’s tests, as docs/testing.md shows them', () => {
  let redis: RedisServer | undefined;
  const env = (): NodeJS.ProcessEnv => (redis ? { REDIS_URL: redis.url } : {});
  const stories = noRedis ? 5 : 6;

  before(async () => {
    if (!noRedis) redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  for (const file of [NODE_EXAMPLE, VITEST_EXAMPLE]) {
    test(`${file} is in ${PAGE}, as it is, in under 80 lines`, () => {
      const source = readFileSync(path.join(root, file), 'utf8');
      assert.equal(readmeBlock(file), source);
      assert.ok(source.split('\n').length <= 80, `${file}: ${source.split('\n').length} lines`);
    });
  }

  test(`node --test ${NODE_EXAMPLE}: every story passes`, async () => {
    const result = await run(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-reporter=tap', NODE_EXAMPLE],
      env(),
    );
    const output = `${result.stdout}\n${result.stderr}`;
    assert.equal(result.code, 0, output);
    assert.match(result.stdout, new RegExp(`^# pass ${stories}$`, 'm'), output);
    assert.match(result.stdout, /^# fail 0$/m, output);
  });

  test(`vitest run ${VITEST_EXAMPLE}: every story passes`, async () => {
    const vitest = path.join(root, 'node_modules', '.bin', 'vitest');
    const result = await run(
      vitest,
      ['run', '--config', 'spec/support/vitest.config.mts', '--reporter=json'],
      { ...env(), VITEST_FILE: VITEST_EXAMPLE },
    );
    const output = `${result.stdout}\n${result.stderr}`;
    assert.equal(result.code, 0, output);
    const report = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as {
      numTotalTests: number;
      numPassedTests: number;
      numFailedTests: number;
    };
    assert.deepEqual(
      [report.numTotalTests, report.numPassedTests, report.numFailedTests],
      [6, stories, 0],
      output,
    );
  });
});
