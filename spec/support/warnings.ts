// The process warnings a spec expects (or expects not to see), by code: the package gives each
// setup warning once per process, with its `SOCKET_IO_SESSION_AUTH_*` code.
import type { TestContext } from 'node:test';

/** The process warnings with `code` emitted from now on, until the test ends. */
export function warningsOf(tc: TestContext, code: string): string[] {
  const messages: string[] = [];
  const listener = (warning: Error & { code?: string }): void => {
    if (warning.code === code) messages.push(warning.message);
  };
  process.on('warning', listener);
  tc.after(() => process.off('warning', listener));
  return messages;
}
