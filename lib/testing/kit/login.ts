// Logging an agent in: as a user with no login form in the way (the desk runs the app's session
// middleware, Passport's req.login and then its deserializeUser, as a socket's handshake will), or
// through the app's own login route.
import { failure, preview } from '../bounded.js';
import { KitAgent, type Agent, type AgentContext } from '../client/agent.js';
import type { Deserialized } from './desk.js';
import type { TestNode } from './nodes.js';

/** Options for {@link TestKit.loginAs}. */
export interface LoginAsOptions {
  /**
   * A name for the agent, in failure messages.
   * @default the user's `username`, `name`, `email` or `id`
   */
  name?: string;
  /**
   * Data to put in the session beside the user, as your routes would (`req.session.cart = …`).
   * @default undefined
   */
  session?: Record<string, unknown>;
}

/** Options for {@link TestKit.loginWith}. */
export interface LoginWithOptions {
  /**
   * A name for the agent, in failure messages.
   * @default the form's `username` or `email`
   */
  name?: string;
  /**
   * The node whose login route is used.
   * @default the kit's first node
   */
  node?: TestNode;
}

/** What logging in needs of its kit, besides what its agents need. */
export interface LoginContext extends AgentContext {
  /** Throws an Error naming `helper` once the kit is closed. */
  open(helper: string): void;
}

function nameOf(user: unknown): string {
  const fields = (user ?? {}) as Record<string, unknown>;
  for (const key of ['username', 'name', 'email', 'id']) {
    const value = fields[key];
    if (typeof value === 'string' || typeof value === 'number') return String(value);
  }
  return 'user';
}

/** Why a user that deserializeUser did not give back cannot log in: what it gave, in words. */
function notFound(name: string, found: Exclude<Deserialized, { user: unknown }>): string {
  const key = `the user key ${preview(found.key)} that serializeUser stored`;
  const refused =
    'so every socket of this agent would be refused ERR_UNAUTHORIZED (reason user-not-found)';
  if (found.gave === false) {
    return (
      `kit.loginAs(${name}): deserializeUser gave false (or null) for ${key}: no such user, ` +
      `${refused}. Log in a user your deserializeUser finds`
    );
  }
  const { message } = found.error;
  if (message === 'Failed to deserialize user out of session') {
    // Passport's own error when no deserializer gave a user or false: undefined, or none at all.
    return (
      `kit.loginAs(${name}): deserializeUser gave undefined for ${key} (Passport: "${message}"), ` +
      `${refused}. Does deserializeUser call done(null, user), and is it registered on this passport?`
    );
  }
  return `kit.loginAs(${name}): deserializeUser failed for ${key}: ${found.error.name}: ${message}`;
}

/**
 * An agent logged in as `user` by the app's session middleware and Passport, once the app's
 * deserializeUser has found that user again, as it must at each of the agent's handshakes.
 */
export async function loginAs(
  kit: LoginContext,
  user: Express.User,
  options: LoginAsOptions = {},
): Promise<Agent> {
  kit.open('kit.loginAs');
  const given: unknown = user;
  if (given === null || given === undefined) {
    throw new TypeError('kit.loginAs: expected the user to log in, as serializeUser takes it');
  }
  if (options.session !== undefined && typeof options.session !== 'object') {
    throw new TypeError('kit.loginAs: options.session must be an object');
  }
  const name = options.name ?? nameOf(user);
  const { setCookie, found } = await kit.desk.login(user, options.session);
  if (!('user' in found)) throw failure(notFound(name, found));
  if (setCookie.length === 0) {
    throw failure(
      `kit.loginAs(${name}): the session middleware set no cookie (with cookie.secure: true, ` +
        "express-session sends none over plain HTTP: use secure: 'auto' in tests)",
    );
  }
  return new KitAgent(kit, name, setCookie);
}

/** An agent logged in through the app's own login route: `form` POSTed to `path`. */
export async function loginWith(
  kit: LoginContext,
  path: string,
  form: Record<string, string> | URLSearchParams,
  options: LoginWithOptions = {},
): Promise<Agent> {
  kit.open('kit.loginWith');
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new TypeError("kit.loginWith: the path must be a string starting with '/'");
  }
  const fields: unknown = form;
  if (fields === null || typeof fields !== 'object') {
    throw new TypeError('kit.loginWith: the form must be an object of strings');
  }
  const body = new URLSearchParams(form);
  const name = options.name ?? body.get('username') ?? body.get('email') ?? 'agent';
  const agent = new KitAgent(kit, name);
  const res = await agent.fetch(path, {
    method: 'POST',
    body,
    ...(options.node !== undefined && { node: options.node }),
  });
  await res.arrayBuffer();
  const seen = await kit.desk.read(agent.cookie);
  if (seen.session?.passport?.user === undefined) {
    const location = res.headers.get('location');
    throw failure(
      `kit.loginWith('${path}') as ${name}: the app answered ${res.status} ${res.statusText}` +
        `${location === null ? '' : ` → ${location}`}, and no session with a user came of it`,
    );
  }
  return agent;
}
