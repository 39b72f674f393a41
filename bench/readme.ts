// Rewrites the Performance table of docs/performance.md, between <!-- bench:start --> and
// <!-- bench:end -->, from a results file, so its figures always come from a bench run.
//
//   npm run bench -- --readme                 run the full bench, then rewrite docs/performance.md
//   npx tsx bench/readme.ts [--results FILE] [--readme FILE]   rewrite from an earlier run
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { renderMarkdown, replaceSection, type Results } from './report.js';

export const RESULTS_FILE = resolve(__dirname, 'results', 'latest.json');
/** The page the Performance table lives on (the README links to it). */
export const README_FILE = resolve(__dirname, '..', 'docs', 'performance.md');

/**
 * Writes `results` into the Performance page's bench section, formatted as `npm run lint` expects. Quick,
 * partial or source runs are refused.
 */
export async function writeReadme(results: Results, readme = README_FILE): Promise<void> {
  const { quick, only, build } = results.meta;
  if (quick || only !== null || build !== 'tsc build') {
    throw new Error(
      'Performance figures come from a full run of the built package: `npm run bench -- --readme`',
    );
  }
  const text = replaceSection(readFileSync(readme, 'utf8'), renderMarkdown(results));
  const config = (await resolveConfig(README_FILE)) ?? {};
  writeFileSync(readme, await format(text, { ...config, filepath: readme, parser: 'markdown' }));
}

function option(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const resultsFile = option(args, '--results') ?? RESULTS_FILE;
  const readme = option(args, '--readme') ?? README_FILE;
  Promise.resolve()
    .then(() => writeReadme(JSON.parse(readFileSync(resultsFile, 'utf8')) as Results, readme))
    .then(
      () => {
        console.log(`${readme}: bench section rewritten from ${resultsFile}`);
      },
      (error: unknown) => {
        console.error(error instanceof Error ? error.message : error);
        process.exit(1);
      },
    );
}
