// Helpers shared by the specs of disconnectSession, disconnectUser, disconnectOnLogout and the
// live-session module: what a client sees when its session ends, and what the server keeps after.
import assert from 'node:assert/strict';
import express, { type RequestHandler } from 'express';
import type { Namespace, Server } from 'socket.io';
import type { Socket as ClientSocket } from 'socket.io-client';
import {
  expectEnded as expectKitEnded,
  type Agent,
  type TestKit,
  type TestSocket,
} from 'socket.io-session-auth/testing';
import {
  SESSION_ENDED_EVENT,
  requireAuth,
  sessionNamespace,
  type SocketEndedCode,
} from '../../lib/index.js';
import { waitFor } from './client.js';
import {
  type TestContext,
  type TestServer,
  pendingOf,
  start,
  signedSidOf as sidOf,
} from './server.js';
import { connected, within } from './bounded.js';
import { activeTimeouts, timersBackTo } from './timers.js';
import { reporting, whoami, type Who } from './whoami.js';
import { serverState, sessionDigest } from '../../lib/core/state.js';

export { activeTimeouts, connected, reporting, start, whoami, within, type Who };
export { timersBackTo as expectTimersBack };
export { sidOf };

/**
 * Session options under which every tracked socket has an expiry timer: the timer checks below
 * then also prove that ending a socket clears its timer.
 */
export const withExpiry = { cookie: { maxAge: 10 * 60 * 1000 } };

// ---------------------------------------------------------------------------------------------
// What the server-side socket reports
// ---------------------------------------------------------------------------------------------

/** How many connected server-side sockets of this session there are, in every namespace. */
export function socketsOf(io: Server, sessionID: string): number {
  let count = 0;
  for (const nsp of io._nsps.values()) {
    for (const socket of nsp.sockets.values()) {
      if ((socket.request as { sessionID?: unknown }).sessionID === sessionID) count++;
    }
  }
  return count;
}

/** `/` (open), `/chat` (guarded) and per-tenant children (guarded), all session-aware. */
export function everyKindOfNamespace({ io, session, passport }: TestContext): void {
  reporting(sessionNamespace(io, session, { passport }));
  reporting(requireAuth(sessionNamespace(io.of('/chat'), session, { passport })));
  reporting(
    requireAuth(sessionNamespace(io.of(/^\/tenant-\w+$/), session, { passport }), {
      authorize: (user, socket) => user.tenants.includes(socket.nsp.name.slice('/tenant-'.length)),
    }),
  );
}

/** A tab of a kit agent, opened on one namespace, and what it saw of its end. */
export interface KitTab {
  nsp: string;
  socket: TestSocket;
  seen: Seen;
}

/**
 * One browser of a kit agent: a tab per namespace, reconnecting as a browser does, each watched
 * with {@link watchEnd}; resolves once every one is in, on the agent's session.
 */
export async function tabsOf(agent: Agent, namespaces: string[]): Promise<KitTab[]> {
  const sessionID = sidOf(agent.cookie);
  return Promise.all(
    namespaces.map(async (nsp) => {
      const socket = await agent.tab({ reconnection: true }).connect(nsp);
      const tab = { nsp, socket, seen: watchEnd(socket) };
      const who = await whoami(socket);
      assert.equal(who.nsp, nsp);
      assert.equal(who.sessionID, sessionID);
      return tab;
    }),
  );
}

/**
 * The kit's expectEnded (session:ended with `code`, then the server's disconnect, no retry), and
 * what it leaves out: the payload's documented message and status, and that the tab saw the one
 * session:ended and the one disconnect, in that order.
 */
export async function expectTabEnded(
  tab: KitTab,
  code: SocketEndedCode,
  what = tab.socket.label,
): Promise<void> {
  await expectKitEnded(tab.socket, code);
  assert.deepEqual(
    tab.seen.events,
    [SESSION_ENDED_EVENT, 'disconnect'],
    `${what}: events in order`,
  );
  assert.deepEqual(
    tab.seen.payloads,
    [{ message: messages[code][0], data: { code, status: messages[code][1] } }],
    `${what}: the session:ended payload`,
  );
  assert.deepEqual(tab.seen.reasons, ['io server disconnect'], `${what}: the disconnect reason`);
}

/** Asserts that `ending` is a promise that resolves with nothing. */
export async function resolvesWithNothing(ending: unknown): Promise<void> {
  assert.ok(ending instanceof Promise);
  assert.equal(await ending, undefined, 'it resolves with nothing');
}

// ---------------------------------------------------------------------------------------------
// App routes used by the specs (installed through createTestServer's `afterSession`)
// ---------------------------------------------------------------------------------------------

/**
 * `POST /visit` stores data in the session (so an anonymous visitor has a saved session and a
 * cookie); `POST /destroy` calls `req.session.destroy()`; `POST /regenerate` calls
 * `req.session.regenerate()`. Both of the latter wait `holdMs` before answering, and answer with
 * what `inspect` says just before the response is sent.
 */
export function appRoutes(inspect: (oldSessionID: string) => unknown, holdMs = 0): RequestHandler {
  const router = express.Router();
  router.post('/visit', (req, res) => {
    (req.session as unknown as { visits?: number }).visits = 1;
    res.json({ ok: true });
  });
  for (const action of ['destroy', 'regenerate'] as const) {
    router.post(`/${action}`, (req, res, next) => {
      const oldSessionID = req.sessionID;
      req.session[action]((err?: unknown) => {
        if (err) {
          next(err);
          return;
        }
        // What the app sees after holding the response, just before sending it.
        setTimeout(() => {
          res.json({ seen: inspect(oldSessionID) });
        }, holdMs);
      });
    });
  }
  return router;
}

/** A kit agent with an anonymous session that holds data (POST /visit of {@link appRoutes}). */
export async function visitor(kit: TestKit): Promise<Agent> {
  const agent = kit.anonymous({ name: 'visitor' });
  const res = await agent.fetch('/visit', { method: 'POST' });
  assert.equal(res.status, 200, `POST /visit answered ${res.status}`);
  await res.arrayBuffer();
  assert.notEqual(agent.cookie, '', 'the visit set a cookie');
  return agent;
}

/** POSTs to a route of the test app as a kit agent (its cookies kept); returns the JSON answer. */
export async function postAs(agent: Agent, path: string): Promise<unknown> {
  const res = await agent.fetch(path, { method: 'POST' });
  assert.equal(res.status, 200, `POST ${path} answered ${res.status}`);
  return res.json();
}

// ---------------------------------------------------------------------------------------------
// What the client sees
// ---------------------------------------------------------------------------------------------

export interface Seen {
  /** `session:ended` and `disconnect`, in the order they arrived. */
  events: string[];
  payloads: unknown[];
  reasons: string[];
}

/** Records what a client socket receives about its end. Call it before the socket connects. */
export function watchEnd(socket: ClientSocket): Seen {
  const seen: Seen = { events: [], payloads: [], reasons: [] };
  socket.on(SESSION_ENDED_EVENT, (payload: unknown) => {
    seen.events.push(SESSION_ENDED_EVENT);
    seen.payloads.push(payload);
  });
  socket.on('disconnect', (reason) => {
    seen.events.push('disconnect');
    seen.reasons.push(reason);
  });
  return seen;
}

const messages: Record<SocketEndedCode, [string, number]> = {
  ERR_SESSION_REVOKED: ['Session revoked', 401],
  ERR_SESSION_ROTATED: ['Session rotated', 401],
  ERR_SESSION_EXPIRED: ['Session expired', 401],
  ERR_FORBIDDEN: ['Forbidden', 403],
  ERR_AUTHORIZE_ERROR: ['Internal Server Error', 500],
  ERR_MIDDLEWARE_TIMEOUT: ['Service Unavailable', 503],
  ERR_RATE_LIMITED: ['Too Many Requests', 429],
};

/**
 * Waits until the client is disconnected, then asserts it got `session:ended` with `code` first,
 * then `disconnect` with the reason 'io server disconnect', and that it stays disconnected
 * (`socket.active` false) even when its Manager would reconnect.
 */
export async function expectEnded(
  socket: ClientSocket,
  seen: Seen,
  code: SocketEndedCode,
  what = 'socket',
): Promise<void> {
  await waitFor(() => seen.events.includes('disconnect'), 5000, `${what} to be disconnected`);
  assert.deepEqual(seen.events, [SESSION_ENDED_EVENT, 'disconnect'], `${what}: events in order`);
  assert.deepEqual(
    seen.payloads,
    [{ message: messages[code][0], data: { code, status: messages[code][1] } }],
    `${what}: the session:ended payload`,
  );
  assert.deepEqual(seen.reasons, ['io server disconnect'], `${what}: the disconnect reason`);
  assert.equal(socket.connected, false, `${what}: connected`);
  // It does not come back by itself: an inactive socket.io-client socket has dropped its Manager
  // subscriptions, so no reconnection of the Manager brings it back (no time window needed).
  assert.equal(socket.active, false, `${what}: active (would reconnect by itself)`);
}

/** Asserts the client is still connected and was told nothing. */
export function expectUntouched(socket: ClientSocket, seen: Seen, what = 'socket'): void {
  assert.equal(socket.connected, true, `${what} should still be connected`);
  assert.deepEqual(seen.events, [], `${what} should have received nothing`);
}

// ---------------------------------------------------------------------------------------------
// What the server keeps
// ---------------------------------------------------------------------------------------------

export interface Leftovers {
  /** Namespaces to check, by name ('/', '/chat', '/tenant-acme'). */
  namespaces: string[];
  /** Session IDs of which no socket, and no room, may be left. */
  sessionIDs?: string[];
  /** User keys of which no socket, and no room, may be left. */
  userKeys?: string[];
  /** How many sockets each namespace still has (others' sockets); 0 when not listed. */
  remaining?: Record<string, number>;
}

const sessionRoomPrefix = 'session-auth:session:';
const userRoomPrefix = 'session-auth:user:';

/** The package's room (and revocation key) of a session: named by the digest of its ID. */
export function sessionRoom(sid: string): string {
  return `${sessionRoomPrefix}${sessionDigest(sid)}`;
}

/**
 * Asserts the server keeps nothing of the ended sessions or users: no socket (`nsp.sockets`,
 * `fetchSockets()`, pending handshakes), no `session-auth:` room for them, and, in namespaces
 * where nobody is left, no `session-auth:` room at all.
 */
export async function expectNothingLeft(io: Server, leftovers: Leftovers): Promise<void> {
  const sessionIDs = new Set(leftovers.sessionIDs ?? []);
  const userKeys = new Set(leftovers.userKeys ?? []);
  const forbidden = new Set([
    ...[...sessionIDs].map(sessionRoom),
    ...[...userKeys].map((key) => `${userRoomPrefix}${key}`),
  ]);
  for (const name of leftovers.namespaces) {
    const nsp = io._nsps.get(name);
    const expected = leftovers.remaining?.[name] ?? 0;
    // A child of a dynamic namespace that nobody got into is removed: it keeps nothing.
    if (!nsp && expected === 0 && name.startsWith('/tenant-')) continue;
    assert.ok(nsp, `namespace ${name} exists`);
    await waitFor(
      () => nsp.sockets.size === expected,
      3000,
      `${name} to have ${expected} sockets (has ${nsp.sockets.size})`,
    );
    await waitFor(() => pendingOf(nsp) === 0, 3000, `${name}: pending handshakes to be gone`);
    for (const socket of nsp.sockets.values()) {
      const { sessionID } = socket.request as { sessionID?: unknown };
      assert.ok(
        typeof sessionID !== 'string' || !sessionIDs.has(sessionID),
        `${name}: a socket of ended session ${String(sessionID)} is left`,
      );
      const user = socket.request.user?.id;
      assert.ok(
        user === undefined || !userKeys.has(user),
        `${name}: a socket of user ${user} left`,
      );
    }
    const fetched = await nsp.fetchSockets();
    assert.equal(fetched.length, expected, `${name}: fetchSockets()`);
    for (const remote of fetched) {
      for (const room of remote.rooms) {
        assert.ok(!forbidden.has(room), `${name}: fetchSockets() shows a socket in ${room}`);
      }
    }
    for (const key of sessionAuthRooms(nsp)) {
      assert.ok(!forbidden.has(key), `${name}: ${key} is left`);
      if (expected === 0) assert.fail(`${name}: ${key} is left`);
    }
  }
}

/**
 * What the package tracks of a namespace's sockets, sorted, in the names its revocations use
 * (`session-auth:session:<digest>`, `session-auth:user:<key>`): the sessions and users in its index
 * (lib/core/state.ts), and any `session-auth:` room (with connectionStateRecovery, a socket joins one).
 */
export function sessionAuthRooms(nsp: Namespace): string[] {
  const server = serverState(nsp.server);
  const keys = new Set<string>();
  for (const digest of server.bySession.keys()) {
    if (server.bySession.get(digest).some((s) => s.socket.nsp === nsp)) {
      keys.add(`${sessionRoomPrefix}${digest}`);
    }
  }
  for (const user of server.byUser.keys()) {
    if (server.byUser.get(user).some((s) => s.socket.nsp === nsp)) {
      keys.add(`session-auth:user:${user}`);
    }
  }
  for (const room of nsp.adapter.rooms.keys()) {
    if (room.startsWith('session-auth:')) keys.add(room);
  }
  return [...keys].sort();
}

// ---------------------------------------------------------------------------------------------
// A handshake caught between sessionNamespace and 'connection' when its session ends
// ---------------------------------------------------------------------------------------------

/**
 * Logs alice in, holds her handshake to `/slow` inside an async `authorize` (after
 * sessionNamespace has tracked it), runs `end` (a logout, a disconnectSession), then lets the
 * handshake finish. Asserts the socket is refused, or let in and ended at once with
 * ERR_SESSION_REVOKED; the caller asserts what is left.
 */
export async function endedMidHandshake(
  tc: Parameters<typeof start>[0],
  options: Parameters<typeof start>[2],
  end: (t: TestServer, cookie: string) => Promise<unknown>,
): Promise<{ t: TestServer; socket: ClientSocket; cookie: string }> {
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let arrived = 0;
  const t = await start(
    tc,
    ({ io, session, passport }) => {
      reporting(
        requireAuth(sessionNamespace(io.of('/slow'), session, { passport }), {
          authorize: async () => {
            arrived++;
            await held;
            return true;
          },
        }),
      );
    },
    options,
  );
  const cookie = await t.login('alice');
  const socket = t.connect('/slow', { cookie });
  const seen = watchEnd(socket);
  const outcome = new Promise<string>((resolve) => {
    socket.once('connect', () => {
      resolve('connected');
    });
    socket.once('connect_error', () => {
      resolve('refused');
    });
  });
  await waitFor(() => arrived === 1, 5000, 'the handshake to reach authorize');
  await end(t, cookie);
  release();
  // Refused at connect, or let in and ended at once: either way, not left connected. (A refused
  // socket is gone from the server before its connect_error is sent.)
  if ((await within(outcome, 'the end of the handshake')) === 'connected') {
    await expectEnded(socket, seen, 'ERR_SESSION_REVOKED', 'the socket let in');
  }
  return { t, socket, cookie };
}

/**
 * Deletes a session as the package cannot see: as another process would, through its own store
 * instance on the same backend (or a script deleting the key). The package watches the destroys of
 * the store instances its sockets' sessions came from (an own `destroy` on the instance); this
 * calls the store class's own method, past that instance's. What revalidation is there to catch.
 */
export function destroyElsewhere(store: object, sid: string, done?: (err?: unknown) => void) {
  const { destroy } = Object.getPrototypeOf(store) as {
    destroy: (sid: string, done?: (err?: unknown) => void) => unknown;
  };
  return destroy.call(store, sid, done);
}
