import assert from 'node:assert/strict';

/** Asserts `fn` throws a TypeError whose message starts with `helper:`. */
export function throwsNaming(fn: () => unknown, helper: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof TypeError, `expected a TypeError, got ${String(error)}`);
    assert.ok(
      error.message.startsWith(`${helper}:`),
      `expected the message to start with "${helper}:", got "${error.message}"`,
    );
    return true;
  });
}
