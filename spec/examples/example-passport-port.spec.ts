// `npm run example` on a port that something else holds (a dev server, another copy of the demo):
// server.ts, run as a user runs it, prints one line that names the port and how to choose another,
// and exits non-zero, with no stack trace.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import { within } from '../support/bounded.js';

const SERVER = path.join(__dirname, '..', '..', 'examples', 'passport', 'server.ts');

test('server.ts on a busy port: one line naming the port and how to choose another, exit 1', async () => {
  // Listening as the demo does (no host: every address), so that the demo's listen collides.
  const holder = createServer();
  after(
    () =>
      new Promise<void>((resolve) =>
        holder.close(() => {
          resolve();
        }),
      ),
  );
  await new Promise<void>((resolve) => {
    holder.listen(0, resolve);
  });
  const { port } = holder.address() as AddressInfo;

  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    env: { ...process.env, PORT: String(port), SESSION_SECRET: 'port-spec-secret' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  after(() => {
    child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await within(
    new Promise<number | null>((resolve) => child.on('exit', resolve)),
    'server.ts exiting on a busy port',
    30_000,
  );

  assert.equal(code, 1, `exit code; stderr:\n${stderr}`);
  assert.equal(stdout, '', 'no banner: it never listened');
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line, no stack trace:\n${stderr}`);
  assert.equal(
    lines[0],
    `Port ${port} is already in use (another copy of the demo?). Stop it, or choose another ` +
      'port: PORT=3001 npm run example (PORT=0 picks a free one).',
  );
});
