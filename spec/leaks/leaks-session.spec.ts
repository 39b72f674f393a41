// Leaks in sessionNamespace's store read: see spec/support/leaks.ts.
import { describe, test } from 'node:test';
import { ERR_SESSION_UNAVAILABLE } from '../../lib/index.js';
import { cookie, HANDSHAKES, leakCase, leakSuite, silentStore } from '../support/leaks.js';

describe(`leaks in sessionNamespace: ${HANDSHAKES} hung or abandoned handshakes leave nothing behind`, () => {
  leakSuite();

  test('sessionNamespace: handshakes against a store whose get never answers are refused after timeoutMs', async () => {
    await leakCase({
      label: 'sessionNamespace, store.get never answers, refused after timeoutMs',
      args: { nsps: ['/store-hung'], mode: 'answer', cookie },
      code: ERR_SESSION_UNAVAILABLE,
      reached: () => silentStore.gets,
    });
  });

  test('sessionNamespace: clients that leave while the store read hangs are let go at once', async () => {
    await leakCase({
      label: 'sessionNamespace, clients leaving while store.get hangs',
      args: { nsps: ['/store-long'], mode: 'leave', cookie, stayMs: [10, 60] },
      reached: () => silentStore.gets,
    });
  });
});
