import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './redis.js';

/** A throwaway PostgreSQL cluster on a free loopback port, that a spec can stop and start again. */
export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust authentication, loopback only). */
  url: string;
  port: number;
  /** `pg_ctl stop -m fast`: every backend is terminated (57P01), the server is down. */
  stop(): Promise<void>;
  /** `pg_ctl start`, on the same port and data, and waits until it accepts connections. */
  start(): Promise<void>;
  /** `pg_ctl restart -m fast`: every connection is dropped, the server is back when it resolves. */
  restart(): Promise<void>;
  /** Stops the server and removes its data directory. */
  destroy(): Promise<void>;
}

/**
 * The directory of PostgreSQL's server binaries (initdb, pg_ctl), or undefined. Debian installs
 * them in /usr/lib/postgresql/<major>/bin, outside PATH; `pg_config --bindir` answers the same
 * where the server is installed elsewhere (it may name a client-only directory: initdb decides).
 */
export function postgresBinDir(): string | undefined {
  const candidates: string[] = [];
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const majors = readdirSync(root)
      .filter((name) => /^\d+$/.test(name))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...majors.map((major) => path.join(root, major, 'bin')));
  }
  const config = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (config.status === 0) candidates.push(config.stdout.trim());
  return candidates.find((dir) => existsSync(path.join(dir, 'initdb')));
}

/**
 * Why a spec that needs Postgres cannot run, or undefined when it can. Under CI=true a missing
 * server is a failure, never a skip: this throws.
 */
export function postgresUnavailable(): string | undefined {
  if (postgresBinDir() !== undefined) return undefined;
  const reason =
    'the PostgreSQL server (initdb, pg_ctl) is not installed (apt-get install postgresql, or run bash .ci/run)';
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`\n*** SKIPPED: ${reason} ***\n`);
  return reason;
}

// Postgres refuses to run as root: as root, its tools run as the `postgres` OS user (which the
// Debian package creates), in a directory that user owns.
const asRoot = process.getuid?.() === 0;

function asPostgres(bin: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

async function run(bin: string, args: string[]): Promise<void> {
  const [command, argv] = asPostgres(bin, args);
  try {
    await promisify(execFile)(command, argv, { timeout: 60_000 });
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`${path.basename(bin)} ${args.join(' ')} failed: ${stderr ?? String(error)}`);
  }
}

/** connect-pg-simple's table.sql, and @socket.io/postgres-adapter's table for large payloads. */
export const SCHEMA = `
  CREATE TABLE IF NOT EXISTS "session" (
    "sid" varchar NOT NULL COLLATE "default" PRIMARY KEY,
    "sess" json NOT NULL,
    "expire" timestamp(6) NOT NULL
  );
  CREATE INDEX IF NOT EXISTS "IDX_session_expire" ON "session" ("expire");
  CREATE TABLE IF NOT EXISTS socket_io_attachments (
    id          bigserial UNIQUE,
    created_at  timestamptz DEFAULT NOW(),
    payload     bytea
  );
`;

/**
 * initdb + pg_ctl start of a new cluster in a temporary directory, on a free loopback port, with
 * the session and adapter tables created. The server is a daemon of its own: `destroy()` it in an
 * `after` hook (and a process `exit` hook stops it if the spec dies first).
 */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (bin === undefined) throw new Error('PostgreSQL server binaries not found');
  const dir = mkdtempSync(path.join(tmpdir(), 'sio-pg-'));
  const data = path.join(dir, 'data');
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  const port = await freePort();
  const pgCtl = path.join(bin, 'pg_ctl');
  await run(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-locale']);
  // The socket in our own directory (not /var/run/postgresql, which may not exist), TCP on
  // loopback only; fsync off: a throwaway cluster.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const start = (): Promise<void> =>
    run(pgCtl, ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', 'start']);
  const stop = (): Promise<void> => run(pgCtl, ['-D', data, '-m', 'fast', '-w', 'stop']);
  let up = false;
  const stopAtExit = (): void => {
    if (!up) return;
    const [command, argv] = asPostgres(pgCtl, ['-D', data, '-m', 'immediate', 'stop']);
    spawnSync(command, argv, { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
  await start();
  up = true;
  process.once('exit', stopAtExit);

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(SCHEMA);
  } finally {
    await client.end();
  }

  return {
    url,
    port,
    async stop() {
      if (!up) return;
      await stop();
      up = false;
    },
    async start() {
      if (up) return;
      await start();
      up = true;
    },
    async restart() {
      if (up) await stop();
      up = false;
      await start();
      up = true;
    },
    async destroy() {
      if (up) await stop();
      up = false;
      process.removeListener('exit', stopAtExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
