export { wrapExpressMiddleware } from './wrap-express-middleware.js';
export type { WrapExpressMiddlewareOptions, SocketMiddleware } from './wrap-express-middleware.js';
export { sessionNamespace } from './session-namespace.js';
export { passportNamespace } from './passport-namespace.js';
export type { PassportNamespaceOptions } from './passport-namespace.js';
export { TOKEN_EVENT } from './token.js';
export type { TokenRenewalAck } from './token.js';
export type { SessionNamespaceOptions } from './session-namespace.js';
export { requireAuth } from './require-auth.js';
export type { RequireAuthOptions } from './require-auth.js';
export { disconnectSession } from './disconnect-session.js';
export { disconnectUser } from './disconnect-user.js';
export { disconnectOnLogout } from './disconnect-on-logout.js';
export { refreshUser } from './refresh-user.js';
export { refreshSession } from './refresh-session.js';
export { reloadSession } from './reload-session.js';
export { saveSession } from './save-session.js';
export { SESSION_ENDED_EVENT } from './revocation.js';
export { COOKIE_EXPIRING_EVENT } from './cookie-refresh.js';
export type { CookieExpiringPayload } from './cookie-refresh.js';
export { refreshCookieRoute } from './refresh-cookie-route.js';
export type { RefreshCookieRouteOptions } from './refresh-cookie-route.js';
export type { SessionEndedPayload } from './revocation.js';
export type { EventRefusal } from './events.js';
export { ROOMS_LEFT_EVENT } from './authorization.js';
export type { RoomsLeftPayload } from './authorization.js';
export { CHANNELS as DIAGNOSTICS_CHANNELS } from './diagnostics.js';
export type {
  BroadcastMessage,
  EndedHow,
  EventRefusedMessage,
  HandshakeMessage,
  NoUserReason,
  SessionEndedMessage,
  StoreErrorMessage,
} from './diagnostics.js';
export {
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
  ERR_BAD_TOKEN_EXPIRY,
} from './errors.js';
export type {
  SessionAuthErrorCode,
  SessionAuthErrorData,
  SessionEndedCode,
  SocketEndedCode,
} from './errors.js';
export type {
  ErrorHook,
  ExpressApp,
  ExpressMiddleware,
  NamespaceTarget,
  PassportAuthenticator,
  RoomPolicy,
  RoomRule,
} from './types.js';
