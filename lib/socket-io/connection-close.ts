import type { Socket } from 'socket.io';

// The waiters on a connection's 'close', in a field of the connection itself (set at the same
// point for every connection, so they share one shape): cheaper per handshake than a WeakMap
// entry, which also costs the garbage collector an ephemeron per connection.
const kWaiting = Symbol('socket.io-session-auth close waiters');

type Watched = Socket['conn'] & { [kWaiting]?: Set<() => void> };

// One listener function for every connection (EventEmitter calls it with the connection as
// `this`): no closure per connection, and nothing that keeps a handshake's middleware run alive
// as long as the connection.
function closed(this: Watched): void {
  const waiting = this[kWaiting];
  if (!waiting) return;
  for (const fn of waiting) fn();
  waiting.clear();
}

function pendingOf(conn: Watched): Set<() => void> {
  let pending = conn[kWaiting];
  if (!pending) {
    pending = new Set();
    conn[kWaiting] = pending;
    // 'close' comes once; a plain listener costs less than once()'s wrapper.
    conn.on('close', closed);
  }
  return pending;
}

/**
 * Calls `abort` if the socket's connection closes before the returned function is called (on the
 * next tick if it has closed already): a handshake step waiting on something must let go of a
 * client that has left.
 */
export function onConnectionClose(socket: Socket, abort: () => void): () => void {
  if (socket.conn.readyState === 'closed') {
    // Its 'close' has been emitted and will not come again: a step that starts now (a namespace
    // that waited on another's session read) is let go at once, not at its timeout. Deferred: the
    // caller has not yet kept the function it is given back.
    let watching = true;
    process.nextTick(() => {
      if (watching) abort();
    });
    return () => {
      watching = false;
    };
  }
  const pending = pendingOf(socket.conn);
  pending.add(abort);
  return () => pending.delete(abort);
}
