/* global io, document, location, fetch */
// The single page app: plain browser JavaScript, no bundler. `io` is the Socket.IO client served
// by the server at /socket.io/socket.io.js. All the namespaces below share one connection.
//
// Refusals come as connect_error with err.data.code (socket.io-session-auth's codes):
//   ERR_UNAUTHORIZED (401) -> the login page;  ERR_FORBIDDEN (403) -> "not allowed here".
// Namespace-level refusals stop socket.io-client: this code never calls connect() again itself.

const $ = (selector, root = document) => root.querySelector(selector);

let me;
let sessionOver = false;
let signingOut = false;

main().catch((error) => {
  showBanner('Something went wrong: ' + error.message, '', 'Reload', '/');
});

async function main() {
  const res = await fetch('/api/me', { headers: { accept: 'application/json' } });
  if (res.status === 401) {
    location.assign('/login');
    return;
  }
  me = await res.json();
  $('#me').textContent =
    `Signed in as ${me.username} (${me.role}) · tenants: ${me.tenants.join(', ')}`;
  $('#logout').addEventListener('submit', () => {
    signingOut = true;
  });

  room($('#chat'), connect('/chat', $('#chat')));

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
      setStatus(panel, 'not allowed here', 'refused');
      panel.classList.add('refused');
    } else if (socket.active) {
      // A network error, not a refusal: socket.io-client retries by itself, with backoff.
      setStatus(panel, 'connection lost, retrying…', 'warn');
    } else {
      setStatus(panel, `refused: ${err.message}`, 'refused');
    }
  });
  // Sent by the server just before it ends the socket because the session ended.
  socket.on('session:ended', (payload) => {
    void sessionEnded(payload.data.code);
  });
  socket.on('disconnect', (reason) => {
    setEnabled(panel, false);
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
  socket.on('online', (users) => {
    $('.online', panel).replaceChildren(...users.map(presenceItem));
  });
  $('.say', panel).addEventListener('submit', (event) => {
    event.preventDefault();
    const input = event.target.elements.text;
    if (input.value.trim() === '') return;
    // Only the text: the server adds the sender's name from the session.
    socket.emit('say', { text: input.value });
    input.value = '';
  });
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

const openTenants = new Set();

function openTenant(tenant) {
  if (openTenants.has(tenant)) return;
  openTenants.add(tenant);
  const panel = $('#room-template').content.firstElementChild.cloneNode(true);
  panel.dataset.tenant = tenant;
  $('.name', panel).textContent = tenant;
  $('#rooms').append(panel);
  room(panel, connect(`/tenant-${tenant}`, panel));
}

let admin;

function openAdmin() {
  if (admin) return;
  const panel = $('#admin');
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
  item.append(' ', button);
  return item;
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
  const stillSignedIn = await fetch('/api/me').then(
    (res) => res.ok,
    () => false,
  );
  if (stillSignedIn) {
    showBanner('An administrator disconnected you.', code, 'Reconnect', '/');
  } else {
    showSignedOut();
    showBanner('You were signed out in another tab.', code, 'Sign in again', '/login');
  }
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
  for (const control of panel.querySelectorAll('.say input, .say button, button.kick')) {
    control.disabled = !enabled;
  }
}
