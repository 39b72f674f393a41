/* global io, document, location, fetch, Option, setInterval, clearInterval */
// The single page app: plain browser JavaScript, no bundler. `io` is the Socket.IO client served
// by the server at /socket.io/socket.io.js. All the namespaces below share one connection.
//
// Refusals come as connect_error with err.data.code (socket.io-session-auth's codes):
//   ERR_UNAUTHORIZED (401) -> the login page;  ERR_FORBIDDEN (403) -> "not allowed here";
//   ERR_RATE_LIMITED (429) -> too many tabs (or connects from this address): said, not retried.
// A chat message over the user's budget is acked with ERR_RATE_LIMITED and `retryAfterMs`: the
// form says "slow down" and sends nothing until then.
// A live socket told session:ended with ERR_FORBIDDEN lost its access (an admin changed the
// user's role or tenants): only that panel closes; the rest of the page goes on.
// Namespace-level refusals stop socket.io-client: this code never calls connect() again itself.

const $ = (selector, root = document) => root.querySelector(selector);

let me;
let sessionOver = false;
let signingOut = false;

main().catch((error) => {
  showBanner('Something went wrong: ' + error.message, '', 'Reload', '/');
});

async function main() {
  const { user } = await signedIn();
  if (!user) {
    location.assign('/login');
    return;
  }
  showMe(user);
  $('#logout').addEventListener('submit', () => {
    signingOut = true;
  });

  const chat = connect('/chat', $('#chat'));
  room($('#chat'), chat);
  // An admin changed this user's role or tenants: new tenants open, documents are listed again.
  chat.on('me', (user) => {
    showMe(user);
    for (const tenant of me.tenants) openTenant(tenant);
    if (me.role === 'admin') openAdmin();
    for (const refresh of docRefreshers) refresh();
  });

  for (const tenant of me.tenants) openTenant(tenant);
  $('#open-tenant').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = event.target.elements.tenant;
    const tenant = input.value.trim();
    if (tenant !== '') openTenant(tenant);
    input.value = '';
  });

  $('#open-admin').addEventListener('click', openAdmin);
  if (me.role === 'admin' || location.hash === '#admin') openAdmin();
}

function showMe(user) {
  me = user;
  $('#me').textContent =
    `Signed in as ${me.username} (${me.role}) · tenants: ${me.tenants.join(', ') || 'none'}`;
}

/** Why a namespace's socket ended while the session lives on (its access was changed). */
const ACCESS_ENDED = {
  ERR_FORBIDDEN: 'your access was changed: no longer allowed here',
  ERR_AUTHORIZE_ERROR: 'the server could not check your access',
  ERR_MIDDLEWARE_TIMEOUT: 'the server could not check your access in time',
};

/** Opens a namespace and shows its state in `panel`'s `.status`. */
function connect(name, panel) {
  const socket = io(name);
  socket.on('connect', () => {
    setStatus(panel, 'connected', 'ok');
    setEnabled(panel, true);
  });
  socket.on('connect_error', (err) => {
    setEnabled(panel, false);
    const code = err.data?.code;
    if (code === 'ERR_UNAUTHORIZED') {
      location.assign('/login');
    } else if (code === 'ERR_FORBIDDEN') {
      panel.dataset.ended = code;
      setStatus(panel, 'not allowed here', 'refused');
      panel.classList.add('refused');
    } else if (code === 'ERR_RATE_LIMITED') {
      // Over the tab cap (/chat, one per tab), or this address's connects: not retried, a reload
      // tries again.
      panel.dataset.ended = code;
      const wait = `reload in ${Math.ceil(err.data.retryAfterMs / 1000)} s`;
      const why = name === '/chat' ? 'too many tabs open: close one, then' : 'too many connects:';
      setStatus(panel, `${why} ${wait}`, 'refused');
    } else if (socket.active) {
      // A network error, not a refusal: socket.io-client retries by itself, with backoff.
      setStatus(panel, 'connection lost, retrying…', 'warn');
    } else {
      setStatus(panel, `refused: ${err.message}`, 'refused');
    }
  });
  // Sent by the server just before it ends the socket: the session ended, or this socket's access.
  socket.on('session:ended', (payload) => {
    const code = payload.data.code;
    if (code in ACCESS_ENDED) {
      panel.dataset.ended = code;
      panel.classList.add('refused');
      setEnabled(panel, false);
      setStatus(panel, `${ACCESS_ENDED[code]} (${code})`, 'refused');
      return;
    }
    void sessionEnded(code);
  });
  // The user is active on this socket alone: the session lives on in the store, but only an HTTP
  // response can move the browser's cookie.
  socket.on('session:cookie-expiring', () => {
    void fetch('/session/refresh', { method: 'POST', credentials: 'include' });
  });
  socket.on('disconnect', (reason) => {
    setEnabled(panel, false);
    if (panel.dataset.ended) return; // the reason is already shown
    if (socket.active) setStatus(panel, 'connection lost, retrying…', 'warn');
    else setStatus(panel, reason === 'io server disconnect' ? 'disconnected' : 'closed', 'refused');
  });
  return socket;
}

/** Messages, who's online and the message form of one room (the chat, or a tenant). */
function room(panel, socket) {
  socket.on('said', (message) => {
    const item = document.createElement('li');
    const from = document.createElement('b');
    from.textContent = message.from;
    const time = document.createElement('time');
    time.textContent = new Date(message.at).toLocaleTimeString();
    item.append(from, ' ', message.text, ' ', time);
    const list = $('.messages', panel);
    list.append(item);
    list.scrollTop = list.scrollHeight;
  });
  // Who is online: the server's presence feed, the whole list once connected, then the changes
  // (by an opaque id: leaves first, then joins).
  const online = new Map();
  const showOnline = () => {
    const users = [...online.values()].map((entry) => entry.user);
    users.sort((a, b) => a.username.localeCompare(b.username));
    $('.online', panel).replaceChildren(...users.map(presenceItem));
  };
  socket.on('presence:state', (entries) => {
    online.clear();
    for (const entry of entries) online.set(entry.id, entry);
    showOnline();
  });
  socket.on('presence:diff', ({ joins, leaves }) => {
    for (const entry of leaves) online.delete(entry.id);
    for (const entry of joins) online.set(entry.id, entry);
    showOnline();
  });
  $('.say', panel).addEventListener('submit', (event) => {
    event.preventDefault();
    const input = event.target.elements.text;
    if (input.value.trim() === '') return;
    // Only the text: the server adds the sender's name from the session.
    const text = input.value;
    socket.emit('say', { text }, (reply) => {
      if (reply?.error?.code !== 'ERR_RATE_LIMITED') return;
      if (input.value === '') input.value = text; // not sent: keep it for later
      slowDown(panel, socket, reply.error.retryAfterMs);
    });
    input.value = '';
  });
}

/** Over the user's message budget: "slow down", and the form stays off until the wait is over. */
function slowDown(panel, socket, retryAfterMs) {
  const note = $('.slow-down', panel);
  const until = Date.now() + retryAfterMs;
  clearInterval(Number(panel.dataset.slowDown));
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left > 0) {
      note.textContent = `Slow down: you can send again in ${left} s.`;
      return;
    }
    clearInterval(timer);
    delete panel.dataset.slowDown;
    note.hidden = true;
    if (socket.connected) setEnabled(panel, true);
  };
  const timer = setInterval(tick, 250);
  panel.dataset.slowDown = String(timer);
  note.hidden = false;
  tick();
  for (const control of panel.querySelectorAll('.say input, .say button')) control.disabled = true;
}

function presenceItem(user) {
  const item = document.createElement('li');
  item.dataset.userId = user.id;
  item.textContent = user.username;
  if (user.id === me.id) item.textContent += ' (you)';
  if (user.role === 'admin') item.append(' ', badge('admin'));
  if (user.connections > 1) item.append(' ', badge(`${user.connections} tabs`));
  return item;
}

function badge(text) {
  const span = document.createElement('span');
  span.className = 'badge';
  span.textContent = text;
  return span;
}

/** The tenant panels, by tenant: one that was refused or ended may be opened again. */
const openTenants = new Map();

function openTenant(tenant) {
  const opened = openTenants.get(tenant);
  if (opened && !opened.panel.dataset.ended) return;
  if (opened) {
    // socket.io-client reuses a namespace's socket: drop the old panel's listeners first.
    opened.socket.off();
    opened.panel.remove();
  }
  const panel = $('#room-template').content.firstElementChild.cloneNode(true);
  panel.dataset.tenant = tenant;
  $('.name', panel).textContent = tenant;
  $('#rooms').append(panel);
  const socket = connect(`/tenant-${tenant}`, panel);
  openTenants.set(tenant, { panel, socket });
  room(panel, socket);
  documents(panel, socket);
}

const docRefreshers = new Set();

/** A tenant's documents: each a room on the server, behind its room policy. */
function documents(panel, socket) {
  let open; // the document this panel shows
  const status = (text) => {
    $('.doc-status', panel).textContent = text;
  };
  const close = () => {
    open = undefined;
    $('.doc', panel).hidden = true;
    $('.notes', panel).replaceChildren();
  };
  const list = () => {
    if (!socket.connected) return;
    socket.emitWithAck('documents').then((docs) => {
      $('.doc-list', panel).replaceChildren(...docs.map(docItem));
    });
  };
  const docItem = (doc) => {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'open-doc';
    button.dataset.doc = doc.id;
    button.textContent = doc.title;
    button.addEventListener('click', async () => {
      // The server joins the document's room, if the policy allows: a refusal says why.
      const result = await socket.emitWithAck('open-doc', doc.id);
      if (result.error) {
        status(`${doc.title}: refused (${result.error})`);
        return;
      }
      open = doc.id;
      status('');
      $('.doc-title', panel).textContent = doc.title;
      $('.notes', panel).replaceChildren();
      $('.doc', panel).hidden = false;
    });
    item.append(button);
    if (doc.audience === 'admins') item.append(' ', badge('admins'));
    return item;
  };
  socket.on('connect', list);
  docRefreshers.add(list);
  socket.on('doc-note', (note) => {
    if (note.doc !== open) return;
    const item = document.createElement('li');
    const from = document.createElement('b');
    from.textContent = note.from;
    item.append(from, ' ', note.text);
    $('.notes', panel).append(item);
  });
  // The server took this socket out of documents it may no longer read (refreshUser).
  socket.on('session:rooms-left', (payload) => {
    if (open !== undefined && payload.rooms.includes(`doc:${open}`)) {
      close();
      status(`The document was closed: your access was changed (${payload.data.code}).`);
    }
    list();
  });
  $('.note', panel).addEventListener('submit', (event) => {
    event.preventDefault();
    const input = event.target.elements.text;
    if (open === undefined || input.value.trim() === '') return;
    socket.emit('note', { doc: open, text: input.value });
    input.value = '';
  });
}

let admin;

function openAdmin() {
  const panel = $('#admin');
  if (admin && !panel.dataset.ended) return;
  if (admin) {
    admin.off(); // reopened after its access ended: the same socket, new listeners
    delete panel.dataset.ended;
    panel.classList.remove('refused');
  }
  $('#open-admin').hidden = true;
  setStatus(panel, 'connecting…', '');
  admin = connect('/admin', panel);
  admin.on('users', (users) => {
    $('#users').replaceChildren(...users.map((user) => userItem(user)));
  });
}

function userItem(user) {
  const item = presenceItem(user);
  if (user.id === me.id) return item;
  // One row: role, tenants and Save, then Disconnect beside them.
  const row = document.createElement('div');
  row.className = 'user-controls';
  item.append(row);
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'kick';
  button.textContent = 'Disconnect';
  button.addEventListener('click', () => {
    button.disabled = true;
    admin.emit('kick', user.id, (result) => {
      $('#kick-result').textContent = result.ok
        ? `${user.username} was disconnected.`
        : `Could not disconnect ${user.username}: ${result.error}`;
    });
  });
  row.append(accessForm(user), button);
  item.append(signOutEverywhere(user));
  return item;
}

/** Below the row: every session of the user destroyed, on every device (endSessions). */
function signOutEverywhere(user) {
  const row = document.createElement('div');
  row.className = 'user-more';
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'everywhere';
  button.textContent = 'Sign out everywhere';
  button.addEventListener('click', () => {
    button.disabled = true;
    admin.emit('sign-out-everywhere', user.id, (result) => {
      $('#kick-result').textContent = result.ok
        ? `${user.username} was signed out on ${result.sessions === 1 ? '1 device' : `${result.sessions} devices`}.`
        : `Could not sign ${user.username} out: ${result.error}`;
    });
  });
  row.append(button);
  return row;
}

/** Role and tenants of a user: saved through /admin, which calls refreshUser on the server. */
function accessForm(user) {
  const form = document.createElement('form');
  form.className = 'access';
  const role = document.createElement('select');
  role.name = 'role';
  role.setAttribute('aria-label', `${user.username}'s role`);
  for (const value of ['member', 'admin']) role.append(new Option(value, value));
  role.value = user.role;
  const tenants = document.createElement('input');
  tenants.name = 'tenants';
  tenants.setAttribute('aria-label', `${user.username}'s tenants, comma-separated`);
  tenants.placeholder = 'tenants';
  tenants.value = (user.tenants ?? []).join(', ');
  const save = document.createElement('button');
  save.type = 'submit';
  save.textContent = 'Save';
  form.append(role, ' ', tenants, ' ', save);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const access = {
      role: role.value,
      tenants: tenants.value
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean),
    };
    admin.emit('set-access', user.id, access, (result) => {
      $('#kick-result').textContent = result.ok
        ? `${user.username} is now ${access.role}, tenants: ${access.tenants.join(', ') || 'none'}.`
        : `Could not change ${user.username}: ${result.error}`;
    });
  });
  return form;
}

/** The session this page runs on has ended: say why, from the code, and stop. */
async function sessionEnded(code) {
  if (sessionOver) return;
  sessionOver = true;
  if (code === 'ERR_SESSION_ROTATED') {
    // A new login in this browser: the new session cookie is already here. Start again with it.
    location.reload();
    return;
  }
  if (signingOut) return; // this tab's own logout: the login page is on its way
  if (code === 'ERR_SESSION_EXPIRED') {
    showSignedOut();
    showBanner('Your session expired.', code, 'Sign in again', '/login');
    return;
  }
  // ERR_SESSION_REVOKED: signed out (in another tab), or disconnected by an administrator.
  // Which one? Ask the server whether this browser is still signed in.
  const stillSignedIn = await signedIn().then(
    ({ user }) => user !== null,
    () => false,
  );
  if (stillSignedIn) {
    showBanner('An administrator disconnected you.', code, 'Reconnect', '/');
  } else {
    showSignedOut();
    showBanner('You were signed out in another tab.', code, 'Sign in again', '/login');
  }
}

/** Who this browser is signed in as: `{ user }`, null when signed out (never a 401). */
async function signedIn() {
  const res = await fetch('/api/session', { headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`GET /api/session: ${res.status}`);
  return res.json();
}

/** This browser is signed out: nothing on the page works any more but "Sign in again". */
function showSignedOut() {
  $('#me').textContent = 'Signed out';
  $('#logout').hidden = true;
  for (const control of document.querySelectorAll('main button, main input')) {
    control.disabled = true;
  }
}

function showBanner(message, code, action, href) {
  const banner = $('#banner');
  $('.message', banner).textContent = message;
  $('.code', banner).textContent = code;
  $('.action', banner).textContent = action;
  $('.action', banner).href = href;
  banner.hidden = false;
  document.body.classList.add('ended');
}

function setStatus(panel, text, kind) {
  const status = $('.status', panel);
  status.textContent = text;
  status.className = `status ${kind}`;
}

/** The controls that need the panel's socket: its message form, and the admin's buttons. */
function setEnabled(panel, enabled) {
  const controls =
    '.say input, .say button, .note input, .note button, button.kick, button.everywhere, .access *';
  for (const control of panel.querySelectorAll(controls)) {
    // A panel told to slow down keeps its message form off until the wait is over.
    control.disabled = !enabled || (panel.dataset.slowDown !== undefined && isSay(control));
  }
}

const isSay = (control) => control.closest('.say') !== null;
