// Session control through the app's own store, as a script or an admin tool would: a session made
// to expire now (its live sockets on the kit's nodes check at once), deleted, or deleted behind
// the package's back (only a store event feed or revalidation then ends its sockets).
import type { Server } from 'socket.io';
import { asError, failure } from '../bounded.js';
import { KitAgent, type Agent } from '../client/agent.js';
import type { SessionSeen } from './desk.js';
import { recheckExpiryNow } from './expiry-now.js';
import type { LoginContext } from './login.js';

type StoredSession = NonNullable<SessionSeen['session']>;

/** The agent's session in the store, and its ID; throws naming `helper` when there is none. */
async function storedSession(
  kit: LoginContext,
  helper: string,
  agent: Agent,
): Promise<{ session: StoredSession; sessionID: string; store: unknown }> {
  kit.open(helper);
  if (!(agent instanceof KitAgent) || !agent.isOf(kit)) {
    throw new TypeError(`${helper}: expected an agent of this kit`);
  }
  const seen = await kit.desk.read(agent.cookie);
  if (!seen.stored) {
    throw new TypeError(
      `${helper}: the session middleware keeps sessions in the cookie (cookie-session): there ` +
        'is no store to change them in',
    );
  }
  const { session, sessionID, store } = seen;
  if (!session || sessionID === undefined) {
    throw failure(
      `${helper}(${agent.name}): ${agent.name} has no session in the store (logged out, ` +
        'destroyed or expired already?)',
    );
  }
  return { session, sessionID, store };
}

function settle(call: ((cb: (err?: unknown) => void) => unknown) | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (!call) {
      resolve();
      return;
    }
    call((err) => {
      if (err) reject(asError(err));
      else resolve();
    });
  });
}

/**
 * Writes the agent's session back with its cookie expired a second ago, so the store drops it,
 * then has the live sockets of that session on `nodes` run their expiry check at once.
 */
export async function expireSession(
  kit: LoginContext,
  nodes: readonly { io: Server }[],
  agent: Agent,
): Promise<void> {
  const { session, sessionID } = await storedSession(kit, 'kit.expire', agent);
  const { cookie } = session;
  if (!cookie) throw new TypeError(`kit.expire: ${agent.name}'s session has no cookie`);
  // express-session's own Cookie: a store that keeps time itself (memorystore, connect-redis)
  // takes its TTL from it, and drops the session at once.
  cookie.expires = new Date(Date.now() - 1000);
  await settle(session.save?.bind(session));
  for (const node of nodes) recheckExpiryNow(node.io, sessionID);
}

/** Deletes the agent's session from the store. */
export async function destroySession(kit: LoginContext, agent: Agent): Promise<void> {
  const { session } = await storedSession(kit, 'kit.destroy', agent);
  await settle(session.destroy?.bind(session));
}

/**
 * Deletes the agent's session with the store class's own `destroy` (found on its prototype chain,
 * not the instance's: the package wraps that one to end the session's sockets), as an admin script
 * or another app on the same store would.
 */
export async function removeFromStore(kit: LoginContext, agent: Agent): Promise<void> {
  const helper = 'kit.removeFromStore';
  const { sessionID, store } = await storedSession(kit, helper, agent);
  const proto: unknown =
    store === null || typeof store !== 'object' ? undefined : Object.getPrototypeOf(store);
  const destroy = (proto as { destroy?: unknown } | null | undefined)?.destroy;
  if (typeof destroy !== 'function') {
    throw new TypeError(`${helper}: the session store's class has no destroy method`);
  }
  await settle((cb) =>
    (destroy as (sid: string, cb: (err?: unknown) => void) => unknown).call(store, sessionID, cb),
  );
}
