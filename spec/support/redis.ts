import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createClient } from 'redis';

/** A real redis-server on a free loopback port, that a spec can stop and start again. */
export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server (SIGKILL: an outage, not a shutdown) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and waits until it accepts connections. */
  start(): Promise<void>;
}

/** Whether redis-server is installed. */
export function hasRedis(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Why a spec that needs Redis cannot run, or undefined when it can. Under CI=true a missing
 * redis-server is a failure, never a skip: the caller turns the reason into a thrown error.
 */
export function redisUnavailable(): string | undefined {
  if (hasRedis()) return undefined;
  const reason =
    'redis-server is not installed (apt-get install redis-server, or run bash .ci/run)';
  if (process.env.CI === 'true') throw new Error(`CI=true and ${reason}`);
  console.warn(`\n*** SKIPPED: ${reason} ***\n`);
  return reason;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const { connect } = await import('node:net');
  const start = Date.now();
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => {
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() - start > timeoutMs) throw new Error(`redis-server did not listen on ${port}`);
    // Polled, bounded: another process's port; a failed connect is the only word we get.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Starts a throwaway redis-server (no persistence) on a free port. With `unref`, the server does
 * not keep this process alive: for a server shared by a whole test file, killed at its exit.
 */
export async function startRedis({ unref = false } = {}): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    if (unref) child.unref();
    await waitForPort(port);
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        running.once('exit', () => {
          resolve();
        });
        running.kill('SIGKILL');
      });
    },
    async start() {
      if (child) return;
      await launch();
    },
  };
}

/**
 * A connected Redis client for a session store, and the pub/sub pair of the Redis adapter (its
 * duplicates), errors logged; `quit()` closes the three.
 */
export async function redisClients(url: string) {
  const client = createClient({ url });
  const pub = client.duplicate();
  const sub = client.duplicate();
  for (const c of [client, pub, sub]) {
    c.on('error', (error: unknown) => {
      console.error('redis:', error);
    });
  }
  await Promise.all([client.connect(), pub.connect(), sub.connect()]);
  return {
    client,
    pub,
    sub,
    quit: async (): Promise<void> => {
      await Promise.all([client.quit(), pub.quit(), sub.quit()]);
    },
  };
}
