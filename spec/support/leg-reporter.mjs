// A node:test reporter for the leg runner (spec/legs.ts): one JSON line at the end with the
// counts and the failed tests (file, name, first lines of the error), for the leg's summary.
// Plain JavaScript: node:test loads reporters before `--import tsx` can load TypeScript.
import path from 'node:path';
import process from 'node:process';

/** The error a test threw (node:test wraps it in ERR_TEST_FAILURE), without its stack frames. */
function firstLines(error, lines) {
  const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
  const text =
    cause instanceof Error ? (cause.stack ?? `${cause.name}: ${cause.message}`) : String(cause);
  return text
    .split('\n')
    .filter((line) => !/^\s+at /.test(line))
    .slice(0, lines)
    .join('\n');
}

export default async function* legReporter(source) {
  const result = { tests: 0, passed: 0, failed: 0, skipped: 0, failures: [] };
  for await (const event of source) {
    const data = event.data;
    if (!data || (event.type !== 'test:pass' && event.type !== 'test:fail')) continue;
    // Suites (describe) are reported too: count the tests in them only.
    if (data.details?.type === 'suite') continue;
    result.tests++;
    if (data.skip !== undefined && data.skip !== false) result.skipped++;
    else if (data.todo !== undefined && data.todo !== false) result.skipped++;
    else if (event.type === 'test:pass') result.passed++;
    else {
      result.failed++;
      result.failures.push({
        file: data.file === undefined ? '?' : path.relative(process.cwd(), data.file),
        test: data.name,
        error: firstLines(data.details?.error, 12),
      });
    }
  }
  yield `${JSON.stringify(result)}\n`;
}
