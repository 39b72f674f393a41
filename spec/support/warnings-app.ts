// A user's app with one setup mistake, run as its own process so that the process warnings it
// prints (once per process) are its own and reach stderr as a user sees them:
//   node --import tsx spec/support/warnings-app.ts   (forked with an IPC channel)
// Express + express-session + Passport (passport-local) + Socket.IO, set up by createTestServer,
// with `/chat` layered as the README says: requireAuth(sessionNamespace(…, { passport })).
//
// Configuration, from the environment:
//   MISTAKE      `cookie-path`: the session cookie's `path` is `/api` (the app's routes, login
//                included, are under it), which does not cover `/socket.io/`
//   FLUSH_LINE   what to write to stderr when the parent asks it to flush
//
// It tells its parent `{ url }` once it listens. To `'flush'` it writes FLUSH_LINE to stderr,
// after everything printed so far, and answers `'flushed'`. It exits as soon as its parent is gone.
import type { RequestHandler } from 'express';
import { type CreateTestServerOptions, createTestServer } from './server.js';
import { requireAuth, sessionNamespace } from '../../lib/index.js';

const mistakes: Record<string, CreateTestServerOptions> = {
  'cookie-path': { sessionOptions: { cookie: { path: '/api' } } },
};

async function main(): Promise<void> {
  const mistake = process.env.MISTAKE ?? '';
  const options = mistakes[mistake];
  if (!options) throw new Error(`warnings-app: unknown MISTAKE ${mistake}`);
  const t = await createTestServer(({ io, app, session, passport }) => {
    requireAuth(sessionNamespace(io.of('/chat'), session, { passport }));
    app.post('/api/login', passport.authenticate('local') as RequestHandler, (_req, res) => {
      res.json({ ok: true });
    });
  }, options);
  process.on('message', (message) => {
    if (message !== 'flush') return;
    // Warnings are emitted on a later tick than the one that gives them: a macrotask later, every
    // warning of the handshakes the parent has seen answered is printed.
    setImmediate(() => {
      process.stderr.write(`${process.env.FLUSH_LINE ?? ''}\n`, () => process.send?.('flushed'));
    });
  });
  process.on('disconnect', () => {
    void t.cleanup().finally(() => process.exit(0));
  });
  process.send?.({ url: t.url });
}

void main();
