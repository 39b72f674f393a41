import { delay, waitFor } from './client.js';

/** Ref'd timers of this process (the test's own timeout among them: compare with a baseline). */
export function activeTimeouts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

/**
 * The number of timers once it has stopped moving (two samples 50 ms apart agree): a baseline
 * taken mid-handshake would count timers that go away on their own.
 */
export async function settledTimeouts(): Promise<number> {
  let previous = activeTimeouts();
  for (let i = 0; i < 40; i++) {
    // Sampled: nothing tells when a timer goes away.
    await delay(50);
    const now = activeTimeouts();
    if (now === previous) return now;
    previous = now;
  }
  return previous;
}

/** Waits (bounded) until the process has no more ref'd timers than `baseline`. */
export async function timersBackTo(baseline: number): Promise<void> {
  await waitFor(
    () => activeTimeouts() <= baseline,
    5000,
    `timers back to ${baseline} (now ${activeTimeouts()})`,
  );
}
