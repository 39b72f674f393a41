// The test kit (socket.io-session-auth/testing, from dist/) on a spec's own server: what a user's
// test does (log in, open tabs, expect refusals and endings) goes through it. Kept apart from
// server.ts so that the specs and node processes that do not use the kit do not load it.
import assert from 'node:assert/strict';
import type { TestContext as NodeTestContext } from 'node:test';
import { createTestKit, type Agent, type TestKit } from 'socket.io-session-auth/testing';
import {
  start,
  users,
  type CreateTestServerOptions,
  type TestContext,
  type TestServer,
} from './server.js';

/**
 * {@link start}, with the test kit on the server: the kit drives it as a user's test would (its
 * agents log in through POST /login, open tabs, expect endings). Both are closed after `tc`.
 */
export async function startWithKit(
  tc: NodeTestContext,
  setup: (ctx: TestContext) => void,
  options?: CreateTestServerOptions,
): Promise<{ t: TestServer; kit: TestKit }> {
  const t = await start(tc, setup, options);
  const kit = await createTestKit({ io: t.io, session: t.session, passport: t.passport });
  tc.after(() => kit.close());
  return { t, kit };
}

/** A kit agent logged in as one of the spec `users` through the app's login form. */
export function logIn(kit: TestKit, username: string): Promise<Agent> {
  const user = users.find((u) => u.username === username);
  assert.ok(user, `no spec user ${username}`);
  return kit.loginWith('/login', { username, password: user.password });
}
