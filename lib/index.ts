export { wrapExpressMiddleware } from './wrap-express-middleware.js';
export type { WrapExpressMiddlewareOptions, SocketMiddleware } from './wrap-express-middleware.js';
export { sessionNamespace } from './session-namespace.js';
export type { SessionNamespaceOptions } from './session-namespace.js';
export { requireAuth } from './require-auth.js';
export type { RequireAuthOptions } from './require-auth.js';
export {
  SessionAuthError,
  ERR_MIDDLEWARE_ENDED,
  ERR_MIDDLEWARE_TIMEOUT,
  ERR_MIDDLEWARE_ERROR,
  ERR_UNAUTHORIZED,
  ERR_FORBIDDEN,
  ERR_AUTHORIZE_ERROR,
} from './errors.js';
export type { SessionAuthErrorCode, SessionAuthErrorData } from './errors.js';
export type {
  ErrorHook,
  ExpressApp,
  ExpressMiddleware,
  NamespaceTarget,
  PassportAuthenticator,
} from './types.js';
