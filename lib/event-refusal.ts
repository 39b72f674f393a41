import { STATUS_CODES } from 'node:http';
import type { Event } from 'socket.io';

/** What an event's ack receives when the event is refused. */
export interface EventRefusal {
  error: { message: string; code: string; status: number };
}

/**
 * Refuses an event: it never reaches its handlers, and when the client asked for an ack (the last
 * argument is a function), the ack is called with one argument, `{ error: { message, code,
 * status } }`.
 */
export function refuseEvent(event: Event, code: string, status: number): void {
  const ack = event[event.length - 1] as unknown;
  if (typeof ack === 'function') {
    const refusal: EventRefusal = {
      error: { message: STATUS_CODES[status] ?? 'Error', code, status },
    };
    (ack as (reply: EventRefusal) => void)(refusal);
  }
}
