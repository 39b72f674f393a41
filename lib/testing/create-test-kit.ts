// createTestKit: the app under test on a loopback port (one node, or several on a shared store and
// adapter), agents logged in without a login form in the way, and session control (expire,
// destroy) through the app's own session store. Everything it opens, kit.close() closes.
import { Kit, type KitSettings, type TestKit } from './kit/test-kit.js';
import { checkApp, startNode, type TestKitApp, type TestKitAppFactory } from './kit/nodes.js';

/** Settings of the kit itself, besides the app. */
export interface TestKitSettings {
  /**
   * The route `agent.logout()` posts to.
   * @default '/logout'
   */
  logoutPath?: string;
  /**
   * The route the agents' sockets POST to when the server tells them their cookie nears its end
   * (`session:cookie-expiring`, with `touchIntervalMs`), as your page does: mount
   * `refreshCookieRoute(io)` there. The cookie it sets goes into the agent's jar, which drops
   * cookies past their end as a browser does.
   * @default undefined (the event is received, and only recorded)
   */
  refreshCookiePath?: string;
}

/** Options for {@link createTestKit}: your app's objects, and the kit's settings. */
export interface TestKitOptions extends TestKitApp, TestKitSettings {}

function checkSettings(settings: unknown): KitSettings {
  const { logoutPath = '/logout', refreshCookiePath } = (settings ?? {}) as TestKitSettings;
  for (const [name, path] of [
    ['logoutPath', logoutPath],
    ['refreshCookiePath', refreshCookiePath ?? '/'],
  ] as const) {
    if (typeof path !== 'string' || !path.startsWith('/')) {
      throw new TypeError(`createTestKit: ${name} must be a path starting with '/'`);
    }
  }
  return { logoutPath, refreshCookiePath };
}

/**
 * Starts your app for a test: its HTTP server on `127.0.0.1:0` (unless it already listens), and a
 * kit to log users in, open real sockets, end sessions and start more nodes. `kit.close()` (or
 * `await using`) closes everything it opened.
 *
 * Pass your app's objects, or a factory of them (needed for `kit.node()`: each node is built by
 * one call).
 *
 * @example
 * ```ts
 * import { createTestKit, expectRefused } from 'socket.io-session-auth/testing';
 *
 * test('a member is refused the admin namespace', async (t) => {
 *   const kit = await createTestKit(() => createApp({ sessionSecret: 'test' }));
 *   t.after(() => kit.close());
 *   const bob = await kit.loginAs({ id: '2', username: 'bob', role: 'member' });
 *   await expectRefused(bob.connect('/admin'), 'ERR_FORBIDDEN');
 * });
 * ```
 */
export function createTestKit(options: TestKitOptions): Promise<TestKit>;
export function createTestKit(
  factory: TestKitAppFactory,
  settings?: TestKitSettings,
): Promise<TestKit>;
export function createTestKit(
  appOrFactory: TestKitOptions | TestKitAppFactory,
  settings?: TestKitSettings,
): Promise<TestKit> {
  if (typeof appOrFactory === 'function') {
    const checked = checkSettings(settings);
    return (async () => {
      const first = await startNode(checkApp('createTestKit', await appOrFactory(0)), 0);
      return new Kit(first, appOrFactory, checked);
    })();
  }
  const app = checkApp('createTestKit', appOrFactory);
  if (settings !== undefined) {
    throw new TypeError('createTestKit: with the app as an object, put the settings in it');
  }
  const checked = checkSettings(appOrFactory);
  return startNode(app, 0).then((first) => new Kit(first, undefined, checked));
}
