// The dimensions of the stack the specs can run on, and where each version is installed. Free of
// side effects (nothing is loaded), so the leg runner (spec/legs.ts) can use it without choosing a
// stack itself; spec/support/stack.ts loads the stack the environment chooses.
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The values each environment variable takes, the default first. */
export const dimensions = {
  SOCKET_IO: ['4.8', '4.7', '4.6'],
  EXPRESS: ['5', '4'],
  PASSPORT: ['0.7', '0.6'],
  SESSION: ['default', 'save-uninitialized', 'rolling'],
  STORE: ['memory', 'memorystore', 'redis'],
} as const;

export type Dimension = keyof typeof dimensions;
export type ValueOf<D extends Dimension> = (typeof dimensions)[D][number];
export type Stack = { [D in Dimension]: ValueOf<D> };

/** The value of one variable in `env`: its default when unset or empty; an error when unknown. */
export function choose<D extends Dimension>(
  name: D,
  env: Record<string, string | undefined>,
): ValueOf<D> {
  const allowed: readonly string[] = dimensions[name];
  const value = env[name];
  if (value === undefined || value === '') return allowed[0] as ValueOf<D>;
  if (!allowed.includes(value)) {
    throw new Error(`${name}=${value}: expected one of ${allowed.join(', ')}`);
  }
  return value as ValueOf<D>;
}

/** The npm package (or alias) each version is installed as. */
export const packages = {
  SOCKET_IO: { '4.6': 'socket.io46', '4.7': 'socket.io47', '4.8': 'socket.io' },
  EXPRESS: { '4': 'express4', '5': 'express' },
  PASSPORT: { '0.6': 'passport06', '0.7': 'passport' },
  STORE: { memory: 'express-session', memorystore: 'memorystore', redis: 'connect-redis' },
} as const;

/** The express-session options each SESSION stands for (a test's own options win over them). */
export const sessionOptions = {
  default: { resave: false, saveUninitialized: false },
  'save-uninitialized': { resave: true, saveUninitialized: true },
  rolling: { resave: false, saveUninitialized: false, rolling: true },
} as const satisfies Record<ValueOf<'SESSION'>, object>;

/** The version of an installed package (or alias). */
export function installedVersion(name: string): string {
  // socket.io's `exports` leave out package.json: look for it from the resolved entry point up
  // (the entry point is in the package's root or in dist/, lib/, build/…).
  let dir = path.dirname(require.resolve(name));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name !== undefined && pkg.version !== undefined) return pkg.version;
    } catch {
      // no package.json here: go up
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${name}'s entry point`);
    dir = parent;
  }
}
