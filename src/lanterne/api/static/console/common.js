// What every console page script shares, loaded before it: building elements (text set with
// textContent only), the page's message line, and calls to the API that carry the session
// cookie, send a lapsed session to the login page, and put the CSRF token on writes.
// No inline script (the CSP forbids it).
"use strict";

const CSRF_KEY = "lanterne.csrf";

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function say(text) {
  document.getElementById("message").textContent = text || "";
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  if (response.status === 401) {
    window.location.assign("/login");
    throw new Error("login required");
  }
  return response;
}

async function csrf() {
  let token = sessionStorage.getItem(CSRF_KEY);
  if (!token) {
    const me = await (await api("/api/me")).json();
    token = me.csrf_token;
    sessionStorage.setItem(CSRF_KEY, token);
  }
  return token;
}

// The JSON body of an answer; a refusal becomes an Error carrying the server's one-line reason.
async function answer(response) {
  let payload = {};
  try {
    payload = await response.json();
  } catch (_) {
    payload = {};
  }
  if (!response.ok) throw new Error(payload.detail ? String(payload.detail) : "refused (" + response.status + ")");
  return payload;
}

async function post(path, body) {
  return answer(
    await api(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": await csrf() },
      body: JSON.stringify(body || {}),
    })
  );
}
