// The Redis feed's settings check: whether Redis publishes the keyevent notifications the feed
// needs (`notify-keyspace-events`), turned on when allowed. Only an error reply of Redis (NOPERM, an
// unknown command) is a refusal; a command lost with its connection is tried again later.
import type { RedisStoreEventsClient } from './redis.js';

/** keyevent notifications (E), of generic commands (g: del, unlink), expiries (x), evictions (e). */
const NEEDED = ['E', 'g', 'x', 'e'];
/** The classes `A` stands for. */
const ALL_CLASSES = 'g$lshzxetd';

/** What a settings check found: events on, refused by Redis (lasting), or the command failed. */
export type Check = 'on' | 'refused' | 'failed';

/** Whether Redis sends the events; if not, tries to turn them on, else says why not. */
export async function keyspaceEvents(
  client: RedisStoreEventsClient,
  configure: boolean,
): Promise<{ check: 'on' | 'failed' } | { check: 'refused'; message: string }> {
  let flags: string;
  try {
    flags = settingOf(await client.sendCommand(['CONFIG', 'GET', 'notify-keyspace-events']));
  } catch (error) {
    // A managed Redis that refuses CONFIG: with configure false, the setting is the operator's.
    if (!configure) return { check: 'on' };
    if (!isErrorReply(error)) return { check: 'failed' };
    const message =
      `CONFIG GET notify-keyspace-events was refused (${messageOf(error)}), so whether Redis ` +
      `sends the keyspace events the feed needs is unknown: once notify-keyspace-events ` +
      `includes ${NEEDED.join('')} in your Redis's settings, pass configure: false`;
    return { check: 'refused', message };
  }
  const missing = missingFlags(flags);
  if (missing === '') return { check: 'on' };
  const wanted = `notify-keyspace-events must include ${NEEDED.join('')} (it is '${flags}', missing ${missing})`;
  if (!configure) return { check: 'refused', message: `${wanted}, and configure is false` };
  try {
    await client.sendCommand(['CONFIG', 'SET', 'notify-keyspace-events', flags + missing]);
  } catch (error) {
    if (!isErrorReply(error)) return { check: 'failed' };
    const message =
      `${wanted}, and CONFIG SET was refused (${messageOf(error)}): set it in ` +
      "your Redis's settings (on a managed Redis, its parameter group)";
    return { check: 'refused', message };
  }
  return { check: 'on' };
}

/**
 * Whether Redis answered with an error (a refusal: NOPERM, an unknown command), as node-redis
 * (v4 and later) gives it: an `ErrorReply`. Anything else (a dropped connection) is passing.
 */
export function isErrorReply(error: unknown): boolean {
  for (let proto: unknown = error; proto !== null && typeof proto === 'object';) {
    proto = Object.getPrototypeOf(proto);
    const name = (proto as { constructor?: { name?: unknown } } | null)?.constructor?.name;
    if (name === 'ErrorReply') return true;
  }
  return false;
}

/** The value of a CONFIG GET reply: [name, value] (RESP2), or a map or object (RESP3). */
function settingOf(reply: unknown): string {
  if (Array.isArray(reply)) return String(reply[1] ?? '');
  if (reply instanceof Map) return String([...reply.values()][0] ?? '');
  if (reply !== null && typeof reply === 'object') return String(Object.values(reply)[0] ?? '');
  return '';
}

/** The flags of {@link NEEDED} that `flags` lacks (`A` stands for every class). */
export function missingFlags(flags: string): string {
  const has = flags.includes('A') ? flags + ALL_CLASSES : flags;
  return NEEDED.filter((flag) => !has.includes(flag)).join('');
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
