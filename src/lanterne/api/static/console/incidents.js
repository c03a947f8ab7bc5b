// The incidents page: supervisors and the DPO list incidents (open ones by default), open one to
// see its timeline and the notification to send, add a note, record that the notification was
// sent, and close it with its cause and remedy; the server records each step. Any other role is
// told the page is not theirs without asking the API (which would refuse, and record it).
import { el, getJSON, post, say, whoami } from "./common.js";

const table = document.getElementById("incidents");
const body = table.querySelector("tbody");
const stateSel = document.getElementById("state");
const detail = document.getElementById("detail");
let current = null;

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// A breach's clock: overdue first, since that is what the DPO must act on.
function clock(i) {
  if (!i.deadline) return "";
  if (i.overdue) return `OVERDUE (deadline ${when(i.deadline)})`;
  if (i.notified_at) return `notified ${when(i.notified_at)}`;
  const hours = Math.max(0, Math.round((new Date(i.deadline) - Date.now()) / 3600000));
  return `${hours} h left (deadline ${when(i.deadline)})`;
}

function row(i) {
  const tr = el("tr", null, { "data-incident": String(i.id), class: i.overdue ? "overdue" : "" });
  const link = el("a", String(i.id), { href: `#${i.id}` });
  link.addEventListener("click", (e) => {
    e.preventDefault();
    show(i.id).catch((err) => say(err.message));
  });
  const first = el("td");
  first.append(link);
  const clockCell = el("td", clock(i));
  if (i.overdue) clockCell.append(" ", el("span", "overdue", { class: "badge overdue" }));
  tr.append(
    first,
    el("td", when(i.opened_at)),
    el("td", i.kind),
    el("td", i.title),
    el("td", i.cameras.join(", ")),
    el("td", i.owner),
    clockCell,
    el("td", i.state),
  );
  return tr;
}

async function load() {
  const list = await getJSON("/api/incidents", stateSel.value ? { state: stateSel.value } : {});
  body.replaceChildren(...list.map(row));
  table.hidden = list.length === 0;
  document.getElementById("empty").hidden = list.length !== 0;
}

function render(i) {
  current = i;
  detail.hidden = false;
  document.getElementById("detail-title").textContent = `Incident ${i.id} (${i.kind}, ${i.state}): ${i.title}`;
  document.getElementById("detail-summary").textContent = `${i.summary} Owner: ${i.owner}.`;
  document.getElementById("detail-clock").textContent = clock(i);
  document.querySelector("#timeline tbody").replaceChildren(
    ...i.entries.map((e) => {
      const tr = el("tr");
      tr.append(el("td", when(e.at)), el("td", e.author), el("td", e.step), el("td", e.body));
      return tr;
    }),
  );
  document.getElementById("close-form").hidden = i.state !== "open";
  document.getElementById("template").textContent = i.template;
}

async function show(id) {
  render(await getJSON(`/api/incidents/${id}`));
}

async function step(path, payload, form) {
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => (b.disabled = true));
  try {
    render(await post(`/api/incidents/${current.id}/${path}`, payload));
    form.reset();
    say(`Incident ${current.id}: recorded.`);
    await load();
  } catch (err) {
    say(err.message);
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

async function main() {
  const me = await whoami();
  if (!["supervisor", "auditor"].includes(me.user.role)) {
    document.getElementById("not-handler").hidden = false;
    return;
  }
  document.getElementById("list-section").hidden = false;
  stateSel.addEventListener("change", () => load().catch((err) => say(err.message)));
  document.getElementById("note-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const owner = document.getElementById("note-owner").value.trim();
    const payload = { text: document.getElementById("note-text").value };
    if (owner) payload.owner = owner;
    step("notes", payload, e.target);
  });
  document.getElementById("notify-form").addEventListener("submit", (e) => {
    e.preventDefault();
    step(
      "notifications",
      { to: document.getElementById("notify-to").value, reference: document.getElementById("notify-ref").value },
      e.target,
    );
  });
  document.getElementById("close-form").addEventListener("submit", (e) => {
    e.preventDefault();
    step(
      "close",
      { cause: document.getElementById("close-cause").value, remedy: document.getElementById("close-remedy").value },
      e.target,
    );
  });
  await load();
  const fromHash = Number(window.location.hash.slice(1));
  if (fromHash > 0) await show(fromHash);
}

main().catch((err) => say(err.message));
