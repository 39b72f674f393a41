// Runs the demo: `npm run example`. Configuration comes from the environment:
//   PORT            the port to listen on (default 3000; 0 picks a free one)
//   SESSION_SECRET  signs the session cookie (default: a random one, so sessions end on restart)
//   REDIS_URL       when set, sessions live in Redis and Socket.IO uses the Redis adapter, so
//                   several copies (same SESSION_SECRET, other PORTs) behave as one app
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
import { connectRedis } from './redis.js';
import { demoAccounts } from './users.js';

function portFromEnv(value: string | undefined): number {
  if (value === undefined || value === '') return 3000;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`PORT must be a port number (0-65535), not ${JSON.stringify(value)}`);
  }
  return port;
}

const port = portFromEnv(process.env.PORT);
let sessionSecret = process.env.SESSION_SECRET ?? '';
if (sessionSecret === '') {
  sessionSecret = randomBytes(32).toString('hex');
  console.warn(
    'SESSION_SECRET is not set: using a random one. Sessions end when the server restarts, and ' +
      'several servers would not share them. Set SESSION_SECRET in production.',
  );
}

// The session store and the Socket.IO adapter: Redis when REDIS_URL is set, else memorystore's
// MemoryStore and the in-memory adapter, in this process.
async function main(): Promise<void> {
  const url = process.env.REDIS_URL;
  const redis = url === undefined || url === '' ? undefined : await connectRedis(url);
  const demo = createApp({ sessionSecret, ...redis?.options });

  // A port already taken is a setup mistake, not a crash: one line that says what to do.
  demo.httpServer.once('error', (error: NodeJS.ErrnoException) => {
    const other = port === 3001 ? 3002 : 3001;
    console.error(
      error.code === 'EADDRINUSE'
        ? `Port ${port} is already in use (another copy of the demo?). Stop it, or choose ` +
            `another port: PORT=${other} npm run example (PORT=0 picks a free one).`
        : `Cannot listen on port ${port}: ${error.message}`,
    );
    process.exit(1);
  });
  demo.httpServer.listen(port, () => {
    const { port: actual } = demo.httpServer.address() as AddressInfo;
    console.log(`socket.io-session-auth demo: http://localhost:${actual}/`);
    if (redis) console.log('Sessions and Socket.IO: Redis (REDIS_URL)');
    console.log('Demo accounts (username / password, role, tenants):');
    for (const account of demoAccounts) {
      console.log(
        `  ${account.username} / ${account.password}  ${account.role}, ${account.tenants.join(', ')}`,
      );
    }
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: closing`);
    demo
      .close()
      .then(() => redis?.quit())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(error);
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
