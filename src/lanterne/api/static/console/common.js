// What every console page script imports (an ES module, the pages' only API client): building
// elements (text set with textContent only), the page's message line, and calls to the API that
// carry the session cookie, send a lapsed session to the login page, put the CSRF token on
// writes and turn a refusal into an Error. No inline script (the CSP forbids it).

const CSRF_KEY = "lanterne.csrf";

export function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

export function say(text) {
  document.getElementById("message").textContent = text || "";
}

export async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  if (response.status === 401) {
    window.location.assign("/login");
    throw new Error("login required");
  }
  return response;
}

// Keeps the session's CSRF token for this tab: the writes of every page send it.
export function remember(token) {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
}

async function csrf() {
  let token = sessionStorage.getItem(CSRF_KEY);
  if (!token) {
    const me = await (await api("/api/me")).json();
    token = me.csrf_token;
    remember(token);
  }
  return token;
}

// The logged-in user (`/api/me`), shown in the page's #who; the CSRF token is kept on the way.
export async function whoami() {
  const me = await (await api("/api/me")).json();
  remember(me.csrf_token);
  const who = document.getElementById("who");
  if (who) who.textContent = me.user.login + " (" + me.user.role + ")";
  return me;
}

// The JSON body of an answer; a refusal becomes an Error carrying the server's one-line reason
// (or, for a request the validator refused, each of its messages).
async function answer(response) {
  let payload = {};
  try {
    payload = await response.json();
  } catch (_) {
    payload = {};
  }
  if (!response.ok) {
    let detail = payload && payload.detail;
    if (Array.isArray(detail)) detail = detail.map((d) => d.msg).join("; ");
    throw new Error(detail ? String(detail) : "refused (" + response.status + ")");
  }
  return payload;
}

// GET with query parameters (empty ones left out, a list repeated), answered as JSON.
export async function getJSON(path, params) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === null || v === undefined || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) query.append(k, item);
  }
  const qs = query.toString();
  return answer(await api(path + (qs ? "?" + qs : "")));
}

async function write(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": await csrf() },
    body: JSON.stringify(body || {}),
  });
}

export async function post(path, body) {
  return answer(await write(path, body));
}

// PUT or DELETE (or POST) with a JSON body; the answer as JSON, {} for a 204, a refusal as an Error.
export async function send(method, path, body) {
  const response = await api(path, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": await csrf() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return {};
  return answer(response);
}

// A write whose answer is a file (a report): its bytes, or the refusal as an Error.
export async function postForBlob(path, body) {
  const response = await write(path, body);
  if (!response.ok) await answer(response);
  return response.blob();
}

let words = null;

// The server's names for event types, follow-ups and dismissal reasons (GET /api/vocabulary),
// fetched once per page; a failed fetch is asked again next time.
export function vocabulary() {
  if (!words) {
    words = getJSON("/api/vocabulary").catch((err) => {
      words = null;
      throw err;
    });
  }
  return words;
}

// An event type's title in that vocabulary; a type it does not know is shown by its id.
export function titleOf(vocab, type) {
  const found = vocab.event_types.find((t) => t.id === type);
  return found ? found.title : type;
}
