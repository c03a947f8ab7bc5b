// The live alert queue: the operator's alerts, newest first, kept current by the server's event
// stream. The card itself is alert_card.js, shared with the alert detail page.
// No framework, no inline script (the CSP forbids it), text set with textContent only.
import { card } from "./alert_card.js";
import { getJSON, vocabulary, whoami } from "./common.js";

const list = document.getElementById("queue");
const filter = document.getElementById("filter");
const live = document.getElementById("live");
const empty = document.getElementById("empty");
let words = null;

function visible(a) { return !filter.value || filter.value === a.state; }

function place(a) {
  const old = list.querySelector(`li[data-id="${CSS.escape(a.id)}"]`);
  // The stream also repeats this console's own decisions: a card already in that state is left
  // alone, so a half-filled dismissal form is not wiped.
  if (old && old.dataset.state === a.state) return;
  if (!visible(a)) { if (old) old.remove(); empty.hidden = list.children.length > 0; return; }
  const c = card(a, place, words);
  if (old) { old.replaceWith(c); } else {
    // newest first: before the first card that started earlier
    const later = Array.from(list.children).find((li) => li.dataset.start < a.start);
    c.dataset.start = a.start;
    list.insertBefore(c, later || null);
    c.classList.add("fresh");
  }
  c.dataset.start = a.start;
  c.dataset.shownAt = String(Date.now());
  empty.hidden = true;
}

async function load() {
  const alerts = await getJSON("/api/alerts", { state: filter.value });
  list.replaceChildren();
  for (const a of alerts) place(a);
  for (const li of list.children) li.classList.remove("fresh");
  empty.hidden = alerts.length > 0;
}

function stream() {
  const es = new EventSource("/api/alerts/stream");
  es.addEventListener("open", () => { live.textContent = "live"; live.className = "live on"; });
  es.addEventListener("error", () => { live.textContent = "reconnecting…"; live.className = "live off"; });
  es.addEventListener("alert", (e) => place(JSON.parse(e.data)));
}

filter.addEventListener("change", () => load());
whoami()
  .then(() => vocabulary())
  .then((v) => { words = v; })
  .then(() => load())
  .then(stream);
