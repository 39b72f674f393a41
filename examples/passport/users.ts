import {
  randomBytes,
  scrypt,
  timingSafeEqual,
  type BinaryLike,
  type ScryptOptions,
} from 'node:crypto';

// The user shape Passport puts on `req.user` and, through sessionNamespace, on
// `socket.request.user`. Declared once, for HTTP routes and sockets alike.
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface User {
      id: string;
      username: string;
      role: 'admin' | 'member';
      tenants: string[];
    }
  }
}

/** A user as stored: never the password, only an scrypt hash of it. */
interface StoredUser extends Express.User {
  /** `scrypt$N$r$p$salt$hash`, salt and hash in base64url. */
  passwordHash: string;
}

// Made once with a one-off script, then pasted here (a real app keeps them in its database):
//   npx tsx -e "require('./examples/passport/users.ts').hashPassword('the password').then(console.log)"
const users: StoredUser[] = [
  {
    id: '1',
    username: 'alice',
    role: 'admin',
    tenants: ['acme'],
    passwordHash:
      'scrypt$16384$8$1$mEydgrxvl9pYmwawgTCysg$TO0JAAfNHms81JEgl-93wY3URv0rfrBWsTFKw6RcQAw',
  },
  {
    id: '2',
    username: 'bob',
    role: 'member',
    tenants: ['globex'],
    passwordHash:
      'scrypt$16384$8$1$lprT3k9oDN0ExFUrFDpNRg$TbXHg3DxvU9G0c5tGL4cQXBtcrE-207T48EA_nYShwM',
  },
  {
    id: '3',
    username: 'carol',
    role: 'member',
    tenants: ['acme'],
    passwordHash:
      'scrypt$16384$8$1$leEgUDp_fmdDF0aAf6c7jg$qyRBWuVVfwKDmjiDCIku5ONzHR8WYMwbu43ydtTejgk',
  },
];

/**
 * Demo only: the accounts and passwords the login page and the console show, so that you can try
 * the demo. Nothing checks a password against this list; a real app has no such list.
 */
export const demoAccounts: readonly {
  username: string;
  password: string;
  role: Express.User['role'];
  tenants: readonly string[];
}[] = [
  { username: 'alice', password: 'alice-pass', role: 'admin', tenants: ['acme'] },
  { username: 'bob', password: 'bob-pass', role: 'member', tenants: ['globex'] },
  { username: 'carol', password: 'carol-pass', role: 'member', tenants: ['acme'] },
];

// Hashed when nobody has that name, so that an unknown name takes as long as a wrong password.
const unknownUserHash =
  'scrypt$16384$8$1$pF9qNmdA0OLW_kJ7ZASEuw$nepYkflO90V3c_gioid0RYYzHM4JnnFHP1xSrhrtuJ4';

const SCRYPT = { N: 16384, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;

function scryptAsync(
  password: BinaryLike,
  salt: BinaryLike,
  keylen: number,
  options: ScryptOptions,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, options, (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

/** Hashes a password into the `scrypt$N$r$p$salt$hash` string stored above. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, KEY_LENGTH, SCRYPT);
  const { N, r, p } = SCRYPT;
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** Whether `password` matches a stored `scrypt$…` hash, compared in constant time. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || salt === undefined || hash === undefined) return false;
  const expected = Buffer.from(hash, 'base64url');
  if (expected.length < 16) return false;
  const actual = await scryptAsync(password, Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return timingSafeEqual(actual, expected);
}

/** What the rest of the app sees of a user: never the hash. */
function publicUser({ id, username, role, tenants }: StoredUser): Express.User {
  return { id, username, role, tenants: [...tenants] };
}

/** The user with this name and password, or undefined. Used by passport-local. */
export async function authenticate(
  username: string,
  password: string,
): Promise<Express.User | undefined> {
  const user = users.find((u) => u.username === username);
  const ok = await verifyPassword(password, user?.passwordHash ?? unknownUserHash);
  return user && ok ? publicUser(user) : undefined;
}

/** The user with this ID, or undefined. Used by Passport's deserializeUser. */
export function findUserById(id: string): Express.User | undefined {
  const user = users.find((u) => u.id === id);
  return user && publicUser(user);
}

/** What an admin may change about a user: their role and their tenants. */
export type Access = Pick<Express.User, 'role' | 'tenants'>;

/** Whether a client sent a valid `Access`: a role, and at most 20 tenant names. */
export function isAccess(value: unknown): value is Access {
  const access = value as Partial<Access> | undefined;
  return (
    (access?.role === 'admin' || access?.role === 'member') &&
    Array.isArray(access.tenants) &&
    access.tenants.length <= 20 &&
    access.tenants.every((t) => typeof t === 'string' && /^[\w-]{1,40}$/.test(t))
  );
}

const initialAccess = new Map(users.map((u) => [u.id, { role: u.role, tenants: [...u.tenants] }]));

/**
 * Changes a user's role and tenants, as an admin page would in a real app's database. The demo
 * keeps users in this process: on several processes, each has its own copy.
 */
export function setAccess(id: string, access: Access): Express.User | undefined {
  const user = users.find((u) => u.id === id);
  if (!user) return undefined;
  user.role = access.role;
  user.tenants = [...access.tenants];
  return publicUser(user);
}

/** Puts every user's role and tenants back as they were at start (for tests). */
export function resetAccess(): void {
  for (const [id, access] of initialAccess) setAccess(id, access);
}
