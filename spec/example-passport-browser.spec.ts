// The demo app of examples/passport in a real browser: Debian's Chromium, driven by playwright-core,
// against the example started on a free port. Every step is checked on what the page shows, and
// leaves a screenshot in spec/.artifacts/.
//
// Needs /usr/bin/chromium (`apt-get install chromium`). Under CI=true its absence is a failure;
// elsewhere the spec is skipped, loudly.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type Locator,
  type Page,
} from 'playwright-core';
import { createTestKit, type TestKit } from 'socket.io-session-auth/testing';
import { createApp } from '../examples/passport/app.js';
import { demoAccounts } from '../examples/passport/users.js';
import { delay } from './support/client.js';
import { countConnectAttempts } from './support/connect-attempts.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, '.artifacts');
const TIMEOUT = 10_000;

const missing = !existsSync(CHROMIUM);
const inCI = process.env.CI === 'true';
const skip =
  missing && !inCI
    ? `${CHROMIUM} not found: install Debian's Chromium (\`apt-get install chromium\`) to run ` +
      'the browser spec of examples/passport'
    : undefined;
if (skip) console.warn(`\n*** SKIPPED: ${skip} ***\n`);

/** What the page's Socket.IO client sent for one namespace's CONNECT, over any transport. */
interface Traffic {
  connects: (nsp: string) => number;
}

function watchTraffic(page: Page): Traffic {
  const payloads: string[] = [];
  page.on('websocket', (ws) => {
    ws.on('framesent', ({ payload }) => {
      if (typeof payload === 'string') payloads.push(payload);
    });
  });
  page.on('request', (request) => {
    if (request.url().includes('/socket.io/')) payloads.push(request.postData() ?? '');
  });
  return {
    // Engine.IO message (4) carrying a Socket.IO CONNECT (0): "40/admin," (polling batches
    // packets with \x1e between them).
    connects: (nsp) =>
      payloads.flatMap((p) => p.split('\x1e')).filter((p) => p.startsWith(`40${nsp},`)).length,
  };
}

if (missing && inCI) {
  // Fail, never skip, in CI: a missing browser must not pass for a green run.
  test('examples/passport in Chromium', () => {
    assert.fail(
      `${CHROMIUM} not found, and CI=true: the browser spec fails rather than skip. ` +
        'Install it first: apt-get update && apt-get install -y chromium',
    );
  });
} else {
  describe('examples/passport in Chromium', skip ? { skip } : {}, browserSteps);
}

function browserSteps(): void {
  let kit: TestKit;
  let url = '';
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const traffic = new WeakMap<Page, Traffic>();
  let member: Page; // bob, member of globex
  let admin: Page; // alice, admin, member of acme

  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    kit = await createTestKit(() => createApp({ sessionSecret: 'browser-spec-secret' }));
    url = kit.url;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await kit.close();
  });

  async function newPage(context?: BrowserContext): Promise<Page> {
    let owner = context;
    if (!owner) {
      assert.ok(browser, 'Chromium started');
      owner = await browser.newContext({ viewport: { width: 1280, height: 760 } });
      contexts.push(owner);
    }
    const page = await owner.newPage();
    page.setDefaultTimeout(TIMEOUT);
    traffic.set(page, watchTraffic(page));
    page.on('pageerror', (error) => {
      console.error('page error:', error);
    });
    return page;
  }

  async function screenshot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: path.join(ARTIFACTS, `example-passport-${name}.png`) });
  }

  function passwordOf(username: string): string {
    const account = demoAccounts.find((a) => a.username === username);
    assert.ok(account);
    return account.password;
  }

  async function signIn(page: Page, username: string, password = passwordOf(username)) {
    await page.goto(`${url}/`);
    assert.equal(new URL(page.url()).pathname, '/login', 'strangers land on the login page');
    await page.fill('input[name=username]', username);
    await page.fill('input[name=password]', password);
    await page.click('button[type=submit]');
    await page.waitForLoadState();
  }

  /** Waits until `locator`'s text matches, and returns it. */
  async function shows(locator: Locator, text: RegExp | string): Promise<string> {
    await locator.filter({ hasText: text }).first().waitFor({ timeout: TIMEOUT });
    return (await locator.first().textContent()) ?? '';
  }

  const status = (page: Page, panel: string): Locator => page.locator(`${panel} > h2 .status`);
  const room = (page: Page, tenant: string): Locator =>
    page.locator(`#rooms .room[data-tenant="${tenant}"]`);

  test('1. the member and the admin sign in, in two browser contexts', async () => {
    member = await newPage();
    await signIn(member, 'bob', 'not-the-password');
    await shows(member.locator('#login-error'), 'Wrong username or password.');
    await shows(member.locator('#demo-accounts'), /alice.*alice-pass/);
    await screenshot(member, '1a-login-refused');

    await signIn(member, 'bob');
    assert.equal(new URL(member.url()).pathname, '/');
    await shows(member.locator('#me'), 'Signed in as bob (member) · tenants: globex');
    await shows(status(member, '#chat'), /^connected$/);
    await shows(room(member, 'globex').locator('.status'), /^connected$/);
    await shows(status(member, '#admin'), /^closed$/);

    admin = await newPage();
    await signIn(admin, 'alice');
    await shows(admin.locator('#me'), 'Signed in as alice (admin) · tenants: acme');
    await shows(status(admin, '#chat'), /^connected$/);
    await shows(status(admin, '#admin'), /^connected$/);
    await shows(room(admin, 'acme').locator('.status'), /^connected$/);
    await shows(admin.locator('#chat .online'), /alice \(you\).*bob/);
    await screenshot(member, '1b-member-signed-in');
    await screenshot(admin, '1c-admin-signed-in');
  });

  test('2. a chat message from one appears in the other, with the sender name', async () => {
    await member.fill('#chat input[name=text]', 'Hello from the member');
    await member.press('#chat input[name=text]', 'Enter');
    const line = admin.locator('#chat .messages li', { hasText: 'Hello from the member' });
    await line.waitFor();
    assert.equal(await line.locator('b').textContent(), 'bob');

    await admin.fill('#chat input[name=text]', 'Hi bob, admin here');
    await admin.click('#chat button[type=submit]');
    const reply = member.locator('#chat .messages li', { hasText: 'Hi bob, admin here' });
    await reply.waitFor();
    assert.equal(await reply.locator('b').textContent(), 'alice');
    await shows(member.locator('#chat .online'), /alice.*admin.*bob \(you\)/);
    await screenshot(admin, '2a-chat-admin-view');
    await screenshot(member, '2b-chat-member-view');
  });

  test('3. the member opening the admin section sees "not allowed here", and nothing retries', async () => {
    const serverConnects = countConnectAttempts(kit.io, '/admin').count;
    const pageTraffic = traffic.get(member);
    assert.ok(pageTraffic);
    assert.equal(pageTraffic.connects('/admin'), 0);
    await member.click('#open-admin');
    await shows(status(member, '#admin'), /^not allowed here$/);
    await delay(2000);
    assert.equal(pageTraffic.connects('/admin'), 1, 'the page sent one CONNECT for /admin');
    assert.equal(serverConnects(), 1, 'the server saw one attempt in 2 s');
    assert.equal(await status(member, '#admin').textContent(), 'not allowed here');
    assert.equal(await member.locator('#users li').count(), 0, 'no user list for a member');
    // The rest of the page is unaffected.
    await shows(status(member, '#chat'), /^connected$/);
    await screenshot(member, '3-member-admin-refused');
  });

  test('4. the admin disconnects the member, and the member’s page shows it', async () => {
    const bobEntry = admin.locator('#users li', { hasText: 'bob' });
    await bobEntry.locator('button.kick').click();
    await shows(admin.locator('#kick-result'), 'bob was disconnected.');
    await admin.locator('#users li', { hasText: 'bob' }).waitFor({ state: 'detached' });

    await shows(member.locator('#banner .message'), 'An administrator disconnected you.');
    assert.equal(await member.locator('#banner .code').textContent(), 'ERR_SESSION_REVOKED');
    await shows(status(member, '#chat'), /^disconnected$/);
    await shows(room(member, 'globex').locator('.status'), /^disconnected$/);
    assert.equal(await member.locator('#chat .say input').isDisabled(), true);
    await screenshot(admin, '4a-admin-kicked-member');
    await screenshot(member, '4b-member-kicked');
  });

  test('5. with two tabs, signing out in one ends the other’s sockets, and the page says so', async () => {
    // The kicked member's session still holds: "Reconnect" reloads and reconnects.
    await member.click('#banner .action');
    await shows(status(member, '#chat'), /^connected$/);
    await shows(room(member, 'globex').locator('.status'), /^connected$/);
    const otherTab = await newPage(member.context());
    await otherTab.goto(`${url}/`);
    await shows(status(otherTab, '#chat'), /^connected$/);
    await shows(room(otherTab, 'globex').locator('.status'), /^connected$/);
    await shows(admin.locator('#users li', { hasText: 'bob' }), '2 tabs');

    await member.click('#logout button');
    await member.waitForURL(`${url}/login`);
    await shows(otherTab.locator('#banner .message'), 'You were signed out in another tab.');
    assert.equal(await otherTab.locator('#banner .code').textContent(), 'ERR_SESSION_REVOKED');
    await shows(status(otherTab, '#chat'), /^disconnected$/);
    await shows(room(otherTab, 'globex').locator('.status'), /^disconnected$/);
    await admin.locator('#users li', { hasText: 'bob' }).waitFor({ state: 'detached' });
    await screenshot(otherTab, '5a-other-tab-signed-out');
    await screenshot(member, '5b-signed-out-tab');

    // A namespace opened now finds no user: 401, and the page goes to the login page.
    await otherTab.fill('#open-tenant input[name=tenant]', 'globex-2');
    await otherTab.click('#open-tenant button');
    await otherTab.waitForURL(`${url}/login`);
    await screenshot(otherTab, '5c-unauthorized-to-login');
  });

  test('6. a tenant room: members share it; a member of another tenant is refused', async () => {
    const carol = await newPage();
    await signIn(carol, 'carol');
    const acme = room(carol, 'acme');
    await shows(acme.locator('.status'), /^connected$/);
    await shows(acme.locator('.online'), /alice.*carol \(you\)/);
    await acme.locator('input[name=text]').fill('acme members only');
    await acme.locator('input[name=text]').press('Enter');
    const line = room(admin, 'acme').locator('.messages li', { hasText: 'acme members only' });
    await line.waitFor();
    assert.equal(await line.locator('b').textContent(), 'carol');

    const serverConnects = countConnectAttempts(kit.io, '/tenant-globex').count;
    await carol.fill('#open-tenant input[name=tenant]', 'globex');
    await carol.click('#open-tenant button');
    const globex = room(carol, 'globex');
    await shows(globex.locator('.status'), /^not allowed here$/);
    assert.equal(await globex.locator('.say').isVisible(), false, 'no message form there');
    await delay(1000);
    assert.equal(serverConnects(), 1, 'no retry');
    await shows(acme.locator('.status'), /^connected$/);
    await screenshot(carol, '6a-tenant-refused');
    await screenshot(admin, '6b-tenant-room-admin-view');
  });
}
