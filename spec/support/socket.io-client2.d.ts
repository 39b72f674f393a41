// `socket.io-client2` is socket.io-client 2.5 installed under an alias (npm:socket.io-client@^2.5),
// for spec/socket-io/old-clients.spec.ts. It ships no types: the parts the spec uses.
declare module 'socket.io-client2' {
  interface Socket {
    readonly connected: boolean;
    on(event: string, listener: (arg: unknown) => void): this;
    emit(event: string, ...args: unknown[]): this;
    close(): this;
  }
  interface ConnectOptions {
    forceNew?: boolean;
    reconnection?: boolean;
    reconnectionDelay?: number;
    randomizationFactor?: number;
    transports?: string[];
    query?: Record<string, string>;
    /** Node only: headers of every HTTP request and of the WebSocket upgrade (not on Node 22+). */
    extraHeaders?: Record<string, string>;
  }
  function io(uri: string, options?: ConnectOptions): Socket;
  export = io;
}
