// The Node.js lines the legs run on (spec/legs.ts), and the binary of each. A leg of the running
// Node's line runs on `process.execPath`; a leg of another line runs on the release pinned below,
// installed on first use from the npm registry's `node` package into
// node_modules/.cache/node-lines/<version>/ (never as a devDependency: npm would link its
// `bin/node` into node_modules/.bin, and every npm script would silently run on that Node).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';

/** The release each line installs when the running Node is of another line. */
export const nodeReleases = {
  '20': '20.20.2',
  '22': '22.23.3',
  '24': '24.21.0',
  '26': '26.10.0',
} as const;

export type NodeLine = keyof typeof nodeReleases;

export interface NodeBinary {
  line: NodeLine;
  /** The executable. */
  path: string;
  /** What it says to `-v`, e.g. `v24.21.0`. */
  version: string;
}

/** The line (major) of the Node running this process. */
export function runningLine(): string {
  return process.versions.node.split('.')[0] ?? '';
}

/** What `bin -v` prints, or an error saying what went wrong. */
function versionOf(bin: string): string {
  const result = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(
      `${bin} -v failed (${String(result.status ?? result.signal ?? result.error)}): ${result.stderr}`,
    );
  }
  return result.stdout.trim();
}

/** `dir`'s Node binary, as `npm install --prefix dir node@…` lays it out. */
function binIn(dir: string): string {
  return path.join(dir, 'node_modules', 'node', 'bin', 'node');
}

/**
 * The binary of `line`: this process's own when it is of that line, else the pinned release from
 * the cache under `root`, installed there first when missing. Checked with `-v` either way.
 * `log` hears about an install (it takes a few seconds and about 120 MB).
 */
export function nodeBinary(
  line: NodeLine,
  root: string,
  log: (line: string) => void = console.log,
): NodeBinary {
  if (runningLine() === line) {
    return { line, path: process.execPath, version: versionOf(process.execPath) };
  }
  const release = nodeReleases[line];
  const cache = path.join(root, 'node_modules', '.cache', 'node-lines');
  const dir = path.join(cache, release);
  if (!existsSync(binIn(dir))) {
    log(
      `Node ${line}: installing node@${release} from the npm registry into ${path.relative(root, dir)}`,
    );
    mkdirSync(cache, { recursive: true });
    // Into a folder of its own, then renamed: another run installing at the same time (or one
    // killed halfway) never leaves a half-installed binary where this one looks.
    const staging = mkdtempSync(path.join(cache, `.${release}-`));
    try {
      const npm = spawnSync(
        'npm',
        [
          'install',
          '--no-save',
          '--no-audit',
          '--no-fund',
          '--no-package-lock',
          '--prefix',
          staging,
          `node@${release}`,
        ],
        { cwd: staging, encoding: 'utf8', timeout: 300_000 },
      );
      if (npm.status !== 0) {
        throw new Error(
          `npm install node@${release} failed (${String(npm.status ?? npm.signal ?? npm.error)}):\n${npm.stdout}${npm.stderr}`,
        );
      }
      const installed = versionOf(binIn(staging));
      if (installed !== `v${release}`) {
        throw new Error(`node@${release} from the registry says ${installed}`);
      }
      try {
        renameSync(staging, dir);
      } catch (error) {
        // Another run got there first: its copy is as good as ours.
        if (!existsSync(binIn(dir))) throw error;
      }
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  const version = versionOf(binIn(dir));
  if (version !== `v${release}`) {
    throw new Error(`${binIn(dir)} says ${version}, not v${release}: delete ${dir} to reinstall`);
  }
  return { line, path: binIn(dir), version };
}
