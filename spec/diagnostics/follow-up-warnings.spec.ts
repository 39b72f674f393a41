// Once a setup mistake is named, the warnings that follow from it are not given with another fix.
// Each app runs in a process of its own (spec/support/warnings-app.ts): warnings are once per
// process, and what is checked is what the app prints on stderr, as its developer sees it.
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { ERR_UNAUTHORIZED } from '../../lib/index.js';
import { connectError, within } from '../support/bounded.js';
import { cookieOf } from '../support/server.js';
import { io as ioClient } from 'socket.io-client';

const APP = path.join(__dirname, '..', 'support', 'warnings-app.ts');
const FLUSHED = 'warnings-app: flushed';

interface App {
  url: string;
  /** Everything the app printed on stderr so far. */
  stderr: () => string;
  /** The app's stderr up to a line it writes after everything printed before this call. */
  flushed: () => Promise<string>;
}

async function startApp(tc: TestContext, mistake: string): Promise<App> {
  const child: ChildProcess = fork(APP, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, MISTAKE: mistake, FLUSH_LINE: FLUSHED, NODE_NO_WARNINGS: '' },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  tc.after(async () => {
    if (child.exitCode === null) {
      const exited = once(child, 'exit');
      child.disconnect();
      await exited;
    }
  });
  const [ready] = (await within(once(child, 'message'), 'the app to listen', 30_000)) as [
    { url: string },
  ];
  return {
    url: ready.url,
    stderr: () => stderr,
    flushed: async () => {
      const answered = once(child, 'message');
      child.send('flush');
      await within(answered, 'the app to flush its stderr');
      assert.ok(stderr.includes(FLUSHED), `stderr so far:\n${stderr}`);
      return stderr.slice(0, stderr.indexOf(FLUSHED));
    },
  };
}

/** The codes of the process warnings in a stderr, in order: `(node:123) [CODE] Warning: …`. */
const warningCodes = (stderr: string): string[] =>
  [...stderr.matchAll(/^\(node:\d+\) \[([A-Z_]+)\]/gm)].map((match) => match[1] ?? '');

test('a cookie path that does not cover /socket.io/: named once, with its fix, and nothing after it', async (tc) => {
  const app = await startApp(tc, 'cookie-path');
  const login = await fetch(`${app.url}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: 'alice', password: 'alice-pw' }),
  });
  assert.equal(login.status, 200);
  // Sent anyway (a browser would not even send it to /socket.io/): the session is still skipped.
  const client = ioClient(`${app.url}/chat`, {
    forceNew: true,
    reconnection: false,
    extraHeaders: { cookie: cookieOf(login) },
  });
  tc.after(() => client.disconnect());
  const refused = await connectError(client);
  assert.deepEqual(refused.data, { code: ERR_UNAUTHORIZED, status: 401 });

  const printed = await app.flushed();
  assert.deepEqual(warningCodes(printed), ['SOCKET_IO_SESSION_AUTH_COOKIE_PATH'], printed);
  assert.match(printed, /`path` must be `\/` or a prefix of the Socket\.IO path/);
});
