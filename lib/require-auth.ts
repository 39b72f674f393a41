import type { Namespace, Socket } from 'socket.io';
import { ERR_AUTHORIZE_ERROR, ERR_FORBIDDEN, ERR_UNAUTHORIZED, refusal, report } from './errors.js';
import { checkFunction, checkOptions, markGuarded, toNamespace } from './setup.js';
import type { ErrorHook, NamespaceTarget } from './types.js';

/** Options for {@link requireAuth}. */
export interface RequireAuthOptions<User = Express.User> {
  /**
   * Decides whether a logged-in user may join this namespace (for a dynamic namespace,
   * `socket.nsp.name` is the child's name). Only `true` lets the user in; anything else refuses
   * with `ERR_FORBIDDEN` (403). A throw or rejection refuses with `ERR_AUTHORIZE_ERROR` (500).
   * @default undefined (every logged-in user may join)
   */
  authorize?: (user: User, socket: Socket) => boolean | Promise<boolean>;
  /**
   * Receives the error when `authorize` throws or rejects; the client sees only
   * `Internal Server Error`.
   * @default logs it with `console.error`
   */
  onError?: ErrorHook;
}

const noUserWarning = (name: string): string =>
  `requireAuth: sockets of namespace ${name} have neither a session nor a user on socket.request, ` +
  `so every one is refused. Call sessionNamespace(namespace, sessionMiddleware, { passport }) ` +
  `before requireAuth(namespace), or set socket.request.user in io.engine.use() middleware.`;

/**
 * Refuses sockets with no logged-in user (`ERR_UNAUTHORIZED`, 401) and, with `authorize`, users it
 * turns down (`ERR_FORBIDDEN`, 403). Refusals are namespace-level `connect_error`s, so the client
 * is told why and does not reconnect in a loop.
 *
 * @example
 * ```ts
 * requireAuth(sessionNamespace(io.of('/admin'), sessionMiddleware, { passport }), {
 *   authorize: (user) => user.role === 'admin',
 * });
 * ```
 */
export function requireAuth<User = Express.User>(
  target: NamespaceTarget,
  options?: RequireAuthOptions<User>,
): Namespace {
  const nsp = toNamespace(target, 'requireAuth');
  const { authorize, onError } = checkOptions('requireAuth', options);
  checkFunction('requireAuth', 'options.authorize', authorize);
  checkFunction('requireAuth', 'options.onError', onError);
  let warned = false;

  markGuarded(nsp);
  nsp.use(function requireAuthMiddleware(socket, next) {
    const req = socket.request;
    const user = req.user as User | undefined;
    if (!user) {
      // Neither sessionNamespace nor engine-level middleware put anything on this request.
      const { session } = req as { session?: unknown };
      if (!warned && session === undefined && user === undefined) {
        warned = true;
        process.emitWarning(noUserWarning(socket.nsp.name), {
          code: 'SOCKET_IO_SESSION_AUTH_NO_USER',
        });
      }
      next(refusal(ERR_UNAUTHORIZED, 401));
      return;
    }
    if (!authorize) {
      next();
      return;
    }
    const decide = (allowed: unknown): void => {
      next(allowed === true ? undefined : refusal(ERR_FORBIDDEN, 403));
    };
    const failed = (error: unknown): void => {
      report(onError, error, socket);
      next(refusal(ERR_AUTHORIZE_ERROR, 500, error));
    };
    let result: unknown;
    try {
      result = authorize(user, socket);
    } catch (error) {
      failed(error);
      return;
    }
    if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
      (result as PromiseLike<unknown>).then(decide, failed);
    } else {
      decide(result);
    }
  });
  return nsp;
}
