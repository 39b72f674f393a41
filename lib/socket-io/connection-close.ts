import type { Socket } from 'socket.io';

// One 'close' listener per connection, however many handshakes are pending on it.
const pendingOnConnection = new WeakMap<object, Set<() => void>>();

// Its own function, so that the listener's scope holds the connection and the set only: created
// beside `abort`, it would keep every handshake's middleware run alive as long as the connection.
function pendingOf(conn: Socket['conn']): Set<() => void> {
  let pending = pendingOnConnection.get(conn);
  if (!pending) {
    const set = new Set<() => void>();
    pending = set;
    pendingOnConnection.set(conn, set);
    conn.once('close', () => {
      pendingOnConnection.delete(conn);
      for (const fn of set) fn();
      set.clear();
    });
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
