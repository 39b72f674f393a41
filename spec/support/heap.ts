import v8 from 'node:v8';
import vm from 'node:vm';
import { delay } from './client.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** The heap in use after a few forced garbage collections. */
export async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 6; i++) {
    gc();
    // Pacing, not an assertion: finalizers and weak callbacks run between collections.
    await delay(20);
  }
  return process.memoryUsage().heapUsed;
}
