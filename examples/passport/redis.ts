// What several copies of the demo share through Redis: the session store, the Socket.IO adapter,
// who is online (presence), and Redis's word when a session is deleted (store events). server.ts
// uses it when REDIS_URL is set; the specs build their nodes with it too.
import { createAdapter } from '@socket.io/redis-adapter';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { redisStoreEvents } from 'socket.io-session-auth';
import type { CreateAppOptions } from './app.js';

/** The store, the adapter and presence's client for createApp, on the Redis at `url`, and how to
 * let go of it. */
export async function connectRedis(url: string): Promise<{
  options: Pick<CreateAppOptions, 'store' | 'adapter' | 'redis' | 'storeEvents'>;
  quit(): Promise<void>;
}> {
  const client = createClient({ url });
  client.on('error', (error: unknown) => {
    console.error('redis:', error);
  });
  const pub = client.duplicate();
  const sub = client.duplicate();
  await Promise.all([client.connect(), pub.connect(), sub.connect()]);
  return {
    options: {
      store: new RedisStore({ client, prefix: 'demo:sess:' }),
      adapter: createAdapter(pub, sub),
      redis: client,
      // A session deleted or expired in Redis, by anyone, ends its sockets on every copy at once.
      storeEvents: redisStoreEvents({ client, prefix: 'demo:sess:' }),
    },
    async quit() {
      await Promise.all([client.quit(), pub.quit(), sub.quit()]);
    },
  };
}
