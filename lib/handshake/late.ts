// Sockets already on a namespace when the package layers it: sessionNamespace, passportNamespace or
// requireAuth called after clients connected (an afterInit that runs late, a namespace layered when
// its tenant is set up, the children a parent namespace already has). Socket.IO runs middleware
// only at a connect, so each such socket is checked here as a fresh connect would be: the steps
// added since run on it in order, its events held meanwhile, then the `connection` listeners added
// since. One a step refuses is ended with the refusal's code and shape: `session:ended`, then
// disconnected. So a namespace is guarded from the call on, whenever the call comes.
import type { Socket } from 'socket.io';
import { ERR_MIDDLEWARE_ERROR, SessionAuthError, refusal } from '../core/errors.js';
import { publish } from '../diagnostics/diagnostics.js';
import { type LateCheck, lateCheckOf } from '../core/state-fields.js';
import { refuseEvent } from '../live/events.js';
import { SESSION_ENDED_EVENT, type SessionEndedPayload } from '../live/revocation.js';

type Step = (socket: Socket, next: (err?: Error) => void) => void;

/** A step added to a namespace `socket` was already on: it runs on the socket as at a connect. */
export function lateStep(socket: Socket, step: Step): void {
  const check = lateCheckOf(socket);
  if (check.refused) return;
  check.steps.push(step);
  begin(socket, check);
}

/** A `connection` listener added after `socket` connected: called once it passes the steps. */
export function lateListener(socket: Socket, listener: (socket: Socket) => void): void {
  const check = lateCheckOf(socket);
  if (check.refused) return;
  check.admits.push(listener);
  begin(socket, check);
}

function begin(socket: Socket, check: LateCheck): void {
  holdEvents(socket, check);
  // A run under way (or about to start) takes what was added too.
  if (check.done) return;
  check.done = new Promise<void>((resolve) => {
    check.release = resolve;
  });
  // After the rest of this turn: sessionNamespace then requireAuth, called one after the other,
  // are checked in one run, in their order.
  process.nextTick(run, socket, check);
}

function run(socket: Socket, check: LateCheck): void {
  if (!socket.connected) {
    finish(check);
    return;
  }
  const step = check.steps.shift();
  if (!step) {
    // The socket's held events go on whatever a listener does: finish even if one throws.
    try {
      for (const listener of check.admits.splice(0)) listener(socket);
    } finally {
      finish(check);
    }
    return;
  }
  let answered = false;
  const next = (err?: Error): void => {
    if (answered) return;
    answered = true;
    if (err) refuse(socket, check, err);
    else run(socket, check);
  };
  try {
    step(socket, next);
  } catch (error) {
    next(refusal(ERR_MIDDLEWARE_ERROR, 500, error));
  }
}

function finish(check: LateCheck): void {
  const { release } = check;
  check.done = undefined;
  release();
}

/** Ended as it would have been refused: the refusal's message and data, in `session:ended`. */
function refuse(socket: Socket, check: LateCheck, err: Error): void {
  const refused = err instanceof SessionAuthError ? err : refusal(ERR_MIDDLEWARE_ERROR, 500, err);
  check.refused = refused;
  check.steps.length = 0;
  check.admits.length = 0;
  const { code } = refused.data;
  publish('sessionEnded', () => ({
    namespace: socket.nsp.name,
    socketId: socket.id,
    code,
    how: 'layered',
  }));
  const payload: SessionEndedPayload = { message: refused.message, data: { ...refused.data } };
  if (socket.connected) {
    socket.emit(SESSION_ENDED_EVENT, payload);
    socket.disconnect();
  }
  finish(check);
}

/** The socket's events wait for its check, and are refused once it has ended. */
function holdEvents(socket: Socket, check: LateCheck): void {
  if (check.holding) return;
  check.holding = true;
  socket.use(function lateCheckHold(event, next) {
    if (check.done) {
      void check.done.then(() => {
        lateCheckHold(event, next);
      });
    } else if (check.refused) {
      refuseEvent(socket, event, check.refused);
    } else {
      next();
    }
  });
}
