// A chat client that is not a browser: `npm run example:client` (with the demo running).
// It gets a bearer token from POST /api/token, chats on /chat beside the browser users, and
// renews its token on the live socket before it expires, without reconnecting.
//   DEMO_URL       the demo's URL (default http://localhost:3000)
//   DEMO_USER      username (default bob)
//   DEMO_PASSWORD  password (default bob-pass)
// Type a line to say it; Ctrl-C to leave.
import { createInterface } from 'node:readline';
import { io, type Socket } from 'socket.io-client';
import type { PresenceDiff, PresenceFeedEntry } from 'socket.io-session-auth';
import type { ChatMessage, OnlineUser } from './app.js';
import type { TokenReply } from './tokens.js';

const url = process.env.DEMO_URL ?? 'http://localhost:3000';
const username = process.env.DEMO_USER ?? 'bob';
const password = process.env.DEMO_PASSWORD ?? 'bob-pass';

/** socket.io-session-auth's TOKEN_EVENT: a fresh token for the live socket. */
const TOKEN_EVENT = 'session:token';

/** A token for the username and password, or, given a token, a fresh one for it. */
async function getToken(current?: string): Promise<TokenReply> {
  const res = await fetch(new URL('/api/token', url), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(current !== undefined && { authorization: `Bearer ${current}` }),
    },
    body: current === undefined ? JSON.stringify({ username, password }) : '{}',
  });
  if (!res.ok) throw new Error(`POST /api/token: ${res.status} ${res.statusText}`);
  return (await res.json()) as TokenReply;
}

/** Asks for a fresh token when 80% of this one's life is gone, and hands it to the socket. */
function renewBefore(socket: Socket, reply: TokenReply): NodeJS.Timeout {
  const wait = Math.max(1000, (reply.expires - Date.now()) * 0.8);
  return setTimeout(() => {
    getToken(reply.token)
      .then(async (fresh) => {
        const answer = (await socket.emitWithAck(TOKEN_EVENT, fresh.token)) as {
          expires?: number | null;
          error?: { code: string };
        };
        if (answer.error) throw new Error(`token refused: ${answer.error.code}`);
        console.log(`token renewed, expires ${new Date(fresh.expires).toISOString()}`);
        renewal = renewBefore(socket, fresh);
      })
      .catch((error: unknown) => {
        console.error('could not renew the token:', error);
      });
  }, wait);
}

let renewal: NodeJS.Timeout | undefined;

async function main(): Promise<void> {
  const first = await getToken();
  const lines = createInterface({ input: process.stdin });
  // The token goes in `auth`: WebSocket handshakes from browsers cannot carry headers, and this
  // way one client code works over every transport.
  const socket = io(new URL('/chat', url).href, { auth: { token: first.token } });
  const stop = (code: number): void => {
    clearTimeout(renewal);
    socket.disconnect();
    lines.close();
    process.exitCode = code;
  };

  socket.on('connect', () => {
    console.log(`connected to /chat as ${username}`);
  });
  socket.on('connect_error', (err: Error & { data?: { code?: string } }) => {
    if (socket.active) return; // a network error: socket.io-client retries by itself
    console.error(`refused: ${err.data?.code ?? err.message}`);
    stop(1);
  });
  socket.on('said', (message: ChatMessage) => {
    console.log(`${message.from}: ${message.text}`);
  });
  // Who is online: the whole list once connected, then the changes, merged by id.
  const online = new Map<string, PresenceFeedEntry<OnlineUser>>();
  const showOnline = (): void => {
    console.log(`online: ${[...online.values()].map((entry) => entry.user.username).join(', ')}`);
  };
  socket.on('presence:state', (entries: PresenceFeedEntry<OnlineUser>[]) => {
    online.clear();
    for (const entry of entries) online.set(entry.id, entry);
    showOnline();
  });
  socket.on('presence:diff', ({ joins, leaves }: PresenceDiff<OnlineUser>) => {
    for (const entry of leaves) online.delete(entry.id);
    for (const entry of joins) online.set(entry.id, entry);
    showOnline();
  });
  socket.on('session:ended', (payload: { data: { code: string } }) => {
    console.log(`session ended: ${payload.data.code}`);
    stop(1);
  });
  renewal = renewBefore(socket, first);

  lines.on('line', (text) => {
    if (text.trim() === '') return;
    socket.emitWithAck('say', { text }).then(
      (answer: { error?: string }) => {
        if (answer.error) console.error(`not said: ${answer.error}`);
      },
      (error: unknown) => {
        console.error('not said:', error);
      },
    );
  });
  lines.on('close', () => {
    stop(0);
  });
  process.on('SIGINT', () => {
    stop(0);
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
