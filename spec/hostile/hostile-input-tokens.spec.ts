// Hostile handshake tokens for passportNamespace, each case a real socket.io-client connection:
// see spec/support/hostile.ts. Malformed, tampered, expired, oversized and non-string tokens are
// refused with ERR_UNAUTHORIZED, never a crash, a hang or an internal error; a valid one connects.
import { test } from 'node:test';
import fc from 'fast-check';
import jwt from 'jsonwebtoken';
import { ExtractJwt, Strategy as JwtStrategy } from 'passport-jwt';
import { passportNamespace, requireAuth } from '../../lib/index.js';
import {
  assertHealthy,
  assertOutcome,
  attemptCase,
  checkCases,
  describeHostile,
  greet,
  show,
  startHostile,
  unauthorized,
} from '../support/hostile.js';
import { users } from '../support/server.js';

const SECRET = 'hostile-jwt-secret';

describeHostile('tokens', 'handshake tokens', () => {
  test('tokens: only a valid JWT authenticates; anything else is a 401, never a crash', async (tc) => {
    const server = await startHostile(tc, ({ io, passport }, onError) => {
      passport.use(
        new JwtStrategy(
          { jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(), secretOrKey: SECRET },
          (payload: { sub?: unknown }, done: (err: unknown, user?: unknown) => void) => {
            const user = users.find((u) => u.id === payload.sub);
            done(null, user ? { id: user.id, username: user.username } : false);
          },
        ),
      );
      greet(requireAuth(passportNamespace(io.of('/api'), passport, ['jwt'], { onError })));
    });
    const { t } = server;
    const valid = jwt.sign({ sub: '1' }, SECRET, { expiresIn: 3600 });
    const [head = '', body = '', signature = ''] = valid.split('.');
    const b64 = (value: unknown): string =>
      Buffer.from(JSON.stringify(value)).toString('base64url');
    const tampered = fc.oneof(
      // Another payload under the same signature; another algorithm; no signature at all.
      fc.jsonValue({ maxDepth: 3 }).map((claims) => `${head}.${b64(claims)}.${signature}`),
      fc.constant(`${b64({ alg: 'none', typ: 'JWT' })}.${body}.`),
      fc.constant(jwt.sign({ sub: '1' }, 'another-secret')),
      fc.constant(jwt.sign({ sub: '1' }, SECRET, { expiresIn: -60 })),
      fc.constant(jwt.sign({ sub: 'nobody' }, SECRET)),
      fc.string({ unit: 'binary', maxLength: 64 }).map((s) => `${head}.${body}.${s}`),
    );
    const garbage = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.string({ minLength: 8000, maxLength: 20_000 }),
      fc.jsonValue({ maxDepth: 3 }),
    );
    const token = fc.oneof(tampered, garbage);

    await checkCases('tokens', token, async (value) => {
      const outcome = await attemptCase('tokens', t.url, '/api', { auth: { token: value } });
      assertOutcome(outcome, unauthorized(), `token ${show(value).slice(0, 200)}`);
    });
    await assertHealthy(server, {
      nsp: '/api',
      headers: {},
      user: 'alice',
      auth: { token: valid },
    });
  });
});
