// Parent (dynamic) namespaces: the package's layers reach every child, the ones that exist before
// sessionNamespace/requireAuth are called as well as the ones created later; and children that the
// guard left empty do not pile up, whatever a stranger asks for.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Namespace, Socket as ServerSocket } from 'socket.io';
import { ERR_FORBIDDEN, ERR_UNAUTHORIZED, requireAuth, sessionNamespace } from '../../lib/index.js';
import { childrenOf, namespacesOf } from '../../lib/socket-io/socket-io-internals.js';
import { connected, connectError, within } from '../support/bounded.js';
import { ClientProcess } from '../support/client-process.js';
import { heapAfterGc } from '../support/heap.js';
import { type TestContext, type TestServer, start } from '../support/server.js';
import { expectUser, reporting } from '../support/whoami.js';

const TENANTS = /^\/tenant-[\w-]+$/;

function tenantOf(socket: ServerSocket): string {
  return socket.nsp.name.slice('/tenant-'.length);
}

function guardTenants(ctx: TestContext, parent: Namespace): void {
  requireAuth(sessionNamespace(parent, ctx.session, { passport: ctx.passport }), {
    authorize: (user, socket) => user.tenants.includes(tenantOf(socket)),
  });
}

function namespaceNames(ctx: TestContext): string[] {
  return [...namespacesOf(ctx.io)].map((nsp) => nsp.name);
}

describe('children that exist before the parent is layered', () => {
  const expectGuarded = async (server: TestServer): Promise<void> => {
    const anonymous = await connectError(server.connect('/tenant-acme'));
    assert.equal(anonymous.data?.code, ERR_UNAUTHORIZED, 'a stranger is refused');
    const bob = await server.login('bob');
    const outsider = await connectError(server.connect('/tenant-acme', { cookie: bob }));
    assert.equal(outsider.data?.code, ERR_FORBIDDEN, 'a member of another tenant is refused');
    const alice = await server.login('alice');
    await expectUser(server.connect('/tenant-acme', { cookie: alice }), 'alice', 'a member');
  };

  test('regex parent: a child made by io.of() before sessionNamespace and requireAuth is guarded', async (t) => {
    const server = await start(t, (ctx) => {
      const parent = reporting(ctx.io.of(TENANTS));
      // Socket.IO (4.6+) attaches a string of() that matches a regex parent to it, at once.
      const child = ctx.io.of('/tenant-acme');
      assert.ok(childrenOf(parent)?.has(child), 'the child belongs to the parent');
      guardTenants(ctx, parent);
    });
    await expectGuarded(server);
  });

  test('function parent: a child a client made before the parent was layered is guarded', async (t) => {
    let parent: Namespace | undefined;
    const server = await start(t, (ctx) => {
      parent = reporting(
        ctx.io.of((name, _auth, next) => {
          next(null, TENANTS.test(name));
        }),
      );
    });
    // Unguarded yet: a client's connect creates the child, as on a server that layers late.
    const early = server.connect('/tenant-acme');
    await connected(early);
    early.disconnect();
    assert.ok(parent);
    assert.equal(childrenOf(parent)?.size, 1);
    guardTenants(server, parent);
    await expectGuarded(server);
  });

  test('a child made between sessionNamespace and requireAuth gets the guard too', async (t) => {
    const server = await start(t, (ctx) => {
      const parent = reporting(ctx.io.of(TENANTS));
      sessionNamespace(parent, ctx.session, { passport: ctx.passport });
      ctx.io.of('/tenant-acme');
      requireAuth(parent);
    });
    const anonymous = await connectError(server.connect('/tenant-acme'));
    assert.equal(anonymous.data?.code, ERR_UNAUTHORIZED);
    const alice = await server.login('alice');
    await expectUser(server.connect('/tenant-acme', { cookie: alice }), 'alice', 'alice');
  });

  test('sessionNamespace on a parent whose child already has requireAuth throws', async (t) => {
    await start(t, (ctx) => {
      const parent = ctx.io.of(TENANTS);
      requireAuth(ctx.io.of('/tenant-acme'));
      assert.throws(
        () => sessionNamespace(parent, ctx.session, { passport: ctx.passport }),
        (error: unknown) =>
          error instanceof TypeError &&
          error.message.startsWith('sessionNamespace:') &&
          error.message.includes('/tenant-acme'),
      );
    });
  });
});

describe('children the guard left empty', () => {
  test('a refused stranger leaves no child behind; a member’s child stays', async (t) => {
    const server = await start(t, (ctx) => {
      guardTenants(ctx, reporting(ctx.io.of(TENANTS)));
    });
    const before = namespaceNames(server);
    const refused = await connectError(server.connect('/tenant-nobody'));
    assert.equal(refused.data?.code, ERR_UNAUTHORIZED);
    // Socket.IO discards the refused socket one tick after it sends the refusal.
    await settled(() => !namespaceNames(server).includes('/tenant-nobody'), 'the child to go');
    assert.deepEqual(namespaceNames(server), before);

    const alice = await server.login('alice');
    const member = server.connect('/tenant-acme', { cookie: alice });
    await connected(member);
    member.disconnect();
    // Once a member has been in it, a child is Socket.IO's to keep, as without this package.
    const again = await connectError(server.connect('/tenant-acme'));
    assert.equal(again.data?.code, ERR_UNAUTHORIZED);
    assert.ok(namespaceNames(server).includes('/tenant-acme'), 'the child a member used stays');
  });

  test('a child the app made or added its own listener to is kept', async (t) => {
    const server = await start(t, (ctx) => {
      const parent = reporting(ctx.io.of(TENANTS));
      ctx.io.of('/tenant-before'); // made before layering
      guardTenants(ctx, parent);
      ctx.io.of('/tenant-after').on('connection', () => undefined); // customised after
    });
    for (const name of ['/tenant-before', '/tenant-after']) {
      const refused = await connectError(server.connect(name));
      assert.equal(refused.data?.code, ERR_UNAUTHORIZED);
    }
    // A round trip on a child that is removed shows Socket.IO has discarded the refused sockets.
    await connectError(server.connect('/tenant-gone'));
    await settled(() => !namespaceNames(server).includes('/tenant-gone'), 'the probe child to go');
    const names = namespaceNames(server);
    assert.ok(names.includes('/tenant-before'), 'made by io.of() before layering: kept');
    assert.ok(names.includes('/tenant-after'), 'given a listener by the app: kept');
  });

  test('with cleanupEmptyChildNamespaces, a refusal never removes a child while another socket of it is in its handshake', async (t) => {
    let release: ((value: boolean) => void) | undefined;
    let reachedAuthorize = (): void => undefined;
    const reached = new Promise<void>((resolve) => {
      reachedAuthorize = resolve;
    });
    const server = await start(
      t,
      (ctx) => {
        const parent = reporting(ctx.io.of(TENANTS));
        requireAuth(sessionNamespace(parent, ctx.session, { passport: ctx.passport }), {
          // alice's authorize waits until the test lets it go.
          authorize: (user) => {
            if (user.username !== 'alice') return false;
            reachedAuthorize();
            return new Promise<boolean>((resolve) => {
              release = resolve;
            });
          },
        });
      },
      { serverOptions: { cleanupEmptyChildNamespaces: true } },
    );
    const alice = await server.login('alice');
    const member = server.connect('/tenant-acme', { cookie: alice });
    const memberConnected = connected(member);
    await within(reached, 'alice to reach authorize');
    const child = [...namespacesOf(server.io)].find((nsp) => nsp.name === '/tenant-acme');
    assert.ok(child);

    const refused = await connectError(server.connect('/tenant-acme'));
    assert.equal(refused.data?.code, ERR_UNAUTHORIZED);
    release?.(true);
    await memberConnected;
    const still = [...namespacesOf(server.io)].find((nsp) => nsp.name === '/tenant-acme');
    assert.equal(still, child, 'the child alice connected to is the one the server still has');
    // And it is reachable the usual way: a broadcast through io.of() arrives.
    const heard = new Promise<string>((resolve) => member.once('news', resolve));
    server.io.of('/tenant-acme').emit('news', 'hello');
    assert.equal(await within(heard, 'the broadcast'), 'hello');

    member.disconnect();
    await settled(
      () => !namespaceNames(server).includes('/tenant-acme'),
      'the emptied child to go (cleanupEmptyChildNamespaces)',
    );
  });
});

describe('a flood of names from a stranger', () => {
  const NAMES = Number(process.env.FLOOD_NAMES ?? 20_000);
  const PER_ROUND = 200;

  test(`${NAMES} distinct child names: namespaces and heap back where they were; a member still gets in`, async (t) => {
    const server = await start(t, (ctx) => {
      guardTenants(ctx, reporting(ctx.io.of(TENANTS)));
    });
    const clients = await ClientProcess.start('flood');
    t.after(() => clients.stop());
    const alice = await server.login('alice');
    await clients.call('multiplexOpen', { url: server.url });

    const round = async (from: number): Promise<void> => {
      const nsps = Array.from({ length: PER_ROUND }, (_, i) => `/tenant-flood-${from + i}`);
      const result = await clients.call('multiplexRound', { nsps });
      assert.deepEqual(result, { codes: { [ERR_UNAUTHORIZED]: PER_ROUND }, connected: 0 });
    };
    // Warm up, so that what is measured is what stays, not what the first rounds compile.
    for (let i = 0; i < 5; i++) await round(-(i + 1) * PER_ROUND);
    await clients.call('multiplexClose', null);
    await clients.call('multiplexOpen', { url: server.url });
    await settled(
      () => namespaceNames(server).every((name) => !name.includes('flood')),
      'the warm-up’s children to go',
    );
    const namesBefore = namespaceNames(server).length;
    const heapBefore = await heapAfterGc();

    let memberIn: Promise<void> | undefined;
    for (let sent = 0; sent < NAMES; sent += PER_ROUND) {
      await round(sent);
      if (sent === Math.floor(NAMES / 2 / PER_ROUND) * PER_ROUND) {
        // A member, during the flood.
        memberIn = expectUser(
          server.connect('/tenant-acme', { cookie: alice }),
          'alice',
          'a member during the flood',
        );
      }
    }
    await memberIn;
    await clients.call('multiplexClose', null);
    await settled(
      () => namespaceNames(server).every((name) => !name.includes('flood')),
      'the flood’s children to go',
    );
    const namesAfter = namespaceNames(server).length;
    const heapAfter = await heapAfterGc();
    const grownMb = (heapAfter - heapBefore) / 2 ** 20;
    t.diagnostic(
      `namespaces ${namesBefore} -> ${namesAfter}; heap ${(heapBefore / 2 ** 20).toFixed(1)} -> ` +
        `${(heapAfter / 2 ** 20).toFixed(1)} MB`,
    );
    // The member's /tenant-acme is the one namespace more.
    assert.equal(namesAfter, namesBefore + 1);
    // Kept, each child is about 2 KiB: 20 000 would be about 40 MB.
    assert.ok(grownMb < 4, `heap grew by ${grownMb.toFixed(1)} MB`);
  });
});

/**
 * Resolves once `check()` is true, looking again after each turn of the event loop (Socket.IO
 * tells nobody when it discards a socket or a child): rejects, naming `what`, after `ms`.
 */
async function settled(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
