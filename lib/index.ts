export { wrapExpressMiddleware } from './api/wrap-express-middleware.js';
export type {
  WrapExpressMiddlewareOptions,
  SocketMiddleware,
} from './api/wrap-express-middleware.js';
export { sessionNamespace } from './api/session-namespace.js';
export { passportNamespace } from './api/passport-namespace.js';
export type { PassportNamespaceOptions } from './api/passport-namespace.js';
export { TOKEN_EVENT } from './tokens/token.js';
export type { TokenRenewalAck } from './tokens/token.js';
export type { SessionNamespaceOptions } from './api/session-namespace.js';
export { requireAuth } from './api/require-auth.js';
export type { RequireAuthOptions } from './api/require-auth.js';
export { disconnectSession } from './sessions/disconnect-session.js';
export { disconnectUser } from './sessions/disconnect-user.js';
export { disconnectOnLogout } from './sessions/disconnect-on-logout.js';
export { refreshUser } from './sessions/refresh-user.js';
export { refreshSession } from './sessions/refresh-session.js';
export { reloadSession } from './sessions/reload-session.js';
export { saveSession } from './sessions/save-session.js';
export { SESSION_ENDED_EVENT } from './live/revocation.js';
export { COOKIE_EXPIRING_EVENT } from './live/cookie-refresh.js';
export type { CookieExpiringPayload } from './live/cookie-refresh.js';
export { refreshCookieRoute } from './sessions/refresh-cookie-route.js';
export type { RefreshCookieRouteOptions } from './sessions/refresh-cookie-route.js';
export type { SessionEndedPayload } from './live/revocation.js';
export type { EventRefusal } from './live/events.js';
export { ROOMS_LEFT_EVENT } from './live/authorization.js';
export type { RoomsLeftPayload } from './live/authorization.js';
export { CHANNELS as DIAGNOSTICS_CHANNELS } from './diagnostics/diagnostics.js';
export type {
  BroadcastMessage,
  EndedHow,
  EventRefusedMessage,
  HandshakeMessage,
  NoUserReason,
  PresenceMessage,
  RateLimitedMessage,
  SessionEndedMessage,
  StoreErrorMessage,
  StoreEventsMessage,
} from './diagnostics/diagnostics.js';
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
  ERR_RATE_LIMITED,
} from './core/errors.js';
export type {
  SessionAuthErrorCode,
  SessionAuthErrorData,
  SessionEndedCode,
  SocketEndedCode,
} from './core/errors.js';
export type {
  ErrorHook,
  ExpressApp,
  ExpressMiddleware,
  NamespaceTarget,
  PassportAuthenticator,
  RoomPolicy,
  RoomRule,
} from './core/types.js';
export { rateLimit } from './limits/rate-limit.js';
export type { Budget, OnStoreError, RateLimitOptions } from './limits/rate-limit.js';
export type { ConnectionLimits } from './limits/connections.js';
export type { EventLimits } from './limits/events.js';
export { presence } from './presence/presence.js';
export type { Presence, PresenceFeedOptions, PresenceOptions } from './presence/presence.js';
export type { PresenceEntry } from './presence/tracker.js';
export type { PresenceRedisClient, PresenceRedisSubscriber } from './presence/shared.js';
export { PRESENCE_DIFF_EVENT, PRESENCE_STATE_EVENT } from './presence/feed.js';
export type { PresenceDiff, PresenceFeedEntry } from './presence/feed.js';
export { sessionRegistry } from './sessions/session-registry.js';
export type {
  SessionRegistryOptions,
  SessionRegistryRedisClient,
} from './sessions/session-registry.js';
export { listSessions, sessionHandle } from './sessions/list-sessions.js';
export type { SessionInfo } from './sessions/list-sessions.js';
export { endSessions } from './sessions/end-sessions.js';
export type { EndSessionsOptions, EndSessionsResult } from './sessions/end-sessions.js';
export type { StoreEventFeed, StoreEventSink } from './live/store-events.js';
export { redisStoreEvents } from './feeds/redis.js';
export type {
  RedisStoreEventsClient,
  RedisStoreEventsOptions,
  RedisStoreEventsSubscriber,
} from './feeds/redis.js';
export { pgStoreEvents } from './feeds/postgres.js';
export type {
  PgNotification,
  PgStoreEventsClient,
  PgStoreEventsOptions,
  PgStoreEventsPool,
} from './feeds/postgres.js';
export { pgStoreEventsSql } from './feeds/postgres-sql.js';
export type { PgStoreEventsSqlOptions } from './feeds/postgres-sql.js';
