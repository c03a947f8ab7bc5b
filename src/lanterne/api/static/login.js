// Login page: posts JSON to /api/login (with the second factor's code when one is typed), keeps
// the CSRF token for this tab, goes to the console page of the user's role.
// No inline script: the page's Content-Security-Policy forbids it.
import { remember } from "./console/common.js";

// Where each role starts: the alert queue is for operators and supervisors only; the other roles
// (analyst, auditor, admin) would meet a refusal there, and every role may open the observatory.
function home(user) {
  return user && (user.role === "operator" || user.role === "supervisor") ? "/console" : "/console/observatory";
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login-form");
  const message = document.getElementById("message");
  const button = document.getElementById("submit");

  // Already logged in (a bookmark, the back button): recover the CSRF token and go on. Plain
  // fetch, not common.js's `api`: here a 401 is the expected answer, not a lapsed session.
  fetch("/api/me", { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((me) => {
      if (me) {
        remember(me.csrf_token);
        window.location.replace(home(me.user));
      }
    })
    .catch(() => {});

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    button.disabled = true;
    const password = document.getElementById("password");
    const code = document.getElementById("code");
    try {
      const response = await fetch("/api/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify({
          login: document.getElementById("login").value.trim(),
          password: password.value,
          code: code.value.trim(),
        }),
      });
      let body = {};
      try {
        body = await response.json();
      } catch (_) {
        body = {};
      }
      if (response.ok) {
        remember(body.csrf_token);
        window.location.assign(home(body.user));
        return;
      }
      password.value = "";
      code.value = ""; // a code is good once: the next try needs the next one
      // The server's own sentence for a second-factor refusal (missing, wrong, reused, not enrolled).
      const detail = body.detail ? body.detail.charAt(0).toUpperCase() + body.detail.slice(1) + "." : "";
      message.textContent =
        response.status === 429
          ? "Too many failed logins: try again in 15 minutes."
          : response.status === 401 && body.detail === "wrong login or password"
            ? "Wrong login or password."
            : detail || "Login failed.";
    } catch (_) {
      message.textContent = "The server cannot be reached.";
    } finally {
      button.disabled = false;
    }
  });
});
