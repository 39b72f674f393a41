// Install-free type tests: the package's typings, compiled from lib/, as a TypeScript app sees
// them, with every library's own declarations checked (skipLibCheck: false).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const root = path.resolve(__dirname, '..', '..');
const fixtures = path.join(__dirname, '..', 'fixtures', 'types');
const tsconfig = path.join(fixtures, 'tsconfig.json');
const negativeFile = path.join(fixtures, 'negative.ts');
const tsc = path.join(root, 'node_modules', '.bin', 'tsc');

interface Run {
  code: number | null;
  output: string;
}

function run(file: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({
        code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
        output: `${stdout}${stderr}`,
      });
    });
  });
}

test('tsc accepts the consumer fixtures and every @ts-expect-error of the negative ones', async () => {
  const result = await run(tsc, ['--noEmit', '-p', tsconfig], root);
  assert.equal(result.code, 0, `tsc -p ${path.relative(root, tsconfig)} failed:\n${result.output}`);
});

interface Expectation {
  line: number;
  code: number;
  why: string;
}

/** The `// @ts-expect-error TS<code> <why>` lines of the negative fixture (0-based lines). */
function expectations(source: string): Expectation[] {
  const list: Expectation[] = [];
  source.split('\n').forEach((text, line) => {
    const match = /^\s*\/\/ @ts-expect-error TS(\d+) (.+)$/.exec(text);
    if (match) list.push({ line, code: Number(match[1]), why: match[2] ?? '' });
    else assert.doesNotMatch(text, /^\s*\/\/ @ts-expect-error/, `line ${line + 1} names no code`);
  });
  return list;
}

/** The negative fixtures, and how many wrong uses each has at least. */
const negativeFiles = new Map([
  [negativeFile, 20],
  [path.join(fixtures, 'testing-negative.ts'), 7],
]);

test('each wrong use in the negative fixtures fails for the reason its comment gives', () => {
  const sources = new Map([...negativeFiles.keys()].map((f) => [f, readFileSync(f, 'utf8')]));
  const config = ts.getParsedCommandLineOfConfigFile(tsconfig, undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  assert.ok(config, 'the fixture tsconfig did not parse');
  assert.deepEqual(config.errors, []);
  // The same program, with the directives turned into plain comments so the errors show.
  const host = ts.createCompilerHost(config.options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, ...rest) => {
    const source = sources.get(path.resolve(fileName));
    if (source !== undefined) {
      const stripped = source.replaceAll('// @ts-expect-error', '// expected error');
      return ts.createSourceFile(fileName, stripped, languageVersion, true);
    }
    return getSourceFile(fileName, languageVersion, ...rest);
  };
  const program = ts.createProgram({ rootNames: config.fileNames, options: config.options, host });
  const diagnostics = ts.getPreEmitDiagnostics(program);

  const found = new Map<string, { codes: Set<number>; messages: string[] }>();
  const elsewhere: string[] = [];
  for (const d of diagnostics) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const file = d.file ? path.resolve(d.file.fileName) : '';
    if (d.file && sources.has(file) && d.start !== undefined) {
      const { line } = d.file.getLineAndCharacterOfPosition(d.start);
      const key = `${file}:${line}`;
      const entry = found.get(key) ?? { codes: new Set<number>(), messages: [] };
      entry.codes.add(d.code);
      entry.messages.push(`TS${d.code}: ${message}`);
      found.set(key, entry);
    } else {
      elsewhere.push(`${d.file?.fileName ?? '(no file)'}: TS${d.code}: ${message}`);
    }
  }
  assert.deepEqual(elsewhere, [], 'errors outside the negative fixtures');
  const mismatches: string[] = [];
  for (const [file, source] of sources) {
    const expected = expectations(source);
    const minimum = negativeFiles.get(file) ?? 1;
    assert.ok(expected.length >= minimum, `${file}: only ${expected.length} expectations found`);
    const name = path.basename(file);
    for (const { line, code, why } of expected) {
      const key = `${file}:${line + 1}`;
      const entry = found.get(key);
      found.delete(key);
      if (!entry) mismatches.push(`${name} line ${line + 2} (${why}): no error`);
      else if (!entry.codes.has(code)) {
        mismatches.push(
          `${name} line ${line + 2} (${why}): expected TS${code}, got\n${entry.messages.join('\n')}`,
        );
      }
    }
  }
  assert.deepEqual(mismatches, []);
  assert.deepEqual([...found.entries()], [], 'errors on lines with no @ts-expect-error');
});
