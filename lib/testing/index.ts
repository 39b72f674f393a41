export { createTestKit } from './create-test-kit.js';
export type {
  KitClock,
  LoginAsOptions,
  LoginWithOptions,
  TestKit,
  TestKitAppFactory,
  TestKitOptions,
  TestKitSettings,
} from './create-test-kit.js';
export type { TestKitApp, TestNode } from './kit/nodes.js';
export type {
  Agent,
  AgentRequestInit,
  AgentSession,
  ConnectOptions,
  Tab,
  TabOptions,
} from './client/agent.js';
export type { ExpectEventOptions, RefuteEventOptions, Refusal, TestSocket } from './client/test-socket.js';
export { expectAckError, expectEnded, expectRefused } from './expect.js';
export type { AckError, WithinOptions } from './expect.js';
