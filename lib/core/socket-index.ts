// The server's per-session and per-user indexes of tracked sockets (state.ts keeps them): a key
// most often has one socket, so no Set for one. A key's sockets come back in the order they were
// added (rateLimit's 'end-oldest' takes the first).
import type { SocketState } from './state.js';

/** A per-session (or per-user) index of tracked sockets: most keys have one, so no Set for one. */
export class SocketIndex<Key extends string = string> {
  private readonly map = new Map<Key, SocketState | Set<SocketState>>();

  add(key: Key, state: SocketState): void {
    const current = this.map.get(key);
    if (current === undefined) this.map.set(key, state);
    else if (current instanceof Set) current.add(state);
    else if (current !== state) this.map.set(key, new Set([current, state]));
  }

  delete(key: Key, state: SocketState): void {
    const current = this.map.get(key);
    if (current === state) this.map.delete(key);
    else if (current instanceof Set) {
      current.delete(state);
      if (current.size === 1) this.map.set(key, current.values().next().value as SocketState);
    }
  }

  /** The sockets of `key`, copied: ending them changes the index. */
  get(key: Key): SocketState[] {
    const current = this.map.get(key);
    if (current === undefined) return [];
    return current instanceof Set ? [...current] : [current];
  }

  keys(): IterableIterator<Key> {
    return this.map.keys();
  }

  get size(): number {
    return this.map.size;
  }
}
