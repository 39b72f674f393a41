// The demo's limits, with socket.io-session-auth's rateLimit: chat messages per user, open tabs
// per user, and namespace connects per address. A refusal is ERR_RATE_LIMITED (429) with
// `retryAfterMs`: in a `say` ack, or in `connect_error`'s data. The page acts on both.
import type { Namespace, Server } from 'socket.io';
import { rateLimit, type Budget } from 'socket.io-session-auth';

/** The demo's limits: options of `createApp`, which tests set to small numbers. */
export interface LimitOptions {
  /**
   * Chat messages (`say`) a user may send, one budget across their tabs, `/chat` and the tenant
   * rooms (and, with `redis`, every copy): `points` messages per `durationMs` (whole seconds).
   * One more gets the ack `{ error: { code: 'ERR_RATE_LIMITED', retryAfterMs, … } }`, and the
   * message is not sent.
   * @default { points: 5, durationMs: 10_000 }
   */
  messagesPerUser?: Budget;
  /**
   * Tabs a user may have open at once: their `/chat` sockets (every tab opens one; token clients
   * count too). The next is refused with ERR_RATE_LIMITED and does not reconnect.
   * @default 5
   */
  tabsPerUser?: number;
  /**
   * Namespace connects per client address, signed in or not (a tab makes one per panel), checked
   * before the session store is read: a stranger's loop costs no store read.
   * @default { points: 100, durationMs: 60_000 }
   */
  connectsPerIp?: Budget;
}

/**
 * Puts the limits on `io`'s session namespaces. `redis` (the app's node-redis client, with
 * several copies) keeps every budget and count there, one for all copies.
 */
export function limitUsers(
  io: Server,
  chat: Namespace,
  options: LimitOptions & { redis?: object | undefined },
): void {
  const {
    messagesPerUser = { points: 5, durationMs: 10_000 },
    tabsPerUser = 5,
    connectsPerIp = { points: 100, durationMs: 60_000 },
  } = options;
  const shared = options.redis === undefined ? {} : { redis: options.redis };
  // Server-wide: one `say` budget for /chat and every tenant room, and the address limit on
  // every namespace (a stranger guessing tenant names included). Only `say` is counted.
  rateLimit(io, {
    connections: { perIp: connectsPerIp },
    events: { budgets: { say: messagesPerUser } },
    ...shared,
  });
  // Tabs: /chat alone, which every tab opens once (a tab's tenant and admin panels are not
  // more tabs).
  rateLimit(chat, { connections: { perUser: tabsPerUser }, ...shared });
}
