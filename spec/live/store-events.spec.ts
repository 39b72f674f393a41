// storeEvents on one node, with the connect-redis feed on a real redis-server: a session deleted,
// expired or removed in Redis behind the package's back ends its sockets at once, with no
// revalidation round; a Redis whose keyspace events are off and may not be configured leaves the
// feed unavailable (a warning), and polling still ends the socket. The store and the feed are
// connect-redis on every leg, whatever the leg's STORE: this is the feed's own spec.
//
// Needs redis-server. Under CI=true its absence fails this spec; elsewhere it is skipped.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import { after, before, beforeEach, describe, test, type TestContext } from 'node:test';
import { RedisStore } from 'connect-redis';
import express from 'express';
import session from 'express-session';
import { createClient } from 'redis';
import {
  DIAGNOSTICS_CHANNELS,
  passportNamespace,
  redisStoreEvents,
  requireAuth,
  sessionNamespace,
  type SessionEndedMessage,
  type RedisStoreEventsClient,
  type SessionNamespaceOptions,
  type StoreEventFeed,
  type StoreEventSink,
  type StoreEventsMessage,
} from 'socket.io-session-auth';
import {
  createTestKit,
  expectEnded,
  type Agent,
  type TestKit,
} from 'socket.io-session-auth/testing';
import { redisUnavailable, startRedis, type RedisServer } from '../support/redis.js';
import { users, usersPassport } from '../support/server.js';
import { Server } from '../support/stack.js';
import { warningsOf } from '../support/warnings.js';

const noRedis = redisUnavailable();

type Client = ReturnType<typeof createClient>;

/** connect-redis, counting its reads: a revalidation round is a read. */
class CountingRedisStore extends RedisStore {
  gets = 0;
  override get(sid: string, cb?: Parameters<RedisStore['get']>[1]): Promise<unknown> {
    this.gets++;
    return super.get(sid, cb);
  }
}

/** What each channel said from now on, until the test ends. */
function heard<T>(tc: TestContext, channel: string): T[] {
  const messages: T[] = [];
  const listener = (message: unknown): void => {
    messages.push(message as T);
  };
  diagnosticsChannel.subscribe(channel, listener);
  tc.after(() => diagnosticsChannel.unsubscribe(channel, listener));
  return messages;
}

/** Resolves once `list` holds a message `match` accepts (a hang guard after `ms`). */
async function arrived<T>(list: T[], match: (m: T) => boolean, what: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = list.find(match);
    if (found) return found;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}: ${JSON.stringify(list)}`);
    // Polled, bounded: a diagnostics channel has no promise to wait on.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

let redis: RedisServer | undefined;
let admin: Client | undefined;
let prefixes = 0;

interface App {
  kit: TestKit;
  store: CountingRedisStore;
  prefix: string;
  states: StoreEventsMessage[];
  ended: SessionEndedMessage[];
}

/**
 * The app: connect-redis on the spec's Redis, /chat guarded, the feed on (unless `feed` is
 * false), revalidation every `revalidateIntervalMs` (10 minutes unless told: no round in a test).
 */
async function appOn(
  tc: TestContext,
  {
    feed = true,
    configure,
    revalidateIntervalMs = 600_000,
    url,
    onDeserialize,
    wrap,
  }: {
    /** The connect-redis feed (true), none (false), or this one. */
    feed?: boolean | StoreEventFeed;
    configure?: boolean;
    revalidateIntervalMs?: number;
    /** The app's Redis URL (another user), if not the spec's. */
    url?: string;
    /** Called in each deserializeUser (a handshake's, between its session read and tracking). */
    onDeserialize?: () => void;
    /** What the connect-redis feed is given instead of the app's client (it wraps it). */
    wrap?: (client: RedisStoreEventsClient) => RedisStoreEventsClient;
  } = {},
): Promise<App> {
  assert.ok(redis);
  const states = heard<StoreEventsMessage>(tc, DIAGNOSTICS_CHANNELS.storeEvents);
  const ended = heard<SessionEndedMessage>(tc, DIAGNOSTICS_CHANNELS.sessionEnded);
  const client = createClient({ url: url ?? redis.url });
  client.on('error', (error: unknown) => {
    console.error('redis:', error);
  });
  await client.connect();
  const prefix = `sess:${++prefixes}:`;
  const store = new CountingRedisStore({ client, prefix });
  const sessionMiddleware = session({
    secret: 'store-events-spec',
    resave: false,
    saveUninitialized: false,
    store,
  });
  const passport = usersPassport(onDeserialize);
  const app = express();
  app.use(sessionMiddleware);
  app.use(passport.session());
  app.use(express.urlencoded({ extended: false }));
  app.post('/login', passport.authenticate('local') as express.RequestHandler, (_req, res) => {
    res.json({ ok: true });
  });
  const io = new Server(createServer(app));
  const options: SessionNamespaceOptions = {
    passport,
    app,
    revalidateIntervalMs,
    ...(feed !== false && {
      storeEvents:
        feed === true
          ? redisStoreEvents({
              client: wrap ? wrap(client) : client,
              prefix,
              ...(configure !== undefined && { configure }),
            })
          : feed,
    }),
  };
  // A second namespace of the server, given the same feed: still one feed per server.
  const { passport: _, ...rest } = options;
  passportNamespace(io.of('/open'), passport, ['session'], { ...rest, session: sessionMiddleware });
  requireAuth(sessionNamespace(io.of('/chat'), sessionMiddleware, options)).on(
    'connection',
    (socket) => {
      socket.on('echo', (ack: (reply: string) => void) => {
        ack('echo');
      });
    },
  );
  const kit = await createTestKit({
    io,
    session: sessionMiddleware,
    passport,
    async close() {
      // io.close() closes the HTTP server, which stops the feed: nothing is left to keep the
      // process up (a feed left subscribed would hang this file). Its callback, not its promise:
      // before Socket.IO 4.8, close() returns before the HTTP server has closed.
      await new Promise<void>((resolve) => {
        void io.close(() => {
          resolve();
        });
      });
      await client.close();
    },
  });
  tc.after(() => kit.close());
  return { kit, store, prefix, states, ended };
}

async function logIn(kit: TestKit, username: string): Promise<Agent> {
  const user = users.find((u) => u.username === username) ?? assert.fail(`no user ${username}`);
  return kit.loginWith('/login', { username, password: user.password });
}

async function sessionIdOf(agent: Agent): Promise<string> {
  return (await agent.session())?.id ?? assert.fail(`${agent.name} has no session`);
}

/** As the Postgres trigger tells it: SHA-256 of the ID, base64url, its first 22 characters. */
async function digestOf(agent: Agent): Promise<string> {
  return createHash('sha256')
    .update(await sessionIdOf(agent))
    .digest('base64url')
    .slice(0, 22);
}

/** A feed of the spec's own: it says what the spec tells its sink, when the spec tells it. */
function specFeed(): { feed: StoreEventFeed; sink: () => StoreEventSink; stops: () => number } {
  let told: StoreEventSink | undefined;
  let stops = 0;
  const feed: StoreEventFeed = {
    name: 'spec-feed',
    start(sink) {
      told = sink;
      return () => {
        stops++;
        return Promise.resolve();
      };
    },
  };
  return { feed, sink: () => told ?? assert.fail('the feed was not started'), stops: () => stops };
}

function redisAdmin(): Client {
  return admin ?? assert.fail('no Redis client');
}

async function keyspaceEvents(): Promise<string> {
  assert.ok(admin);
  const reply = await admin.configGet('notify-keyspace-events');
  return reply['notify-keyspace-events'] ?? assert.fail('no notify-keyspace-events');
}

/**
 * The app's client as the feed sees it, with its CONFIG commands held while the spec says so, and
 * the subscriber's drops counted (the spec's listener runs before the feed's).
 */
function configGate() {
  let held: Promise<void> | undefined;
  let release = (): void => undefined;
  const gate = {
    /** CONFIG commands that reached the client, those answered, and those that failed. */
    reached: 0,
    answered: 0,
    failed: 0,
    /** The subscriber's 'reconnecting' events. */
    drops: 0,
    hold(): void {
      held = new Promise((resolve) => {
        release = () => {
          held = undefined;
          resolve();
        };
      });
    },
    release(): void {
      release();
    },
    wrap(client: RedisStoreEventsClient): RedisStoreEventsClient {
      return {
        options: client.options,
        async sendCommand(args) {
          if (args[0] !== 'CONFIG') return client.sendCommand(args);
          gate.reached++;
          await held;
          try {
            const reply = await client.sendCommand(args);
            gate.answered++;
            return reply;
          } catch (error) {
            gate.failed++;
            throw error;
          }
        },
        duplicate() {
          const subscriber = client.duplicate();
          subscriber.on('reconnecting', () => {
            gate.drops++;
          });
          return subscriber;
        },
      };
    },
  };
  return gate;
}

/** Waits (polled, bounded) until `ok()`. */
async function until(ok: () => boolean, what: string): Promise<void> {
  await arrived([true], ok, what);
}

/** The connections subscribed to channels (the feeds'). */
async function subscribers(): Promise<number> {
  return (await redisAdmin().clientList({ TYPE: 'PUBSUB' })).length;
}

describe('storeEvents: the connect-redis feed on one node', { skip: noRedis }, () => {
  before(async () => {
    redis = await startRedis();
    admin = createClient({ url: redis.url });
    await admin.connect();
  });
  after(async () => {
    await admin?.close();
    await redis?.stop();
  });
  // Redis as it comes: keyspace events off. The feed turns them on (configure) where asked.
  beforeEach(async () => {
    await admin?.sendCommand(['CONFIG', 'SET', 'notify-keyspace-events', '']);
  });

  test('a DEL by another client ends the socket with ERR_SESSION_REVOKED, with no store read', async (tc) => {
    const { kit, store, prefix, states, ended } = await appOn(tc);
    await arrived(states, (m) => m.state === 'up', "the feed's up");
    // configure (the default) turned on what the feed needs, keeping nothing it did not add.
    assert.deepEqual((await keyspaceEvents()).split('').sort(), ['E', 'e', 'g', 'x']);
    const alice = await logIn(kit, 'alice');
    const chat = await alice.connect('/chat');
    const key = `${prefix}${await sessionIdOf(alice)}`;
    const readsBefore = store.gets;
    assert.equal(await admin?.del(key), 1);
    await expectEnded(chat, 'ERR_SESSION_REVOKED');
    assert.equal(store.gets, readsBefore, 'no revalidation read: the event ended it');
    assert.deepEqual(
      ended.map(({ code, how }) => ({ code, how })),
      [{ code: 'ERR_SESSION_REVOKED', how: 'store-event' }],
    );
    // Never a session ID in what the feed tells operators.
    for (const message of states) assert.deepEqual(Object.keys(message).sort(), ['feed', 'state']);
  });

  test('an EXPIRE that lapses ends the socket with ERR_SESSION_EXPIRED', async (tc) => {
    const { kit, store, prefix, states } = await appOn(tc);
    await arrived(states, (m) => m.state === 'up', "the feed's up");
    const bob = await logIn(kit, 'bob');
    const chat = await bob.connect('/chat');
    const key = `${prefix}${await sessionIdOf(bob)}`;
    const readsBefore = store.gets;
    assert.equal(await admin?.expire(key, 1), 1);
    await expectEnded(chat, 'ERR_SESSION_EXPIRED', { within: 5000 });
    assert.equal(store.gets, readsBefore, 'no revalidation read: the event ended it');
  });

  test('kit.removeFromStore ends a socket through the feed, and not without one', async (tc) => {
    const withFeed = await appOn(tc);
    await arrived(withFeed.states, (m) => m.state === 'up', "the feed's up");
    const alice = await logIn(withFeed.kit, 'alice');
    const chat = await alice.connect('/chat');
    await withFeed.kit.removeFromStore(alice);
    await expectEnded(chat, 'ERR_SESSION_REVOKED');
    assert.equal((await alice.session())?.user, undefined, 'gone from the store');

    // Without a feed, nothing hears it: the store's own destroy is not the package's wrapped one.
    const without = await appOn(tc, { feed: false });
    const bob = await logIn(without.kit, 'bob');
    const bobChat = await bob.connect('/chat');
    await without.kit.removeFromStore(bob);
    assert.equal((await bob.session())?.user, undefined, 'gone from the store');
    // A wrapped destroy would have ended it before removeFromStore resolved; a round trip after it
    // shows it still connected and told nothing.
    assert.equal(await bobChat.timeout(5000).emitWithAck('echo'), 'echo');
    await bobChat.refuteEvent('session:ended', { within: 0 });
    assert.equal(bobChat.connected, true);
  });

  test('keyspace events off and configure: false: a warning, and polling still ends the socket', async (tc) => {
    const warnings = warningsOf(tc, 'SOCKET_IO_SESSION_AUTH_STORE_EVENTS_OFF');
    const { kit, prefix, states, ended } = await appOn(tc, {
      configure: false,
      revalidateIntervalMs: 300,
    });
    const off = await arrived(states, (m) => m.state === 'unavailable', 'the feed unavailable');
    assert.match(
      off.message ?? '',
      /notify-keyspace-events must include Egxe \(it is '', missing Egxe\), and configure is false/,
    );
    assert.equal(await keyspaceEvents(), '', 'left as it was');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /^storeEvents: notify-keyspace-events must include Egxe/);
    const alice = await logIn(kit, 'alice');
    const chat = await alice.connect('/chat');
    assert.equal(await admin?.del(`${prefix}${await sessionIdOf(alice)}`), 1);
    await expectEnded(chat, 'ERR_SESSION_REVOKED', { within: 5000 });
    assert.deepEqual(
      ended.map(({ how }) => how),
      ['revalidation'],
    );
  });

  // After the test above: the warning is given once per process, and was given there.
  test('a Redis that refuses CONFIG (a managed one): unavailable, unless configure: false trusts it', async (tc) => {
    assert.ok(redis);
    // The app's Redis user may not run CONFIG; the operator turned the events on (as in a managed
    // Redis's settings).
    await redisAdmin().sendCommand([
      'ACL',
      'SETUSER',
      'app',
      'on',
      'nopass',
      '~*',
      '&*',
      '+@all',
      '-config',
    ]);
    tc.after(() => redisAdmin().sendCommand(['ACL', 'DELUSER', 'app']));
    await redisAdmin().configSet('notify-keyspace-events', 'Egxe');
    const url = redis.url.replace('redis://', 'redis://app:any@');

    const refused = await appOn(tc, { url });
    const off = await arrived(refused.states, (m) => m.state === 'unavailable', 'unavailable');
    assert.match(
      off.message ?? '',
      /^CONFIG GET notify-keyspace-events was refused \(NOPERM .*\), so whether Redis sends the keyspace events the feed needs is unknown: once notify-keyspace-events includes Egxe in your Redis's settings, pass configure: false$/,
    );

    const trusted = await appOn(tc, { url, configure: false });
    await arrived(trusted.states, (m) => m.state === 'up', "the trusted feed's up");
    const alice = await logIn(trusted.kit, 'alice');
    const chat = await alice.connect('/chat');
    assert.equal(await redisAdmin().del(`${trusted.prefix}${await sessionIdOf(alice)}`), 1);
    await expectEnded(chat, 'ERR_SESSION_REVOKED');
  });

  test('a feed of your own: started once per server, a digest ends the sockets, stopped at close', async (tc) => {
    let starts = 0;
    let stops = 0;
    let told: StoreEventSink | undefined;
    const feed: StoreEventFeed = {
      name: 'spec-feed',
      start(sink) {
        starts++;
        told = sink;
        sink.up();
        return () => {
          stops++;
          return Promise.resolve();
        };
      },
    };
    const { kit, states, ended } = await appOn(tc, { feed });
    assert.equal(starts, 1, 'two namespaces, one server: one start');
    assert.deepEqual(states, [{ feed: 'spec-feed', state: 'up' }]);
    const alice = await logIn(kit, 'alice');
    const [chat, open] = [await alice.connect('/chat'), await alice.connect('/open')];
    // As the Postgres trigger tells it: SHA-256 of the ID, base64url, its first 22 characters.
    const digest = createHash('sha256')
      .update(await sessionIdOf(alice))
      .digest('base64url')
      .slice(0, 22);
    assert.ok(told);
    told.ended({ digest }, 'evicted');
    await expectEnded(chat, 'ERR_SESSION_REVOKED');
    await expectEnded(open, 'ERR_SESSION_REVOKED');
    assert.deepEqual(
      ended.map(({ how }) => how),
      ['store-event', 'store-event'],
    );
    told.down('the spec says so');
    assert.deepEqual(states.at(-1), {
      feed: 'spec-feed',
      state: 'down',
      message: 'the spec says so',
    });
    await kit.close();
    assert.equal(stops, 1, 'stopped when the server closed');
  });

  test('a feed stopped and started again during its settings check keeps one subscription, closed at the end', async (tc) => {
    assert.ok(redis);
    const client = createClient({ url: redis.url });
    await client.connect();
    tc.after(() => client.close());
    const gate = configGate();
    // One feed object, given to one server, then (that one closed) to another.
    const feed = redisStoreEvents({ client: gate.wrap(client), prefix: 'sess:restarted:' });
    gate.hold();
    const first = await appOn(tc, { feed });
    await until(() => gate.reached === 1, 'the first check');
    await first.kit.close();
    const second = await appOn(tc, { feed });
    await until(() => gate.reached === 2, 'the second check');
    gate.release();
    await arrived(second.states, (m) => m.state === 'up', "the feed's up");
    await second.kit.close();
    // The first start's check went on after its stop: it must not have subscribed (a connection
    // nobody closes, which keeps the process up). Polled: Redis sees a close a moment later.
    let left = -1;
    for (const deadline = Date.now() + 5000; left !== 0 && Date.now() < deadline;) {
      left = await subscribers();
      if (left !== 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(left, 0, 'a subscription left open after every server closed');
  });

  test('a drop during the settings check after a reconnection: no up until the subscription is back', async (tc) => {
    const gate = configGate();
    const { kit, prefix, states, ended } = await appOn(tc, { wrap: (c) => gate.wrap(c) });
    await arrived(states, (m) => m.state === 'up', "the feed's up");
    const alice = await logIn(kit, 'alice');
    const chat = await alice.connect('/chat');
    gate.hold();
    const { reached, answered } = gate;
    await redisAdmin().sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    // node-redis reconnects; at its 'ready' the feed checks the settings again: held here.
    await until(
      () => gate.reached === reached + 1 && gate.drops === 1,
      `the check after the reconnection (${JSON.stringify(gate)})`,
    );
    // The subscription drops again and stays down (Redis takes no new connection).
    const info = await redisAdmin().info('clients');
    const connected = Number(/connected_clients:(\d+)/.exec(info)?.[1]);
    await redisAdmin().configSet('maxclients', String(connected - 1));
    tc.after(() => redisAdmin().configSet('maxclients', '10000'));
    await redisAdmin().sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    await until(() => gate.drops === 2, 'the second drop');
    gate.release();
    await until(() => gate.answered === answered + 1, 'the check answered');
    // The check found the settings on, but nothing listens: still down, polling as without a feed.
    assert.deepEqual(
      states.map((m) => m.state),
      ['up', 'down'],
    );
    // Deleted while nobody listens; the subscription comes back: one full round finds it.
    assert.equal(await redisAdmin().del(`${prefix}${await sessionIdOf(alice)}`), 1);
    await redisAdmin().configSet('maxclients', '10000');
    await expectEnded(chat, 'ERR_SESSION_REVOKED', { within: 15_000 });
    await arrived(states, (m, i = states.indexOf(m)) => i >= 3 && m.state === 'up', 'up again');
    assert.deepEqual(
      states.map((m) => m.state),
      ['up', 'down', 'resync', 'up'],
    );
    assert.deepEqual(
      ended.map(({ how }) => how),
      ['revalidation'],
    );
  });

  test('a settings check lost with its connection after a reconnection is a down, tried again, not unavailable', async (tc) => {
    assert.ok(redis);
    // An app client that fails commands while disconnected instead of queueing them.
    const own = createClient({ url: redis.url, disableOfflineQueue: true });
    own.on('error', () => undefined); // (its drop below is the spec's own doing)
    await own.connect();
    tc.after(() => (own.isOpen ? own.close() : undefined));
    const gate = configGate();
    const { states } = await appOn(tc, { wrap: () => gate.wrap(own) });
    await arrived(states, (m) => m.state === 'up', "the feed's up");
    gate.hold();
    const { reached } = gate;
    await redisAdmin().sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    await until(() => gate.reached === reached + 1, 'the check after the reconnection');
    // The app's client drops, and stays out (Redis takes no new connection) as the check is sent.
    const reply: unknown = await own.sendCommand(['CLIENT', 'ID']);
    const id = String(Number(reply));
    const info = await redisAdmin().info('clients');
    const connected = Number(/connected_clients:(\d+)/.exec(info)?.[1]);
    await redisAdmin().configSet('maxclients', String(connected - 1));
    tc.after(() => redisAdmin().configSet('maxclients', '10000'));
    await redisAdmin().sendCommand(['CLIENT', 'KILL', 'ID', id]);
    await until(() => !own.isReady, "the app client's drop");
    gate.release();
    await until(() => gate.failed === 1, 'the check failed');
    await redisAdmin().configSet('maxclients', '10000');
    // Tried again a second later, on the client back: up (no socket here: no round to run).
    await arrived(states, (m, i = states.indexOf(m)) => i >= 2 && m.state === 'up', 'up again');
    assert.deepEqual(
      states.map((m) => m.state),
      ['up', 'down', 'up'],
    );
  });

  test('a feed that comes up after sockets connected reads them once: a delete before its up is found', async (tc) => {
    const { feed, sink } = specFeed();
    const { kit, states, ended } = await appOn(tc, { feed });
    // Still starting (a Postgres feed retrying at boot says nothing until it listens).
    const alice = await logIn(kit, 'alice');
    const chat = await alice.connect('/chat');
    // Deleted in the store before the feed hears anything: no feed tells it, and no round runs.
    await kit.removeFromStore(alice);
    sink().up();
    await arrived(states, (m) => m.state === 'up', "the feed's up");
    await expectEnded(chat, 'ERR_SESSION_REVOKED');
    assert.deepEqual(
      states.map((m) => m.state),
      ['resync', 'up'],
      'one full round, then events alone',
    );
    assert.deepEqual(
      ended.map(({ how }) => how),
      ['revalidation'],
    );
  });

  test('a store event between a handshake’s read and its tracking (in deserializeUser) still ends it', async (tc) => {
    const { feed, sink } = specFeed();
    let during: (() => void) | undefined;
    const { kit, ended } = await appOn(tc, {
      feed,
      onDeserialize: () => {
        during?.();
      },
    });
    sink().up();
    const alice = await logIn(kit, 'alice');
    const digest = await digestOf(alice);
    // The session was read; the socket is not tracked yet: the event finds no socket of it here.
    during = () => {
      during = undefined;
      sink().ended({ digest }, 'deleted');
    };
    const chat = await alice.connect('/chat');
    assert.equal(during, undefined, 'the event came during the handshake');
    await expectEnded(chat, 'ERR_SESSION_REVOKED');
    assert.deepEqual(
      ended.map(({ how }) => how),
      ['store-event'],
    );
    // A session read after the event is another: its socket stays.
    const again = await logIn(kit, 'alice');
    const chatAgain = await again.connect('/chat');
    assert.equal(await chatAgain.timeout(5000).emitWithAck('echo'), 'echo');
    await chatAgain.refuteEvent('session:ended', { within: 0 });
  });

  test('an async start (a promise of its stop function) is refused: unavailable, and stopped', async (tc) => {
    let stops = 0;
    let told: StoreEventSink | undefined;
    const feed = {
      name: 'async-feed',
      async start(sink: StoreEventSink) {
        told = sink;
        await Promise.resolve();
        return () => {
          stops++;
          return Promise.resolve();
        };
      },
    };
    const { states } = await appOn(tc, { feed: feed as unknown as StoreEventFeed });
    const off = await arrived(states, (m) => m.state === 'unavailable', 'the feed refused');
    assert.equal(
      off.message,
      "the async-feed feed's start returned a promise instead of its stop function (start must " +
        'return it at once, not be async, and call sink.up() once it hears events)',
    );
    // The stop function it promised is called once it comes; its sink is cut off.
    await arrived([true], () => stops === 1, 'the promised stop called');
    told?.up();
    assert.deepEqual(
      states.map((m) => m.state),
      ['unavailable'],
    );
  });

  test('options: a storeEvents that is not a feed is a TypeError naming the helper', () => {
    const io = new Server();
    const sessionMiddleware = session({ secret: 's', resave: false, saveUninitialized: false });
    const passport = usersPassport();
    for (const storeEvents of [{}, null, 'redis', { start: true }]) {
      assert.throws(
        () =>
          sessionNamespace(io.of('/a'), sessionMiddleware, { storeEvents: storeEvents as never }),
        {
          name: 'TypeError',
          message:
            'sessionNamespace: options.storeEvents must be a store event feed (an object with ' +
            'start(sink)), such as redisStoreEvents({ client })',
        },
      );
      assert.throws(
        () =>
          passportNamespace(io.of('/b'), passport, ['session'], {
            session: sessionMiddleware,
            storeEvents: storeEvents as never,
          }),
        { name: 'TypeError', message: /^passportNamespace: options\.storeEvents must be/ },
      );
    }
    assert.throws(
      () => sessionNamespace(io.of('/c'), sessionMiddleware, { revalidateWithEventsMs: 0 }),
      { name: 'TypeError', message: /^sessionNamespace: options\.revalidateWithEventsMs must be/ },
    );
    assert.throws(() => redisStoreEvents({ client: {} as never }), {
      name: 'TypeError',
      message: 'redisStoreEvents: options.client must be a node-redis client (v4 or later)',
    });
  });
});
