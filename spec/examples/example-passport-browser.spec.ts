// The demo app of examples/passport in a real browser: Debian's Chromium, driven by playwright-core,
// against the example started on a free port. Every step is checked on what the page shows, and
// leaves a screenshot in spec/.artifacts/.
//
// Needs /usr/bin/chromium (`apt-get install chromium`). Under CI=true its absence is a failure;
// elsewhere the spec is skipped, loudly.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import session from 'express-session';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { createTestKit, type TestKit } from 'socket.io-session-auth/testing';
import { createApp, type ExampleApp } from '../../examples/passport/app.js';
import { demoAccounts } from '../../examples/passport/users.js';
import { describeInChromium, launchChromium } from '../support/chromium.js';
import { delay } from '../support/client.js';
import { countConnectAttempts } from '../support/connect-attempts.js';
import { sidOf } from '../support/server.js';
import { destroyElsewhere } from '../support/session-ending.js';

const ARTIFACTS = path.join(__dirname, '..', '.artifacts');
const TIMEOUT = 10_000;
/** The widths the layout is checked at: a phone (an iPhone's 390 CSS px) and a desktop. */
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 760 };

/** What spec/support/layout-probe.js measures in a page. */
interface Layout {
  tables: number;
  kicks: number;
  overflowingTables: string[];
  wrappedCells: string[];
  cutPlaceholders: string[];
  kicksOffRow: string[];
  headerRows: number;
  headerHeight: number;
  truncated: string[];
  controls: number;
  overflowing: string[];
  pageWidth: number;
  viewportWidth: number;
}
const layoutProbe = readFileSync(path.join(__dirname, '..', 'support', 'layout-probe.js'), 'utf8');

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

describeInChromium('examples/passport in Chromium', browserSteps);

function browserSteps(): void {
  let demo: ExampleApp;
  let kit: TestKit | undefined;
  let url = '';
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const traffic = new WeakMap<Page, Traffic>();
  let member: Page; // bob, member of globex
  let admin: Page; // alice, admin, member of acme
  let carol: Page; // carol, member of acme
  // The spec's own store, so that a step can delete a session behind the pages' back.
  const store = new session.MemoryStore();
  // Every response with status 404, on every page: a missing favicon would show here.
  const notFound: string[] = [];
  // What each page logged to the console as an error or a warning (a failed request shows here,
  // in red in the browser's console): a page that works as designed logs none.
  const consoleErrors = new Map<Page, string[]>();

  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    // A short presence grace: a user whose last tab closed leaves the online lists in 0.5 s.
    demo = createApp({ sessionSecret: 'browser-spec-secret', store, presenceGraceMs: 500 });
    // The kit starts the demo on a free loopback port; kit.close() closes it (demo.close()).
    kit = await createTestKit(demo);
    url = kit.url;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await kit?.close();
  });

  /** A page in `context`, or in a new browser context (a browser of its own: no cookies). */
  async function newPage(
    context?: BrowserContext,
    viewport: { width: number; height: number } = DESKTOP,
  ): Promise<Page> {
    let owner = context;
    if (!owner) {
      assert.ok(browser, 'Chromium started');
      owner = await browser.newContext({ viewport });
      contexts.push(owner);
    }
    const page = await owner.newPage();
    page.setDefaultTimeout(TIMEOUT);
    traffic.set(page, watchTraffic(page));
    page.on('pageerror', (error) => {
      console.error('page error:', error);
    });
    const logged: string[] = [];
    consoleErrors.set(page, logged);
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') {
        logged.push(`${message.type()}: ${message.text()} (${message.location().url})`);
      }
    });
    page.on('response', (response) => {
      if (response.status() === 404) notFound.push(response.url());
    });
    return page;
  }

  async function screenshot(page: Page, name: string, fullPage = false): Promise<void> {
    await page.screenshot({ path: path.join(ARTIFACTS, `example-passport-${name}.png`), fullPage });
  }

  /** The page declares a favicon, and the server has it (so the browser logs no 404 for it). */
  async function expectFavicon(page: Page): Promise<void> {
    const href = await page.locator('link[rel=icon]').getAttribute('href');
    assert.ok(href, `${page.url()} declares a favicon`);
    const icon = await page.request.get(new URL(href, page.url()).href);
    assert.equal(icon.status(), 200, `${href} is served`);
    assert.match(icon.headers()['content-type'] ?? '', /^image\/svg\+xml/);
  }

  async function measure(page: Page): Promise<Layout> {
    return page.evaluate<Layout>(layoutProbe);
  }

  /** At most two header rows (if any), nothing cut short, no control outside its card, no side scroll. */
  async function expectLayout(page: Page, what: string): Promise<Layout> {
    const layout = await measure(page);
    const seen = JSON.stringify(layout);
    assert.ok(layout.headerRows <= 2, `${what}: header rows, ${seen}`);
    assert.deepEqual(layout.truncated, [], `${what}: header text cut short`);
    assert.ok(layout.controls > 0, `${what}: controls measured`);
    assert.deepEqual(layout.overflowing, [], `${what}: controls outside their card`);
    assert.ok(layout.pageWidth <= layout.viewportWidth, `${what}: no sideways scroll, ${seen}`);
    assert.deepEqual(layout.overflowingTables, [], `${what}: tables wider than their card`);
    assert.deepEqual(layout.wrappedCells, [], `${what}: table cells wrapped`);
    assert.deepEqual(layout.cutPlaceholders, [], `${what}: placeholders cut short`);
    assert.deepEqual(layout.kicksOffRow, [], `${what}: Disconnect not beside the user's field`);
    return layout;
  }

  /** Nothing on the page can be used but "Sign in again": no Sign out, no live button or field. */
  async function expectSignedOut(page: Page): Promise<void> {
    await shows(page.locator('#me'), /^Signed out$/);
    assert.equal(await page.locator('#logout button').isVisible(), false, 'no Sign out button');
    const live = page.locator('main button:enabled, main input:enabled');
    assert.deepEqual(await live.allTextContents(), [], 'no enabled control in the page');
    assert.equal(await page.locator('#banner .action').isVisible(), true, 'Sign in again');
  }

  function passwordOf(username: string): string {
    const account = demoAccounts.find((a) => a.username === username);
    assert.ok(account);
    return account.password;
  }

  async function signIn(page: Page, username: string, password = passwordOf(username)) {
    await page.goto(`${url}/`);
    assert.equal(new URL(page.url()).pathname, '/login', 'strangers land on the login page');
    await expectFavicon(page);
    await page.fill('input[name=username]', username);
    await page.fill('input[name=password]', password);
    await page.click('button[type=submit]');
    await page.waitForLoadState();
    if (new URL(page.url()).pathname === '/') await expectFavicon(page);
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
    const serverConnects = countConnectAttempts(demo.io, '/admin').count;
    const pageTraffic = traffic.get(member);
    assert.ok(pageTraffic);
    assert.equal(pageTraffic.connects('/admin'), 0);
    await member.click('#open-admin');
    await shows(status(member, '#admin'), /^not allowed here$/);
    // Only a window can prove a retry that does not come: the page's client would retry on its
    // own timer (reconnectionDelay 1000 ms ± 50%, so by 1.5 s), and nothing marks that it will
    // not. 2 s covers its first retry.
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
    // Still signed in: Sign out is there, and works (step 5).
    assert.equal(await member.locator('#logout button').isEnabled(), true);
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
    // Who's online, as the other user's page shows it: bob once, however many tabs.
    const bobOnline = admin.locator('#chat .online li', { hasText: 'bob' });
    await shows(bobOnline, /^bob$/);
    assert.equal(await bobOnline.count(), 1, 'bob is listed once, with two tabs open');

    await member.click('#logout button');
    await member.waitForURL(`${url}/login`);
    await shows(otherTab.locator('#banner .message'), 'You were signed out in another tab.');
    assert.equal(await otherTab.locator('#banner .code').textContent(), 'ERR_SESSION_REVOKED');
    await shows(status(otherTab, '#chat'), /^disconnected$/);
    await shows(room(otherTab, 'globex').locator('.status'), /^disconnected$/);
    await expectSignedOut(otherTab);
    assert.deepEqual(consoleErrors.get(otherTab), [], 'the signed-out tab logged no error');
    await admin.locator('#users li', { hasText: 'bob' }).waitFor({ state: 'detached' });
    // Once the grace has passed, bob is gone from the chat's online list too.
    await bobOnline.waitFor({ state: 'detached', timeout: TIMEOUT });
    await shows(admin.locator('#chat .online'), /^alice \(you\)/);
    await screenshot(otherTab, '5a-other-tab-signed-out');
    await screenshot(member, '5b-signed-out-tab');
  });

  test('6. a tenant room: members share it; a member of another tenant is refused', async () => {
    carol = await newPage();
    await signIn(carol, 'carol');
    const acme = room(carol, 'acme');
    await shows(acme.locator('.status'), /^connected$/);
    await shows(acme.locator('.online'), /alice.*carol \(you\)/);
    await acme.locator('.say input[name=text]').fill('acme members only');
    await acme.locator('.say input[name=text]').press('Enter');
    const line = room(admin, 'acme').locator('.messages li', { hasText: 'acme members only' });
    await line.waitFor();
    assert.equal(await line.locator('b').textContent(), 'carol');

    const serverConnects = countConnectAttempts(demo.io, '/tenant-globex').count;
    await carol.fill('#open-tenant input[name=tenant]', 'globex');
    await carol.click('#open-tenant button');
    const globex = room(carol, 'globex');
    await shows(globex.locator('.status'), /^not allowed here$/);
    assert.equal(await globex.locator('.say').isVisible(), false, 'no message form there');
    // Only a window can prove a retry that does not come (see step 3): 2 s covers the client's
    // first retry, at most 1.5 s after the refusal.
    await delay(2000);
    assert.equal(serverConnects(), 1, 'no retry');
    await shows(acme.locator('.status'), /^connected$/);
    await screenshot(carol, '6a-tenant-refused');
    await screenshot(admin, '6b-tenant-room-admin-view');
  });
  test('6b. documents behind a room policy; an admin’s change of access closes what it must, at once', async () => {
    const acme = room(carol, 'acme');
    await acme.locator('button.open-doc', { hasText: 'Salaries' }).click();
    await shows(acme.locator('.doc-status'), 'Salaries: refused (ERR_FORBIDDEN)');
    await acme.locator('button.open-doc', { hasText: 'Roadmap' }).click();
    await shows(acme.locator('.doc-title'), 'Roadmap');
    const aliceAcme = room(admin, 'acme');
    await aliceAcme.locator('button.open-doc', { hasText: 'Roadmap' }).click();
    await shows(aliceAcme.locator('.doc-title'), 'Roadmap');
    await aliceAcme.locator('.note input').fill('ship on Friday');
    await aliceAcme.locator('.note input').press('Enter');
    await shows(acme.locator('.notes'), /alice ship on Friday/);

    // The admin takes acme away from carol: her acme panel closes with the reason, the rest stays.
    const carolEntry = admin.locator('#users li', { hasText: 'carol' });
    await carolEntry.locator('input[name=tenants]').fill('');
    await carolEntry.locator('form.access button').click();
    await shows(admin.locator('#kick-result'), 'carol is now member, tenants: none.');
    await shows(
      acme.locator('.status'),
      'your access was changed: no longer allowed here (ERR_FORBIDDEN)',
    );
    await shows(carol.locator('#me'), /tenants: none$/);
    await shows(status(carol, '#chat'), /^connected$/);
    assert.equal(await carol.locator('#banner').isVisible(), false, 'the session goes on');
    await screenshot(carol, '6c-access-changed');
    await screenshot(admin, '6d-admin-changes-access');

    // And gives it back: carol's page opens acme again by itself.
    await admin
      .locator('#users li', { hasText: 'carol' })
      .locator('input[name=tenants]')
      .fill('acme');
    await admin.locator('#users li', { hasText: 'carol' }).locator('form.access button').click();
    await shows(admin.locator('#kick-result'), 'carol is now member, tenants: acme.');
    await shows(room(carol, 'acme').locator('.status'), /^connected$/);
    await shows(carol.locator('#me'), /tenants: acme$/);
  });
  test('6c. chatting too fast: the page says "slow down" with the wait, and holds the message', async () => {
    await kit?.resetLimits(); // the demo's budget, 5 messages per 10 s per user, from full
    const chat = carol.locator('#chat');
    const input = chat.locator('.say input[name=text]');
    for (let i = 1; i <= 5; i++) {
      await input.fill(`quick ${i}`);
      await input.press('Enter');
      await chat.locator('.messages li', { hasText: `quick ${i}` }).waitFor();
    }
    assert.equal(await chat.locator('.slow-down').isVisible(), false, 'five went through');
    await input.fill('one too many');
    await input.press('Enter');
    const note = await shows(chat.locator('.slow-down'), /^Slow down: you can send again in/);
    const seconds = Number(/in (\d+) s\.$/.exec(note)?.[1]);
    assert.ok(seconds >= 1 && seconds <= 10, note);
    // Nothing is sent meanwhile: the form is off, with the message kept in it.
    assert.equal(await input.isDisabled(), true);
    assert.equal(await chat.locator('.say button').isDisabled(), true);
    assert.equal(await input.inputValue(), 'one too many');
    await screenshot(carol, '6e-slow-down');
  });
  test('7. a session deleted behind the page’s back: the next namespace gets 401, and the page goes to the login page', async () => {
    const cookie = (await carol.context().cookies()).find((c) => c.name === 'connect.sid');
    assert.ok(cookie, 'carol has a session cookie');
    // Straight in the store where the package cannot see it (a cleanup job of another process):
    // no logout, so her sockets stay open.
    await promisify((sid: string, done: (err?: unknown) => void) =>
      destroyElsewhere(store, sid, done),
    )(sidOf(`connect.sid=${cookie.value}`));
    await shows(room(carol, 'acme').locator('.status'), /^connected$/);
    await carol.fill('#open-tenant input[name=tenant]', 'acme-2');
    await carol.click('#open-tenant button');
    await carol.waitForURL(`${url}/login`);
    await screenshot(carol, '7-unauthorized-to-login');
  });

  test('7b. the account page lists both browsers of a user; "Sign out all others" signs the other out, and its page says so', async () => {
    const first = await newPage();
    await signIn(first, 'carol');
    await shows(status(first, '#chat'), /^connected$/);
    await shows(room(first, 'acme').locator('.status'), /^connected$/);
    const second = await newPage();
    await signIn(second, 'carol');
    await second.click('#account a');
    await second.waitForURL(`${url}/account`);
    await expectFavicon(second);
    const rows = second.locator('#devices tbody tr');
    assert.equal(await rows.count(), 2);
    await shows(second.locator('#devices .this-device button'), 'Sign out this device');
    // The first browser's page: /chat and the acme room, on one connection.
    assert.equal(
      await second.locator('#devices tr:not(.this-device) td.sockets').textContent(),
      '2',
    );
    await screenshot(second, '7b-account-page', true);
    // At a phone's width, each device is a block of lines: nothing sticks out.
    await second.setViewportSize(PHONE);
    await expectLayout(second, '390 px, the account page');
    await screenshot(second, '7b-account-page-phone', true);

    await second.click('#sign-out-others button');
    await shows(second.locator('#account-result'), 'Signed out 1 device.');
    assert.equal(await rows.count(), 1);
    await shows(first.locator('#banner .message'), 'You were signed out in another tab.');
    await expectSignedOut(first);
    await screenshot(first, '7b-signed-out-from-another-browser');
  });

  test('8. at phone and desktop widths: a two-row header, every button inside its card', async () => {
    // Someone else online, so that the admin panel shows a Disconnect button.
    const bob = await newPage();
    await signIn(bob, 'bob');
    await shows(status(bob, '#chat'), /^connected$/);

    for (const [viewport, name] of [
      [PHONE, '8a-phone-390'],
      [DESKTOP, '8b-desktop-1280'],
    ] as const) {
      const what = `${viewport.width} px`;
      const page = await newPage(undefined, viewport);
      await signIn(page, 'alice');
      await shows(status(page, '#chat'), /^connected$/);
      await shows(room(page, 'acme').locator('.status'), /^connected$/);
      await shows(status(page, '#admin'), /^connected$/);
      await page.locator('#users li', { hasText: 'bob' }).locator('button.kick').waitFor();
      const layout = await expectLayout(page, what);
      assert.ok(layout.kicks > 0, `${what}: a Disconnect button measured`);
      if (viewport === PHONE) {
        assert.equal(layout.viewportWidth, 390);
        assert.equal(
          layout.headerRows,
          2,
          `${what}: the title and Sign out, then who is signed in`,
        );
      } else {
        assert.equal(layout.headerRows, 1, `${what}: everything on one row`);
      }
      await screenshot(page, name, true);

      // Signed out in another tab of the same browser: still laid out, and nothing is live.
      const otherTab = await newPage(page.context());
      await otherTab.goto(`${url}/`);
      await shows(status(otherTab, '#chat'), /^connected$/);
      await otherTab.click('#logout button');
      await otherTab.waitForURL(`${url}/login`);
      const login = await expectLayout(otherTab, `${what}, the login page`);
      assert.equal(login.tables, 1, `${what}: the demo accounts table measured`);
      await shows(page.locator('#banner .message'), 'You were signed out in another tab.');
      await expectSignedOut(page);
      assert.equal(await page.locator('button.kick').count(), 1, 'the Disconnect button is shown');
      assert.equal(await page.locator('button.kick').isDisabled(), true, 'but not live');
      await expectLayout(page, `${what}, signed out`);
      assert.deepEqual(consoleErrors.get(page), [], `${what}: the signed-out tab logged no error`);
      await screenshot(page, `${name}-signed-out`, true);
    }
  });

  test('9. no page asked for a file the server does not have (the favicon included)', () => {
    assert.deepEqual(notFound, []);
  });

  test('10. no page logged an error or a warning to the console', () => {
    assert.deepEqual([...consoleErrors.values()].flat(), []);
  });
}
