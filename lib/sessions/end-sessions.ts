// Public: endSessions, "sign out other devices" and "sign out everywhere": a user's sessions
// destroyed in the store (so their HTTP requests are logged out too) and their sockets ended on
// every node.
import type { Server } from 'socket.io';
import { checkOptions, toServer } from '../api/setup.js';
import { ERR_SESSION_REVOKED } from '../core/errors.js';
import { serverState, type SessionDigest } from '../core/state.js';
import { digestKey, endEverywhere } from '../live/revocation.js';
import { findSessions, toUserKey } from './list-sessions.js';
import { storeOf } from './session-registry.js';
import { destroyElsewhere, destroyIn, destroyLocal } from './sessions-across-nodes.js';

/** Options for {@link endSessions}. */
export interface EndSessionsOptions {
  /**
   * Handles of sessions to keep: `sessionHandle(req)` signs out the other devices.
   * @default undefined (none kept)
   */
  except?: string | readonly string[];
  /**
   * Handles of the only sessions to end (those of the user among them).
   * @default undefined (every session of the user)
   */
  only?: string | readonly string[];
}

/** What {@link endSessions} did. */
export interface EndSessionsResult {
  /** Sessions destroyed in the store. */
  sessions: number;
  /** Live sockets they had, over every node, each ended with `session:ended`. */
  sockets: number;
}

const helper = 'endSessions';

function handles(name: string, value: unknown): Set<string> | undefined {
  if (value === undefined) return undefined;
  const list: unknown[] = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [0];
  if (!list.every((h) => typeof h === 'string')) {
    throw new TypeError(`${helper}: options.${name} must be a handle or a list of handles`);
  }
  return new Set(list);
}

/**
 * Ends sessions of one user: each is destroyed in the store (its cookie logs in no more) and its
 * sockets receive `session:ended` with `ERR_SESSION_REVOKED` on every node. The sessions are
 * those {@link listSessions} gives: with sockets on any node, and with {@link sessionRegistry},
 * those without. `except` keeps some ("sign out other devices"), `only` ends only those.
 *
 * @example
 * ```ts
 * app.post('/account/sign-out-others', async (req, res) => {
 *   res.json(await endSessions(io, String(req.user.id), { except: sessionHandle(req) }));
 * });
 * ```
 */
export function endSessions(
  io: Server,
  userKey: string,
  options?: EndSessionsOptions,
): Promise<EndSessionsResult> {
  // Mistakes throw at once (not a rejection), as disconnectUser's do.
  const server = toServer(io, helper);
  const key = toUserKey(helper, userKey);
  const { except: kept, only: picked } = checkOptions(helper, options);
  return endChosen(server, key, handles('except', kept), handles('only', picked));
}

async function endChosen(
  server: Server,
  key: string,
  except: Set<string> | undefined,
  only: Set<string> | undefined,
): Promise<EndSessionsResult> {
  const found = await findSessions(server, key);
  const chosen = [...found.values()].filter(
    ({ info }) => !except?.has(info.handle) && (!only || only.has(info.handle)),
  );
  const store = storeOf(server);
  let sessions = 0;
  const bySocket: string[] = [];
  await Promise.all(
    chosen.map(async ({ info, sid }) => {
      if (sid !== undefined && store && (await destroyIn(store, sid))) sessions++;
      else if (info.sockets > 0) bySocket.push(info.handle);
    }),
  );
  // Known only by its sockets: the node that holds one destroys it with that socket's session ID.
  const here = await destroyLocal(serverState(server), key, bySocket);
  const rest = bySocket.filter((handle) => !here.includes(handle));
  sessions += new Set([...here, ...(await destroyElsewhere(server, key, rest))]).size;
  // A backstop: a store whose destroy the package does not hear still has the sockets ended.
  await Promise.all(
    chosen.map(({ info }) =>
      endEverywhere(
        server,
        digestKey(info.handle as SessionDigest),
        ERR_SESSION_REVOKED,
        'destroy',
      ),
    ),
  );
  return { sessions, sockets: chosen.reduce((sum, { info }) => sum + info.sockets, 0) };
}
