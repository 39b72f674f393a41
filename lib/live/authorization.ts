// What requireAuth decides about a socket, kept so that it can be decided again on a live socket
// (refreshUser, refreshSession, revalidation): its `authorize`, and its room policy, which guards
// every `socket.join()` and, on a re-check, makes the socket leave the rooms it may no longer be in.
import { debug } from '../diagnostics/debug.js';
import type { Socket } from 'socket.io';
import { type Decision, decide } from '../handshake/decide.js';
import type { EndedHow } from '../diagnostics/diagnostics.js';
import { ERR_FORBIDDEN, SessionAuthError, refusal, type SocketEndedCode } from '../core/errors.js';
import { endSocket } from './revocation.js';
import type { Guard, SocketState } from '../core/state.js';
import type { RoomRule } from '../core/types.js';

/** The event a socket receives when a re-check made it leave rooms it may no longer be in. */
export const ROOMS_LEFT_EVENT = 'session:rooms-left';

/** What the client receives with {@link ROOMS_LEFT_EVENT}. */
export interface RoomsLeftPayload {
  /** The rooms the socket left. */
  rooms: string[];
  data: { code: typeof ERR_FORBIDDEN; status: 403 };
}

/** Compiles a room policy; throws a TypeError naming `helper` for a bad one. */
export function compileRooms(
  helper: string,
  policy: unknown,
): readonly { pattern: RegExp; rule: RoomRule<never> }[] | undefined {
  if (policy === undefined) return undefined;
  if (typeof policy === 'function') return [{ pattern: /^/, rule: policy as RoomRule<never> }];
  if (policy === null || typeof policy !== 'object') {
    throw new TypeError(`${helper}: options.rooms must be an object of room rules or a function`);
  }
  return Object.entries(policy).map(([name, rule]: [string, unknown]) => {
    if (typeof rule !== 'function') {
      throw new TypeError(`${helper}: options.rooms[${JSON.stringify(name)}] must be a function`);
    }
    const source = name
      .split('*')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    return { pattern: new RegExp(`^${source}$`, 's'), rule: rule as RoomRule<never> };
  });
}

// The socket's own room, and the package's (connectionStateRecovery): never the rules' business.
function ruled(socket: Socket, room: string): boolean {
  return room !== socket.id && !room.startsWith('session-auth:');
}

/** The decision on one room, through `done` (synchronously when the rule is synchronous). */
function decideRoom(
  guard: Guard,
  socket: Socket,
  room: string,
  done: (decision: Decision) => void,
): void {
  const match = guard.rules?.find(({ pattern }) => pattern.test(room));
  if (!match) {
    done(refusal(ERR_FORBIDDEN, 403));
    return;
  }
  const user = socket.request.user as never;
  decide(() => match.rule(user, room, socket), guard, socket, done);
}

type Join = (rooms: string | string[]) => Promise<void> | void;

/** A handled promise: a rejection nobody awaits never becomes an unhandled rejection. */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/**
 * Guards the socket's `join`: a room no rule allows is never joined, and the call rejects with a
 * SessionAuthError (`ERR_FORBIDDEN`, with `data.room`). When every rule answers synchronously, an
 * allowed join happens at once, as Socket.IO's does. A join nobody awaits never crashes the process.
 */
export function guardJoins(socket: Socket, guard: Guard): void {
  const original = socket.join.bind(socket);
  const join: Join = (rooms) => original(rooms);
  const guarded: Join = function guardedJoin(rooms) {
    const list = (Array.isArray(rooms) ? rooms : [rooms]).filter((room) => ruled(socket, room));
    if (list.length === 0) return join(rooms);
    let pending = list.length;
    let refused: SessionAuthError | undefined;
    let allowed: (() => void) | undefined;
    let denied: ((error: SessionAuthError) => void) | undefined;
    for (const room of list) {
      decideRoom(guard, socket, room, (error) => {
        if (refused || pending === 0) return;
        if (error) {
          refused = new SessionAuthError(
            error.message,
            { ...error.data, room },
            { cause: error.cause },
          );
          debug('nsp %s socket %s: join of %s refused', socket.nsp.name, socket.id, room);
          denied?.(refused);
        } else if (--pending === 0) {
          allowed?.();
        }
      });
    }
    // Every rule has answered already (synchronous rules): join now, or refuse now.
    if (refused) return handled(Promise.reject(refused));
    if (pending === 0) return join(rooms);
    return handled(
      new Promise<void>((resolve, reject) => {
        allowed = () => {
          Promise.resolve(join(rooms)).then(resolve, reject);
        };
        denied = reject;
      }),
    );
  };
  Object.defineProperty(socket, 'join', { configurable: true, writable: true, value: guarded });
}

/** Runs `authorize` again; resolves with the refusal, if any (reported when the check failed). */
function authorizeAgain(guard: Guard, socket: Socket): Promise<SessionAuthError | undefined> {
  const { authorize } = guard;
  if (!authorize) return Promise.resolve(undefined);
  const user = socket.request.user as never;
  return new Promise((resolve) => {
    decide(() => authorize(user, socket), guard, socket, resolve);
  });
}

/** The rooms (of those the rules look at) a socket may no longer be in. */
function roomsRefused(guard: Guard, socket: Socket): Promise<string[]> {
  if (!guard.rules) return Promise.resolve([]);
  const rooms = [...socket.rooms].filter((room) => ruled(socket, room));
  return Promise.all(
    rooms.map(
      (room) =>
        new Promise<string | undefined>((resolve) => {
          decideRoom(guard, socket, room, (refused) => {
            resolve(refused ? room : undefined);
          });
        }),
    ),
  ).then((list) => list.filter((room): room is string => room !== undefined));
}

/**
 * Decides again, with the socket's current user, what its requireAuth decided at connect: a
 * socket `authorize` turns down ends (`session:ended`, ERR_FORBIDDEN 403, or the check's own
 * code); one that stays leaves the rooms its room policy no longer allows, and is told which.
 */
export async function authorizeLive(state: SocketState, how: EndedHow): Promise<void> {
  const { socket, guards } = state;
  if (!guards) return;
  for (const guard of guards) {
    const refused = await authorizeAgain(guard, socket);
    if (gone(state)) return;
    if (refused) {
      endSocket(state, refused.data.code as SocketEndedCode, how);
      return;
    }
    const leaving = await roomsRefused(guard, socket);
    if (leaving.length === 0 || gone(state)) continue;
    for (const room of leaving) void socket.leave(room);
    const payload: RoomsLeftPayload = {
      rooms: leaving,
      data: { code: ERR_FORBIDDEN, status: 403 },
    };
    socket.emit(ROOMS_LEFT_EVENT, payload);
  }
}

// Read again after each await: the socket may have ended or left meanwhile.
function gone(state: SocketState): boolean {
  return state.ended !== undefined || !state.socket.connected;
}

/** Remembers a requireAuth's guard on a tracked socket it let in, for later re-checks. */
export function keepGuard(state: SocketState, guard: Guard): void {
  if (!guard.authorize && !guard.rules) return;
  if (!state.guards) state.guards = [guard];
  else if (!state.guards.includes(guard)) state.guards.push(guard);
}
