// The ES module entry re-exports the CommonJS build, so `import` and `require()` share one copy of
// the package (and its per-namespace state) instead of loading it twice.
export {
  wrapExpressMiddleware,
  sessionNamespace,
  requireAuth,
  SessionAuthError,
  ERR_MIDDLEWARE_ENDED,
  ERR_MIDDLEWARE_TIMEOUT,
  ERR_MIDDLEWARE_ERROR,
  ERR_UNAUTHORIZED,
  ERR_FORBIDDEN,
  ERR_AUTHORIZE_ERROR,
} from './index.js';
export type * from './index.js';
