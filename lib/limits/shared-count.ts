// With `redis`: how many sockets a user (or a session) has on every node, for rateLimit's
// `perUser` and `perSession`. Not a rate limiter: a count that only a socket's leave takes back,
// so each node writes its own sockets (count-scripts.ts), beats a heartbeat on Redis's clock, and a
// node that stops beating (killed, cut off) has its sockets stop counting after `nodeTimeoutMs`.
import { randomBytes } from 'node:crypto';
import type { Server } from 'socket.io';
import type { SocketState } from '../core/state.js';
import { withTimeout } from '../core/with-timeout.js';
import { warnOnce } from '../diagnostics/diagnostics.js';
import { crossNode } from '../live/revocation.js';
import { ADMIT_SCRIPT, HEARTBEAT_SCRIPT, LEAVE_SCRIPT, RESTORE_SCRIPT } from './count-scripts.js';

/** What the shared count needs of the app's node-redis (v4 and later) client. */
interface RedisClient {
  sendCommand(args: string[]): Promise<unknown>;
  isOpen?: boolean;
}

/** An admission's answer; undefined when Redis failed or did not answer in time. */
export interface Admission {
  admitted: boolean;
  /** With 'end-oldest': the sockets (members) taken out of the count to make room, oldest first. */
  evicted: string[];
}

/** Sent through the adapter: (prefix, member) — end that socket of yours, it was the oldest. */
const EVICT_EVENT = 'socket.io-session-auth:limit-evict';
const TIMED_OUT = Symbol('timed out');

export class SharedCount {
  /** Fresh per count: a node that comes back is a new node, its old sockets reaped. */
  readonly node = randomBytes(12).toString('base64url');
  /** This node's sockets in the count: their member, and each count key → when admitted. */
  private readonly entries = new Map<SocketState, { member: string; keys: Map<string, string> }>();
  private readonly members = new Map<string, SocketState>();
  /** Leaves Redis did not take (down, slow): sent again at each heartbeat until it does. */
  private retries: [member: string, key: string][] = [];
  private readonly heartbeat: NodeJS.Timeout;
  private beaten = false;

  constructor(
    private readonly io: Server,
    private readonly client: RedisClient,
    /** The scope's prefix, in a hash tag. */
    readonly prefix: string,
    private readonly timeoutMs: number,
    private readonly nodeTimeoutMs: number,
    /** Ends a socket of this node that an admission on any node took out of the count. */
    private readonly evict: (state: SocketState, by: string) => void,
  ) {
    // Real time: heartbeats are judged on Redis's clock (TIME).
    this.heartbeat = setInterval(
      () => {
        this.beat();
      },
      Math.max(Math.floor(nodeTimeoutMs / 3), 1),
    );
    this.heartbeat.unref();
    this.beat();
    // (Undefined for a Server attached to no HTTP server, whatever its type says.)
    (io.httpServer as typeof io.httpServer | undefined)?.once('close', () => {
      clearInterval(this.heartbeat);
    });
    io.on(
      EVICT_EVENT as never,
      ((prefix: unknown, member: unknown, by: unknown) => {
        if (prefix === this.prefix && typeof member === 'string') {
          this.evictLocal(member, String(by));
        }
      }) as never,
    );
  }

  /**
   * Counts `state` under its user's (or session's) key if there is room, or makes room: one
   * script, one round trip.
   */
  async admit(
    state: SocketState,
    by: string,
    counted: string,
    max: number,
    endOldest: boolean,
  ): Promise<Admission | undefined> {
    const key = `${this.prefix}:${by}:${counted}`;
    let entry = this.entries.get(state);
    if (!entry) {
      entry = { member: `${this.node}|${state.socket.id}`, keys: new Map() };
      this.entries.set(state, entry);
      this.members.set(entry.member, state);
    }
    // Noted before the answer: a leave meanwhile, or a timeout that Redis ran after all, still
    // takes it out.
    entry.keys.set(key, '');
    const args = [entry.member, String(max), endOldest ? '1' : '0', String(this.nodeTimeoutMs)];
    const reply = await this.run(ADMIT_SCRIPT, [key, ...args]);
    if (reply === undefined) return undefined;
    const [admitted, at, ...evicted] = Array.isArray(reply) ? reply.map(String) : [];
    if (this.entries.get(state) !== entry) this.leaveKey(entry.member, key);
    else if (admitted === '1' && at !== undefined) entry.keys.set(key, at);
    else entry.keys.delete(key);
    return { admitted: admitted === '1', evicted };
  }

  /** The socket is gone: out of every count it was put in. */
  left(state: SocketState): void {
    const entry = this.entries.get(state);
    if (!entry) return;
    this.entries.delete(state);
    this.members.delete(entry.member);
    for (const key of entry.keys.keys()) this.leaveKey(entry.member, key);
  }

  /** A socket an admission took out of the count: ended here, or on the node that holds it. */
  ended(member: string, by: string): void {
    if (member.startsWith(`${this.node}|`)) this.evictLocal(member, by);
    else if (crossNode(this.io)) {
      // Fire and forget: the count already lost it; a node that misses this keeps that socket.
      this.io.serverSideEmit(EVICT_EVENT as never, this.prefix, member, by);
    }
  }

  private evictLocal(member: string, by: string): void {
    const state = this.members.get(member);
    if (state) this.evict(state, by);
  }

  private leaveKey(member: string, key: string): void {
    void this.run(LEAVE_SCRIPT, [key, member]).then((reply) => {
      if (reply === undefined) this.retries.push([member, key]);
    });
  }

  /** The heartbeat and the reap of dead nodes; after this node was reaped, its sockets again. */
  private beat(): void {
    if (this.client.isOpen === false) return;
    const first = !this.beaten;
    this.beaten = true;
    const retries = this.retries;
    this.retries = [];
    for (const [member, key] of retries) this.leaveKey(member, key);
    void this.run(HEARTBEAT_SCRIPT, [String(this.nodeTimeoutMs)]).then((added) => {
      if (Number(added) !== 1 || first) return;
      for (const { member, keys } of this.entries.values()) {
        for (const [key, at] of keys)
          if (at !== '') void this.run(RESTORE_SCRIPT, [key, member, at]);
      }
    });
  }

  /** A script with (prefix, node, …args), bounded; undefined (and a warning) when it failed. */
  private async run(script: string, args: string[]): Promise<unknown> {
    const command = ['EVAL', script, '0', this.prefix, this.node, ...args];
    try {
      const reply = await withTimeout<unknown>(
        this.client.sendCommand(command),
        this.timeoutMs,
        () => TIMED_OUT,
        true,
      );
      if (reply !== TIMED_OUT) return reply;
      this.warn(`did not answer within ${this.timeoutMs} ms`);
    } catch (error) {
      this.warn(`failed (${error instanceof Error ? error.message : String(error)})`);
    }
    return undefined;
  }

  private warn(why: string): void {
    warnOnce(
      'SOCKET_IO_SESSION_AUTH_LIMIT_STORE',
      `rateLimit: the limiter's Redis ${why}; budgets follow onStoreError while it lasts.`,
    );
  }
}
