import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Session, SessionData } from 'express-session';
import type { Namespace, Server, Socket } from 'socket.io';

// Socket.IO types `socket.request` as Node's IncomingMessage. These declarations are identical,
// to the letter, to the ones express-session and Passport add to `Express.Request` (which extends
// IncomingMessage): any difference would make TypeScript reject Express's own Request type.
declare module 'http' {
  interface IncomingMessage {
    /** The express-session session, on namespaces set up with `sessionNamespace`. */
    session: Session & Partial<SessionData>;
    /** The express-session session ID, on namespaces set up with `sessionNamespace`. */
    sessionID: string;
    /** The Passport user, on namespaces set up with `sessionNamespace(…, { passport })`. */
    user?: Express.User | undefined;
  }
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    // Declared by @types/passport too; declared here so the package type-checks without it.
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type
    interface User {}
  }
}

/**
 * Any Express middleware `(req, res, next)`. The parameter types are left open so that
 * middleware typed against Express 4's or Express 5's `Request` and `Response` both fit.
 */
export type ExpressMiddleware = (req: never, res: never, next: never) => unknown;

/** What this package needs of an Express application: its settings and its prototypes. */
export interface ExpressApp {
  /** Reads a setting, such as `'trust proxy fn'` or `'query parser fn'`. */
  get(setting: string): unknown;
  /** The app's request prototype (`app.request`). */
  request: IncomingMessage;
  /** The app's response prototype (`app.response`). */
  response: ServerResponse;
}

/** What this package needs of a Passport `Authenticator` (`import passport from 'passport'`). */
export interface PassportAuthenticator {
  initialize(): ExpressMiddleware;
  session(): ExpressMiddleware;
}

/** A Socket.IO server (its default namespace `/` is meant) or any namespace, parents included. */
export type NamespaceTarget = Server | Namespace;

/** Which browser origins may open a socket that a session cookie authenticates. */
export type AllowedOrigins =
  readonly string[] | ((origin: string, req: IncomingMessage) => boolean);

/** What a session holds, as a store returns it (or cookie-session keeps it): any field may be missing. */
export interface StoredSession {
  cookie?: { expires?: unknown; originalMaxAge?: unknown };
  passport?: { user?: unknown };
}

/** What this package uses of an express-session store (`req.sessionStore`). */
export interface SessionStoreLike {
  get(sid: string, cb: (err: unknown, session?: StoredSession | null) => void): void;
  touch?(sid: string, session: Session, cb?: (err?: unknown) => void): void;
  /** Makes the request's `session` from stored data, as express-session loads it. */
  createSession?(req: object, data: object): unknown;
}

/** The socket's request as the session read sees it: express-session's fields, unchecked. */
export type SessionRequest = Omit<IncomingMessage, 'session' | 'sessionID'> & {
  session?: unknown;
  sessionID?: unknown;
  sessionStore?: SessionStoreLike;
};

/** Decides whether a user may be in a room: only `true` lets the socket join. */
export type RoomRule<User = Express.User> = (
  user: User,
  room: string,
  socket: Socket,
) => boolean | Promise<boolean>;

/**
 * A namespace's room policy: rules by room name pattern (`*` matches any characters, the first
 * pattern that matches decides), or one rule for every room. A room no rule matches is refused.
 */
export type RoomPolicy<User = Express.User> =
  Readonly<Record<string, RoomRule<User>>> | RoomRule<User>;

/** Called with an error the client was not shown, so it is not lost on the server. */
export type ErrorHook = (error: unknown, socket: Socket) => void;
