// The kit's presence assertions: on the server's `presence()` (who is online now, a user's join or
// leave) and on a tab's client feed (`presence:diff`). Each waits on events, bounded like the
// kit's other waits, and fails saying what was expected and what happened meanwhile.
import { isDeepStrictEqual } from 'node:util';
import type { Presence } from '../presence/presence.js';
import type { PresenceEntry } from '../presence/tracker.js';
import type { PresenceDiff, PresenceFeedEntry } from '../presence/feed.js';
import { DEFAULT_WITHIN_MS, bounded, checkWithin, failure, preview } from './bounded.js';
import { recordOf } from './client/socket-record.js';
import type { TestSocket } from './client/test-socket.js';
import type { WithinOptions } from './expect.js';

/** One user in a {@link presenceSnapshot}: who, their `userData` summary, their connections. */
export interface PresenceSnapshotEntry<Data = unknown> {
  userKey: string;
  user: Data;
  /** Connected sockets in scope (tabs × namespaces); 0 while in the grace. */
  connections: number;
}

/** What {@link expectPresenceDiff} expects: users by some fields of their `userData` summary. */
export interface ExpectedPresenceDiff {
  /** The users the diff announces, in any order. @default [] (none) */
  joins?: Record<string, unknown>[];
  /** The users the diff says are gone, in any order. @default [] (none) */
  leaves?: Record<string, unknown>[];
}

/**
 * Who is online now, in a form to compare with `assert.deepEqual`: each user once, by user key,
 * with their summary and connections, without `since` (a time). Sorted by user key.
 *
 * @example
 * ```ts
 * const online = presence(io.of('/chat'));
 * const alice = await kit.loginAs({ id: '1', username: 'alice' });
 * await alice.connect('/chat', { tabs: 2 });
 * assert.deepEqual(presenceSnapshot(online), [
 *   { userKey: '1', user: { id: '1', username: 'alice' }, connections: 2 },
 * ]);
 * ```
 */
export function presenceSnapshot<Data>(online: Presence<Data>): PresenceSnapshotEntry<Data>[] {
  checkPresence('presenceSnapshot', online);
  return online
    .list()
    .map(({ userKey, user, connections }) => ({ userKey, user, connections }))
    .sort((a, b) => (a.userKey < b.userKey ? -1 : a.userKey > b.userKey ? 1 : 0));
}

/**
 * Asserts that the user (by key: what `serializeUser` stored, as a string) is online: at once if
 * they are, else at their `join`, within `within`. Resolves with their entry. A connect the kit
 * made has already joined when it resolves. With `redis`, online on any node (asked of Redis).
 *
 * @example
 * ```ts
 * await (await kit.loginAs({ id: '1', username: 'alice' })).connect('/chat');
 * const entry = await expectJoin(online, '1');
 * assert.equal(entry.connections, 1);
 * ```
 */
export function expectJoin<Data>(
  online: Presence<Data>,
  userKey: string,
  options: WithinOptions = {},
): Promise<PresenceEntry<Data>> {
  const ms = checkWithin('expectJoin', options.within, DEFAULT_WITHIN_MS);
  checkPresence('expectJoin', online);
  checkKey('expectJoin', userKey);
  const now = online.list().find((entry) => entry.userKey === userKey);
  if (now) return Promise.resolve(now);
  // Listening first, then asking every node (with `redis`; this one's list without): a join
  // that came before the call, on another node, is in the shared list and heard by no listener.
  const found = async (): Promise<PresenceEntry<Data> | undefined> =>
    (await online.listShared()).find((entry) => entry.userKey === userKey);
  return until(online, 'join', userKey, ms, found, () => `expected user '${userKey}' to join`);
}

/**
 * Asserts that the user is offline: at once if they are, else at their `leave` (their last
 * socket gone for the presence's `graceMs`), within `within`. With `redis`, offline on every node. The grace runs on the package's
 * clock: once a test has called `kit.clock.advance`, only a later advance ends it.
 *
 * @example
 * ```ts
 * await alice.logout();
 * await kit.clock.advance(3000); // the grace
 * await expectLeave(online, '1');
 * ```
 */
export async function expectLeave<Data>(
  online: Presence<Data>,
  userKey: string,
  options: WithinOptions = {},
): Promise<void> {
  const ms = checkWithin('expectLeave', options.within, DEFAULT_WITHIN_MS);
  checkPresence('expectLeave', online);
  checkKey('expectLeave', userKey);
  // Offline here may be online on another node (with `redis`): every node is asked, after
  // listening, so that a leave published meanwhile is heard.
  const offline = async (): Promise<true | undefined> =>
    (await online.isOnlineShared(userKey)) ? undefined : true;
  await until(online, 'leave', userKey, ms, offline, () => {
    const entry = online.list().find((e) => e.userKey === userKey);
    const still =
      entry?.connections === 0
        ? 'they are in the grace (0 connections): it runs on the package clock, so a test that ' +
          'advanced kit.clock must advance it past graceMs'
        : `they still have ${String(entry?.connections)} connection(s)`;
    return `expected user '${userKey}' to leave, but ${still}`;
  });
}

/**
 * Resolves at `event` for `userKey`, or with what `already` finds once listening (it is so
 * already); fails after `ms`, naming the events seen meanwhile.
 */
function until<Data, Already>(
  online: Presence<Data>,
  event: 'join' | 'leave',
  userKey: string,
  ms: number,
  already: () => Promise<Already | undefined>,
  expected: () => string,
): Promise<PresenceEntry<Data> | Already> {
  const seen: string[] = [];
  let join: (entry: PresenceEntry<Data>) => void = () => undefined;
  let leave: (entry: PresenceEntry<Data>) => void = () => undefined;
  const heard = new Promise<PresenceEntry<Data> | Already>((resolve) => {
    const hear = (what: 'join' | 'leave') => (entry: PresenceEntry<Data>) => {
      seen.push(`${what} '${entry.userKey}'`);
      if (what === event && entry.userKey === userKey) resolve(entry);
    };
    join = hear('join');
    leave = hear('leave');
    // A failed look (Redis away) leaves the wait to the events.
    already().then(
      (found) => {
        if (found !== undefined) resolve(found);
      },
      () => undefined,
    );
  });
  online.on('join', join).on('leave', leave);
  return bounded(heard, ms, () => {
    const now = online.list().map((e) => `'${e.userKey}' (${e.connections})`);
    return (
      `${expected()} within ${ms} ms; events meanwhile: ${seen.join(', ') || 'none'}; ` +
      `online now: ${now.join(', ') || 'nobody'}`
    );
  }).finally(() => {
    online.off('join', join).off('leave', leave);
  });
}

/**
 * Asserts that a tab's socket receives a `presence:diff` (the client feed of `presence()`) whose
 * joins and leaves are exactly the users expected, each matched by the fields given of its
 * `userData` summary; one already received counts. Diffs that do not match stay in the socket's
 * mailbox. The feed coalesces changes within its `intervalMs`, on the package's clock: expect
 * them together, and once `kit.clock` stands still, a diff held back goes at the next advance.
 * Resolves with the diff.
 *
 * @example
 * ```ts
 * const bobChat = await bob.connect('/chat');
 * await alice.logout();
 * await kit.clock.advance(3000); // the grace
 * await expectPresenceDiff(bobChat, { leaves: [{ username: 'alice' }] });
 * ```
 */
export async function expectPresenceDiff<Data = unknown>(
  socket: TestSocket,
  expected: ExpectedPresenceDiff,
  options: WithinOptions = {},
): Promise<PresenceDiff<Data>> {
  const ms = checkWithin('expectPresenceDiff', options.within, DEFAULT_WITHIN_MS);
  const record = recordOf(socket);
  if (!record) throw new TypeError('expectPresenceDiff: expected a socket opened by the test kit');
  const given: unknown = expected;
  if (given === null || typeof given !== 'object') {
    throw new TypeError(
      "expectPresenceDiff: expected { joins?, leaves? }, such as { leaves: [{ username: 'alice' }] }",
    );
  }
  const joins = checkUsers('joins', expected.joins);
  const leaves = checkUsers('leaves', expected.leaves);
  const where = (diff: PresenceDiff<Data>): boolean =>
    sameUsers(diff.joins, joins) && sameUsers(diff.leaves, leaves);
  try {
    return await socket.expectEvent<PresenceDiff<Data>>('presence:diff', { where, within: ms });
  } catch (error) {
    if (!(error instanceof Error) || error.name !== 'AssertionError') throw error;
    // The diffs it did receive, by their users' summaries: what the test can compare.
    const diffs = record.mailbox
      .filter((mail) => mail.event === 'presence:diff')
      .map(({ args: [diff] }) => describeDiff(diff));
    throw failure(
      `expected a presence:diff with joins ${preview(joins)} and leaves ${preview(leaves)}, ` +
        `but ${diffs.length === 0 ? 'none came' : `only ${diffs.join('; ')}`}: ${error.message}`,
    );
  }
}

function describeDiff(diff: unknown): string {
  const { joins, leaves } = (diff ?? {}) as Partial<PresenceDiff>;
  const users = (entries: unknown): unknown =>
    Array.isArray(entries)
      ? entries.map((entry: Partial<PresenceFeedEntry>) => entry.user)
      : entries;
  return `joins ${preview(users(joins))} and leaves ${preview(users(leaves))}`;
}

/** Each entry matched by one expected user, and as many of each. */
function sameUsers(entries: PresenceFeedEntry[], users: Record<string, unknown>[]): boolean {
  if (!Array.isArray(entries) || entries.length !== users.length) return false;
  const left = [...entries];
  return users.every((want) => {
    const index = left.findIndex((entry) => fits(entry.user, want));
    return index >= 0 && left.splice(index, 1).length === 1;
  });
}

function fits(user: unknown, want: Record<string, unknown>): boolean {
  if (user === null || typeof user !== 'object') return false;
  const got = user as Record<string, unknown>;
  return Object.entries(want).every(([key, value]) => isDeepStrictEqual(got[key], value));
}

function checkUsers(name: string, users: unknown): Record<string, unknown>[] {
  if (users === undefined) return [];
  if (!Array.isArray(users) || !users.every((u) => u !== null && typeof u === 'object')) {
    throw new TypeError(
      `expectPresenceDiff: expected.${name} must be an array of objects, such as [{ username: 'alice' }]`,
    );
  }
  return users as Record<string, unknown>[];
}

function checkPresence(helper: string, online: unknown): void {
  const given = online as Partial<Presence> | null | undefined;
  if (typeof given?.list !== 'function' || typeof given.on !== 'function') {
    throw new TypeError(`${helper}: expected what presence() returns`);
  }
}

function checkKey(helper: string, userKey: unknown): void {
  if (typeof userKey !== 'string') {
    throw new TypeError(`${helper}: userKey must be a string (what serializeUser stored)`);
  }
}
