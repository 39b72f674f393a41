// Debian's Chromium, driven by playwright-core, for the specs that run pages in a real browser.
// Without /usr/bin/chromium (`apt-get install chromium`) such a spec is skipped, loudly; under
// CI=true it fails instead, so that a missing browser never passes for a green run.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** `describe(name, steps)`, or a loud skip without Chromium, or a failure without it in CI. */
export function describeInChromium(name: string, steps: () => void): void {
  if (existsSync(CHROMIUM)) {
    describe(name, steps);
    return;
  }
  if (process.env.CI === 'true') {
    test(name, () => {
      assert.fail(
        `${CHROMIUM} not found, and CI=true: the browser spec fails rather than skip. ` +
          'Install it first: apt-get update && apt-get install -y chromium',
      );
    });
    return;
  }
  const skip =
    `${CHROMIUM} not found: install Debian's Chromium (\`apt-get install chromium\`) to run ` +
    `"${name}"`;
  console.warn(`\n*** SKIPPED: ${skip} ***\n`);
  describe(name, { skip }, steps);
}

/** Starts headless Chromium, with nothing of its own going to the network. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
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
}
