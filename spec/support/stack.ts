// The versions of the stack a spec run uses, chosen by the environment, so that one suite runs on
// every version the package supports (see the README's compatibility table and `npm run spec:legs`).
//   SOCKET_IO  4.6 | 4.7 | 4.8 (default): socket.io itself, installed under the npm aliases
//              socket.io46 and socket.io47 beside the newest 4.8
//   PASSPORT   0.6 | 0.7 (default): passport, 0.6 under the alias passport06
// The package under test never imports socket.io or passport at run time: it works on whatever
// instances the app gives it, which is what lets one suite drive every version.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type * as SocketIo from 'socket.io';
import type * as PassportModule from 'passport';

function choose<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new Error(`${name}=${value}: expected one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/** The Socket.IO minor this run uses. */
export const socketIoVersion = choose('SOCKET_IO', ['4.6', '4.7', '4.8'] as const, '4.8');
/** The Passport minor this run uses. */
export const passportVersion = choose('PASSPORT', ['0.6', '0.7'] as const, '0.7');

const socketIoPackage = { '4.6': 'socket.io46', '4.7': 'socket.io47', '4.8': 'socket.io' }[
  socketIoVersion
];
const passportPackage = { '0.6': 'passport06', '0.7': 'passport' }[passportVersion];

// Loaded with require so the package name can be chosen at run time. The older versions are typed
// as the newest: what the specs use of them has the same shape.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const socketIo = require(socketIoPackage) as typeof SocketIo;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const passport = require(passportPackage) as typeof PassportModule;

/** Socket.IO's `Server` class, of the version this run uses. */
export const Server = socketIo.Server;
export type Server = SocketIo.Server;

/** Passport's `Passport` (Authenticator) class, of the version this run uses. */
export const Passport = passport.Passport;
export type Passport = InstanceType<typeof PassportModule.Passport>;

function installedVersion(name: string): string {
  // socket.io's `exports` leave out package.json: read it beside the resolved entry point.
  const file = path.join(path.dirname(require.resolve(name)), '..', 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** The installed versions, for test names and failure messages. */
export const versions = {
  socketIo: installedVersion(socketIoPackage),
  passport: installedVersion(passportPackage),
};
