export { createTestKit } from './create-test-kit.js';
export type { TestKitOptions, TestKitSettings } from './create-test-kit.js';
export type { TestKit } from './kit/test-kit.js';
export type { KitClock } from './kit/kit-clock.js';
export type { LoginAsOptions, LoginWithOptions } from './kit/login.js';
export type { TestKitApp, TestKitAppFactory, TestNode } from './kit/nodes.js';
export type { Agent, AgentRequestInit, AgentSession, ConnectOptions } from './client/agent.js';
export type { Tab, TabOptions } from './client/tab.js';
export type { TestSocket } from './client/test-socket.js';
export type {
  ExpectEventArgsOptions,
  ExpectEventOptions,
  RefuteEventOptions,
} from './client/mailbox.js';
export type { Refusal } from './client/refusal.js';
export { expectAckError, expectEnded, expectRefused } from './expect.js';
export type { AckError, WithinOptions } from './expect.js';
export { expectJoin, expectLeave, expectPresenceDiff, presenceSnapshot } from './presence.js';
export type { ExpectedPresenceDiff, PresenceSnapshotEntry } from './presence.js';
