// Runs the demo: `npm run example`. Configuration comes from the environment:
//   PORT            the port to listen on (default 3000; 0 picks a free one)
//   SESSION_SECRET  signs the session cookie (default: a random one, so sessions end on restart)
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
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

// The session store: memorystore's MemoryStore, in this process (see README.md to use Redis).
const demo = createApp({ sessionSecret });

demo.httpServer.listen(port, () => {
  const { port: actual } = demo.httpServer.address() as AddressInfo;
  console.log(`socket.io-session-auth demo: http://localhost:${actual}/`);
  console.log('Demo accounts (username / password, role, tenants):');
  for (const account of demoAccounts) {
    console.log(
      `  ${account.username} / ${account.password}  ${account.role}, ${account.tenants.join(', ')}`,
    );
  }
});

let stopping = false;
function stop(signal: string): void {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: closing`);
  demo.close().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
