// Event search: the form's filters become query parameters of GET /api/events (purpose
// required); results link to each alert's page. The situations offered are the server's
// vocabulary. No inline script (CSP).
import { api, el, vocabulary, whoami } from "./common.js";

const PAGE_SIZE = 50;
const FIELDS = ["purpose", "from", "to", "camera", "zone", "type", "object_class", "state", "sort"];
// Pages follow the server's cursor (`next`): cursors[i] starts page i + 1 (null: the first).
let cursors = [null];
let nextCursor = null;

function localToIso(value) {
  // datetime-local has no zone: read it in the browser's zone, send UTC.
  return value ? new Date(value).toISOString() : "";
}

async function run() {
  const message = document.getElementById("message");
  message.textContent = "";
  const params = new URLSearchParams();
  for (const name of FIELDS) {
    let value = document.getElementById(name).value.trim();
    if (name === "from" || name === "to") value = localToIso(value);
    if (value) params.set(name, value);
  }
  const after = cursors[cursors.length - 1];
  if (after) params.set("after", after);
  params.set("page_size", String(PAGE_SIZE));
  const response = await api("/api/events?" + params.toString());
  const body = await response.json();
  if (!response.ok) {
    message.textContent = typeof body.detail === "string" ? body.detail : "Search refused (" + response.status + ").";
    return;
  }
  const table = document.getElementById("results");
  const rows = table.querySelector("tbody");
  rows.replaceChildren();
  for (const e of body.items) {
    const row = el("tr", null, { "data-id": e.id });
    const start = el("td");
    start.appendChild(el("a", new Date(e.start).toLocaleString(), { href: "/console/alerts/" + encodeURIComponent(e.id) }));
    row.appendChild(start);
    row.appendChild(el("td", e.type));
    row.appendChild(el("td", e.camera));
    row.appendChild(el("td", e.zone));
    row.appendChild(el("td", e.object_class || ""));
    row.appendChild(el("td", (e.confidence * 100).toFixed(0) + " %"));
    row.appendChild(el("td", e.mode === "alerts" ? e.state : e.mode));
    rows.appendChild(row);
  }
  table.hidden = body.items.length === 0;
  // The server counts up to a cap (total_exact false beyond it): "10000+", and no page count;
  // a count that ran out of time comes back as the database's estimate, said as one.
  const page = cursors.length;
  const pages = Math.max(1, Math.ceil(body.total / body.page_size));
  document.getElementById("summary").textContent = body.total_exact
    ? body.total + " event(s); page " + page + " of " + pages + "."
    : body.total_estimated
      ? "about " + body.total.toLocaleString() + " events (an estimate: narrow the search for a count); page " + page + "."
      : "more than " + body.total + " events (narrow the search); page " + page + ".";
  document.getElementById("prev").disabled = page <= 1;
  document.getElementById("next").disabled = !body.next;
  nextCursor = body.next;
}

document.addEventListener("DOMContentLoaded", async () => {
  try {
    await whoami();
    const types = document.getElementById("type");
    for (const t of (await vocabulary()).event_types) types.appendChild(el("option", t.title, { value: t.id }));
    const cameras = await api("/api/cameras");
    if (cameras.ok) {
      const select = document.getElementById("camera");
      for (const cam of await cameras.json()) select.appendChild(el("option", cam.name, { value: cam.id }));
    }
  } catch (_) {
    return;
  }
  document.getElementById("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    cursors = [null];
    run();
  });
  document.getElementById("prev").addEventListener("click", () => {
    if (cursors.length > 1) cursors.pop();
    run();
  });
  document.getElementById("next").addEventListener("click", () => {
    if (nextCursor) cursors.push(nextCursor);
    run();
  });
});
