// The test kit's presence helpers, as a user's test would use them on a real app: a snapshot of
// who is online, expectJoin / expectLeave on the server's presence() (the grace moved by
// kit.clock), expectPresenceDiff on a tab's feed; and what each says when the app does something
// else. Also the `presence` diagnostics channel, which carries no user key.
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { describe, test, type TestContext as NodeTestContext } from 'node:test';
import {
  DIAGNOSTICS_CHANNELS,
  disconnectOnLogout,
  presence,
  requireAuth,
  sessionNamespace,
  type Presence,
  type PresenceMessage,
} from 'socket.io-session-auth';
import {
  createTestKit,
  expectEnded,
  expectJoin,
  expectLeave,
  expectPresenceDiff,
  presenceSnapshot,
  type TestKit,
} from 'socket.io-session-auth/testing';
import { start, type TestServer } from '../support/server.js';

const GRACE_MS = 3000;
const alice: Express.User = { id: '1', username: 'alice', role: 'admin', tenants: ['acme'] };
const bob: Express.User = { id: '2', username: 'bob', role: 'member', tenants: ['globex'] };

/** Rejects with an AssertionError whose message matches. */
async function failsWith(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof Error);
    assert.equal(error.name, 'AssertionError', String(error));
    assert.match(error.message, message);
    return true;
  });
}

/** /chat, guarded, with presence and its feed (a short interval); the kit on the app. */
async function setup(
  tc: NodeTestContext,
): Promise<{ kit: TestKit; online: Presence; io: TestServer['io'] }> {
  let online: Presence | undefined;
  const t = await start(
    tc,
    ({ io, session, passport }) => {
      const chat = requireAuth(sessionNamespace(io.of('/chat'), session, { passport }));
      online = presence(chat, { graceMs: GRACE_MS, feed: { intervalMs: 10 } });
    },
    { afterSession: (io) => [disconnectOnLogout(io)] },
  );
  assert.ok(online);
  const made = online;
  tc.after(() => {
    made.close();
  });
  const kit = await createTestKit({ io: t.io, session: t.session, passport: t.passport });
  tc.after(() => kit.close());
  return { kit, online: made, io: t.io };
}

describe('test kit: presence', () => {
  test('a snapshot, a join, and a leave once the grace has passed on the kit clock', async (tc) => {
    const { kit, online } = await setup(tc);
    assert.deepEqual(presenceSnapshot(online), []);
    const agent = await kit.loginAs(alice);
    const tabs = await agent.connect('/chat', { tabs: 2 });
    const entry = await expectJoin(online, '1');
    assert.equal(entry.connections, 2);
    assert.deepEqual(presenceSnapshot(online), [
      { userKey: '1', user: { id: '1', username: 'alice' }, connections: 2 },
    ]);

    await agent.logout();
    for (const tab of tabs) await expectEnded(tab, 'ERR_SESSION_REVOKED');
    // The package's clock stands still from the first advance: only the next one ends the grace,
    // so this window cannot see a leave, whatever the machine's load.
    await kit.clock.advance(0);
    await failsWith(
      expectLeave(online, '1', { within: 50 }),
      /^expected user '1' to leave, but they are in the grace \(0 connections\).*within 50 ms; events meanwhile: none; online now: '1' \(0\)$/,
    );
    await kit.clock.advance(GRACE_MS);
    await expectLeave(online, '1');
    assert.deepEqual(presenceSnapshot(online), []);
  });

  test("expectJoin waits for a join to come, and says who did join when it's not the one", async (tc) => {
    const { kit, online } = await setup(tc);
    const bobAgent = await kit.loginAs(bob);
    const joining = expectJoin(online, '1');
    const connecting = (await kit.loginAs(alice)).connect('/chat');
    assert.equal((await joining).user && (await joining).userKey, '1');
    await connecting;
    await bobAgent.connect('/chat');
    await failsWith(
      expectJoin(online, '3', { within: 50 }),
      /^expected user '3' to join within 50 ms; events meanwhile: none; online now: '1' \(1\), '2' \(1\)$/,
    );
  });

  test("expectPresenceDiff: the leave a tab's feed receives; a diff that is not it fails, naming it", async (tc) => {
    const { kit, online } = await setup(tc);
    const aliceAgent = await kit.loginAs(alice);
    await aliceAgent.connect('/chat');
    const bobChat = await (await kit.loginAs(bob)).connect('/chat');
    await expectJoin(online, '2');
    await aliceAgent.logout();
    await kit.clock.advance(GRACE_MS);
    await failsWith(
      expectPresenceDiff(bobChat, { leaves: [{ username: 'carol' }] }, { within: 200 }),
      new RegExp(
        String.raw`^expected a presence:diff with joins \[\] and leaves \[ \{ username: 'carol' \} \], ` +
          String.raw`but only .*leaves \[ \{ id: '1', username: 'alice' \} \]`,
      ),
    );
    // The diff that did not match is still there for the next expectation.
    const diff = await expectPresenceDiff(bobChat, { leaves: [{ username: 'alice' }] });
    assert.deepEqual(diff.joins, []);
    assert.throws(() => presenceSnapshot({} as Presence), /^TypeError: presenceSnapshot: /);
  });

  test('the presence diagnostics channel: join and leave, the scope and counts, no user key', async (tc) => {
    const seen: PresenceMessage[] = [];
    const listener = (message: unknown): void => {
      seen.push(message as PresenceMessage);
    };
    diagnosticsChannel.subscribe(DIAGNOSTICS_CHANNELS.presence, listener);
    tc.after(() => diagnosticsChannel.unsubscribe(DIAGNOSTICS_CHANNELS.presence, listener));
    const { kit, online, io } = await setup(tc);
    const agent = await kit.loginAs(alice);
    await agent.connect('/chat', { tabs: 2 });
    // A presence made once alice is connected: her join is on the channel too (a gauge counts her).
    const server = presence(io, { graceMs: 0 });
    tc.after(() => {
      server.close();
    });
    await agent.logout();
    await kit.clock.advance(GRACE_MS);
    await expectLeave(online, '1');
    assert.deepEqual(seen, [
      { scope: '/chat', event: 'join', connections: 1, online: 1 },
      { scope: '*', event: 'join', connections: 1, online: 1 },
      { scope: '*', event: 'leave', connections: 0, online: 0 },
      { scope: '/chat', event: 'leave', connections: 0, online: 0 },
    ]);
  });
});
