// What several copies of the demo share through Redis: the session store and the Socket.IO
// adapter. server.ts uses it when REDIS_URL is set; the specs build their nodes with it too.
import { createAdapter } from '@socket.io/redis-adapter';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import type { CreateAppOptions } from './app.js';

/** The store and the adapter for createApp, on the Redis at `url`, and how to let go of it. */
export async function connectRedis(
  url: string,
): Promise<{ options: Pick<CreateAppOptions, 'store' | 'adapter'>; quit(): Promise<void> }> {
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
    },
    async quit() {
      await Promise.all([client.quit(), pub.quit(), sub.quit()]);
    },
  };
}
