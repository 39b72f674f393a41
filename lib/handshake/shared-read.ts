// Connects of one connection that overlap (several namespaces at once) share one session read: the
// first leads it, the others wait for it and get its session as express-session would load it.
import type { Socket } from 'socket.io';
import type { SharedRead } from '../core/state.js';
import { readUnderWay, setReadUnderWay } from '../core/state-fields.js';
import type { SessionRequest } from '../core/types.js';
import { explainNoUser } from '../diagnostics/no-user.js';
import { type SessionReader, readSession, storedSessionID } from './session-read.js';

type Next = (err?: Error) => void;

/** The read under way on this connection, when it reads the same session the same way. */
export function sharedRead(socket: Socket, reader: SessionReader): SharedRead | undefined {
  const shared = readUnderWay(socket.conn);
  const { session, passport, app } = reader.options;
  return shared && shared.session === session && shared.passport === passport && shared.app === app
    ? shared
    : undefined;
}

/** Waits for the leader's read and takes its session; reads on its own when it cannot. */
export function followRead(
  shared: SharedRead,
  reader: SessionReader,
  socket: Socket,
  req: SessionRequest,
  next: Next,
): void {
  shared.waiting.push((leader) => {
    if (leader && copySession(leader.req, req, leader.res.keysBeforePassport)) {
      explainNoUser(reader.options, socket, req, leader.res, next);
    } else {
      readSession(reader, socket, req, (err, res) => {
        if (err) next(err);
        else explainNoUser(reader.options, socket, req, res, next);
      });
    }
  });
}

/** Reads the session for this connect and for every connect of the connection that waits on it. */
export function leadRead(
  reader: SessionReader,
  socket: Socket,
  req: SessionRequest,
  next: Next,
): void {
  const { session, passport, app } = reader.options;
  const connection = socket.conn;
  const own: SharedRead = { session, passport, app, waiting: [] };
  setReadUnderWay(connection, own);
  readSession(reader, socket, req, (err, res) => {
    if (readUnderWay(connection) === own) setReadUnderWay(connection, undefined);
    for (const follow of own.waiting) follow(err || res.skipped ? undefined : { req, res });
    if (err) next(err);
    else explainNoUser(reader.options, socket, req, res, next);
  });
}

/**
 * Gives a follower the leader's session, as express-session would have loaded it (its own
 * Session, from the same stored data), and the leader's user and Passport helpers. Only for a
 * session the store returned: a stranger's made-up session is not shared.
 */
function copySession(
  leader: SessionRequest,
  follower: SessionRequest,
  passportKeys: readonly PropertyKey[],
): boolean {
  const { sessionStore: store, sessionID, session } = leader;
  if (
    typeof sessionID !== 'string' ||
    typeof store?.createSession !== 'function' ||
    session === null ||
    typeof session !== 'object' ||
    storedSessionID(leader) === undefined
  ) {
    return false;
  }
  follower.sessionStore = store;
  follower.sessionID = sessionID;
  store.createSession(follower, JSON.parse(JSON.stringify(session)) as object);
  const from = leader as unknown as Record<PropertyKey, unknown>;
  const to = follower as unknown as Record<PropertyKey, unknown>;
  const before = new Set(passportKeys);
  for (const key of Reflect.ownKeys(leader)) {
    if (!before.has(key) && key !== 'session') to[key] = from[key];
  }
  return true;
}
