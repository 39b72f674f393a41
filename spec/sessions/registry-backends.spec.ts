// sessionRegistry's backends stay bounded: an entry leaves at its prune time (its session's cookie
// expiry, or keepMs after it was last seen for a session without one), whatever the order of the
// writes. The memory backend (one node) is driven with explicit times, so each case is exact; the
// Redis one runs on a real redis-server (skipped with a warning without one; a failure under
// CI=true).
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { digestOf, sessionDigest } from '../../lib/core/state.js';
import {
  MemoryBackend,
  RedisBackend,
  type RegistryEntry,
} from '../../lib/sessions/registry-backends.js';
import { redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 0, 1);

function entry(sid: string, lastSeenAt: number, expiresAt?: number): RegistryEntry {
  return { sid, createdAt: lastSeenAt, lastSeenAt, ...(expiresAt !== undefined && { expiresAt }) };
}

describe('sessionRegistry in memory: bounded by each entry’s prune time', () => {
  test('a long-lived session written first does not keep the short-lived ones after it', async () => {
    const backend = new MemoryBackend();
    // A "remember me" session of a month, then 50 sessions of an hour (of 50 users who never
    // come back), all written now.
    await backend.write(sessionDigest('month'), 'u0', entry('month', T0, T0 + 30 * DAY), DAY);
    for (let i = 1; i <= 50; i++) {
      await backend.write(sessionDigest(`hour-${i}`), `u${i}`, entry(`h${i}`, T0, T0 + HOUR), DAY);
    }
    assert.equal(backend.size, 51);

    // Two hours later, one more login: the 50 expired ones are gone, the month's stays.
    await backend.write(sessionDigest('late'), 'late', entry('late', T0 + 2 * HOUR), DAY);

    assert.equal(backend.size, 2);
    assert.deepEqual(
      [...(await backend.list('u0', T0 + 2 * HOUR)).keys()],
      [sessionDigest('month')],
    );
  });

  test('a session without a cookie expiry leaves keepMs after it was last seen', async () => {
    const backend = new MemoryBackend();
    await backend.write(sessionDigest('no-expiry'), 'alice', entry('no-expiry', T0), HOUR);
    assert.equal((await backend.list('alice', T0 + HOUR - 1)).size, 1);

    assert.equal((await backend.list('alice', T0 + HOUR)).size, 0, 'listed no more');
    assert.equal(backend.size, 0, 'and gone from memory');
  });

  test('sessions written out of order, then a long idle: each goes at its own time', async () => {
    const backend = new MemoryBackend();
    const ends = [5, 1, 30, 2, 90, 3, 14 * 24 * 60]; // minutes, in write order
    for (const [i, minutes] of ends.entries()) {
      await backend.write(
        sessionDigest(`s${i}`),
        `u${i}`,
        entry(`s${i}`, T0, T0 + minutes * MINUTE),
        DAY,
      );
    }
    // Six minutes on (each minute between stepped through): those of 1, 2, 3 and 5 minutes go.
    await backend.write(
      sessionDigest('t1'),
      'other',
      entry('t1', T0 + 6 * MINUTE, T0 + 7 * MINUTE),
      DAY,
    );
    assert.equal(backend.size, 4, '30 and 90 minutes, two weeks, and t1');
    // Ten days on (more minutes than buckets: the buckets read instead).
    await backend.write(sessionDigest('t2'), 'other', entry('t2', T0 + 10 * DAY), DAY);
    assert.equal(backend.size, 2, 'the two weeks’ one and t2');
  });
});

// Throws under CI=true when redis-server is missing: the spec then fails instead of skipping.
const unavailable = redisUnavailable();

describe(
  'sessionRegistry in Redis: entries past their prune time leave the user’s hash',
  { skip: unavailable ?? false },
  () => {
    let redis: RedisServer | undefined;
    let client: ReturnType<typeof createClient> | undefined;
    const PREFIX = 'reg-spec:';
    const hash = `${PREFIX}u:${digestOf('alice')}`;
    const redisClient = (): ReturnType<typeof createClient> => {
      assert.ok(client, 'the spec’s Redis client');
      return client;
    };

    before(async () => {
      redis = await startRedis();
      client = createClient({ url: redis.url });
      client.on('error', (error: unknown) => {
        console.error('registry-backends spec: redis client:', error);
      });
      await client.connect();
    });
    afterEach(async () => {
      await redisClient().flushAll();
    });
    after(async () => {
      if (client?.isOpen) client.destroy();
      await redis?.stop();
    });

    test('a session without a cookie expiry, last seen more than keepMs ago: pruned by a write, not listed', async () => {
      const backend = new RedisBackend(redisClient(), PREFIX);
      const now = Date.now();
      await backend.write(sessionDigest('week'), 'alice', entry('week', now, now + 7 * DAY), DAY);
      // Its last write two days ago, keepMs a day: as if alice's busy week kept the hash alive.
      await backend.write(sessionDigest('stale'), 'alice', entry('stale', now - 2 * DAY), DAY);
      await backend.write(sessionDigest('fresh'), 'alice', entry('fresh', now), DAY);

      const expected = [sessionDigest('week'), sessionDigest('fresh')].sort();
      assert.deepEqual((await redisClient().hKeys(hash)).sort(), expected);
      assert.deepEqual([...(await backend.list('alice', Date.now())).keys()].sort(), expected);
    });

    test('an entry past its prune time that no write pruned yet: list() leaves it out and removes it', async () => {
      const backend = new RedisBackend(redisClient(), PREFIX);
      const now = Date.now();
      await backend.write(sessionDigest('live'), 'alice', entry('live', now), DAY);
      // As written two days ago with keepMs a day, alice's hash kept alive by her other session.
      const old = { ...entry('old', now - 2 * DAY), pruneAt: now - DAY };
      await redisClient().hSet(hash, sessionDigest('old'), JSON.stringify(old));

      assert.deepEqual(
        [...(await backend.list('alice', Date.now())).keys()],
        [sessionDigest('live')],
      );
      assert.deepEqual(await redisClient().hKeys(hash), [sessionDigest('live')]);
    });
  },
);
