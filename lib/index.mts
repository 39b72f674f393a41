// The ES module entry re-exports the CommonJS build, so `import` and `require()` share one copy of
// the package (and its per-namespace state) instead of loading it twice.
export {
  wrapExpressMiddleware,
  sessionNamespace,
  requireAuth,
  disconnectSession,
  disconnectUser,
  disconnectOnLogout,
  refreshUser,
  refreshSession,
  ROOMS_LEFT_EVENT,
  reloadSession,
  saveSession,
  SESSION_ENDED_EVENT,
  SessionAuthError,
  ERR_MIDDLEWARE_ENDED,
  ERR_MIDDLEWARE_TIMEOUT,
  ERR_MIDDLEWARE_ERROR,
  ERR_UNAUTHORIZED,
  ERR_FORBIDDEN,
  ERR_AUTHORIZE_ERROR,
  ERR_SESSION_REVOKED,
  ERR_SESSION_ROTATED,
  ERR_SESSION_EXPIRED,
  ERR_ORIGIN_FORBIDDEN,
  ERR_SESSION_UNAVAILABLE,
} from './index.js';
export type * from './index.js';
