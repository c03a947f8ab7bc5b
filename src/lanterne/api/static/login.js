// Login page: posts JSON to /api/login (with the second factor's code when one is typed), keeps
// the CSRF token for this tab, goes to the console page of the user's role.
// When the site signs agents in with the city's directory (OpenID Connect), it also offers
// "Sign in with <provider>"; the provider sends the browser back here with `?oidc=1`, and the
// page reads how that sign-in ended: a session, a refusal to show, or the code step (the
// directory asserted no second factor, so the Lanterne TOTP code is asked here).
// No inline script: the page's Content-Security-Policy forbids it.
import { remember } from "./console/common.js";

// Where each role starts: the alert queue is for operators and supervisors only; an export
// officer works from the recordings (where exports are made); an auditor (the DPO, an oversight
// body) from the oversight page, which works on every site, where the observatory may not be set
// up; the other roles (analyst, admin) would meet a refusal at those, and every role may open the
// observatory.
const HOMES = {
  operator: "/console",
  supervisor: "/console",
  export_officer: "/console/recordings",
  auditor: "/console/oversight",
};

function home(user) {
  return (user && HOMES[user.role]) || "/console/observatory";
}

// The server's own sentence, as a sentence.
function sentence(detail) {
  return detail ? detail.charAt(0).toUpperCase() + detail.slice(1) + "." : "";
}

async function json(response) {
  try {
    return await response.json();
  } catch (_) {
    return {};
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login-form");
  const message = document.getElementById("message");
  const button = document.getElementById("submit");
  const passwordFields = document.getElementById("password-fields");
  const oidcForm = document.getElementById("oidc-form");
  let codeStep = false; // a city sign-in waiting for the Lanterne code
  let oidcOffered = false;

  // Only the code is asked: the directory already said who this is.
  function askCode(detail) {
    codeStep = true;
    passwordFields.hidden = true;
    for (const input of passwordFields.querySelectorAll("input")) input.required = false;
    document.getElementById("code").required = true;
    document.getElementById("code").focus();
    oidcForm.hidden = true;
    message.textContent = sentence(detail);
  }

  function leaveCodeStep() {
    codeStep = false;
    passwordFields.hidden = false;
    for (const input of passwordFields.querySelectorAll("input")) input.required = true;
    document.getElementById("code").required = false;
    oidcForm.hidden = !oidcOffered;
  }

  // The city directory, when this site has one.
  fetch("/api/login/methods", { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((methods) => {
      if (!methods || !methods.oidc) return;
      const link = document.getElementById("oidc-link");
      link.textContent = `Sign in with ${methods.oidc.name}`;
      link.addEventListener("click", () => window.location.assign(methods.oidc.url));
      oidcOffered = true;
      oidcForm.hidden = codeStep;
    })
    .catch(() => {});

  if (new URLSearchParams(window.location.search).has("oidc")) {
    // Back from the directory: read how the sign-in ended (once; a 404 means nothing is pending).
    fetch("/api/login/oidc/outcome", { credentials: "same-origin" })
      .then(async (r) => [r, await json(r)])
      .then(([r, body]) => {
        if (r.ok && body.csrf_token) {
          remember(body.csrf_token);
          window.location.assign(home(body.user));
        } else if (r.ok && body.step === "code") {
          askCode(body.detail);
        } else if (r.status !== 404) {
          message.textContent = sentence(body.detail) || "Sign-in failed.";
        }
      })
      .catch(() => {
        message.textContent = "The server cannot be reached.";
      });
  } else {
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
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    button.disabled = true;
    const password = document.getElementById("password");
    const code = document.getElementById("code");
    try {
      const response = codeStep
        ? await fetch("/api/login/oidc/code", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            credentials: "same-origin",
            body: JSON.stringify({ code: code.value.trim() }),
          })
        : await fetch("/api/login", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            credentials: "same-origin",
            body: JSON.stringify({
              login: document.getElementById("login").value.trim(),
              password: password.value,
              code: code.value.trim(),
            }),
          });
      const body = await json(response);
      if (response.ok) {
        remember(body.csrf_token);
        window.location.assign(home(body.user));
        return;
      }
      password.value = "";
      code.value = ""; // a code is good once: the next try needs the next one
      if (codeStep && response.status !== 401 && response.status !== 429) leaveCodeStep(); // the sign-in is over
      // The server's own sentence for a second-factor refusal (missing, wrong, reused, not enrolled).
      message.textContent =
        response.status === 429
          ? "Too many failed logins: try again in 15 minutes."
          : response.status === 401 && body.detail === "wrong login or password"
            ? "Wrong login or password."
            : sentence(body.detail) || "Login failed.";
    } catch (_) {
      message.textContent = "The server cannot be reached.";
    } finally {
      button.disabled = false;
    }
  });
});
