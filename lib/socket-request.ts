import type { IncomingMessage } from 'node:http';
import type { Socket } from 'socket.io';
import type { ExpressApp } from './types.js';

// Socket.IO's `socket.request` is one object shared by every namespace of a connection, so two
// namespaces connecting at once would overwrite each other's `session` and `user`. Each socket gets
// its own request instead: an object whose prototype is the connection's request, so headers, url
// and the TCP socket are shared, and what middleware sets (session, user) is the socket's own.
export function socketRequest(socket: Socket): IncomingMessage {
  const own = Object.getOwnPropertyDescriptor(socket, 'request');
  if (own) return own.value as IncomingMessage;
  const request = Object.create(socket.client.request) as IncomingMessage;
  Object.defineProperty(socket, 'request', { value: request, configurable: true });
  return request;
}

type ExpressRequestFields = IncomingMessage & {
  app?: ExpressApp;
  originalUrl?: string;
  baseUrl?: string;
  params?: Record<string, string>;
  query?: unknown;
};

// What Express's own `init` and `query` middleware give every request, so that Express's request
// helpers (req.get, req.ip, req.accepts, req.query) work on a socket's request.
export function dressRequest(request: IncomingMessage, app: ExpressApp): void {
  const req = request as ExpressRequestFields;
  const connectionRequest = Object.getPrototypeOf(req) as object;
  // Express itself does this to every request it handles; the methods live on the prototype.
  if (Object.getPrototypeOf(connectionRequest) !== app.request) {
    Object.setPrototypeOf(connectionRequest, app.request);
  }
  // Own property, so the settings (trust proxy, query parser) are this app's even if another app
  // dressed the same connection.
  req.app = app;
  req.originalUrl ??= req.url;
  req.baseUrl ??= '';
  req.params ??= {};
  // Express 5 has a `query` getter on its prototype; Express 4 sets it in its query middleware.
  if (!('query' in req)) {
    const parse = app.get('query parser fn');
    const search = (req.url ?? '').split('?')[1] ?? '';
    req.query = typeof parse === 'function' ? (parse as (s: string) => unknown)(search) : {};
  }
}
