// The ES module entry re-exports the CommonJS build, as the package's main entry does: `import`
// and `require()` then share one copy of the kit and of the package it drives.
export {
  createTestKit,
  expectAckError,
  expectEnded,
  expectJoin,
  expectLeave,
  expectPresenceDiff,
  expectRefused,
  presenceSnapshot,
} from './index.js';
export type * from './index.js';
