// The log review page: the DPO lists what the automatic review of the audit log flagged (open
// findings by default), acknowledges one while looking into it and closes it with a note; the
// server records each decision. Any other role is told the page is the DPO's without asking the
// API (which would refuse, and record the refusal).
import { el, getJSON, post, say, whoami } from "./common.js";

const table = document.getElementById("findings");
const body = table.querySelector("tbody");
const stateSel = document.getElementById("state");

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// The audit records by number: a long list is cut, its length says how many.
function records(seqs) {
  const shown = seqs.slice(0, 8).join(", ");
  return seqs.length > 8 ? `${seqs.length}: ${shown}, …` : shown;
}

async function decide(f, state, note, controls) {
  controls.forEach((c) => (c.disabled = true));
  try {
    await post(`/api/review/findings/${f.id}`, { state, note });
    say(`Finding ${f.id} is ${state}.`);
    await load();
  } catch (err) {
    say(err.message);
    controls.forEach((c) => (c.disabled = false));
  }
}

function actions(f) {
  const cell = el("td");
  if (f.state === "closed") return cell;
  const note = el("input", null, {
    type: "text",
    maxlength: "1000",
    placeholder: "note (required to close)",
    "aria-label": `Note on finding ${f.id}`,
    "data-id": String(f.id),
  });
  const close = el("button", "Close", { type: "button", "data-action": "closed" });
  const controls = [note, close];
  if (f.state === "open") {
    const ack = el("button", "Acknowledge", { type: "button", "data-action": "acknowledged", class: "secondary" });
    controls.push(ack);
    ack.addEventListener("click", () => decide(f, "acknowledged", note.value, controls));
    cell.append(note, " ", ack, " ", close);
  } else {
    cell.append(note, " ", close);
  }
  close.addEventListener("click", () => {
    if (!note.value.trim()) {
      say("Closing a finding needs a note: what you found and what was done.");
      note.focus();
      return;
    }
    decide(f, "closed", note.value, controls);
  });
  return cell;
}

function row(f) {
  const tr = el("tr", null, { "data-finding": String(f.id) });
  tr.append(
    el("td", String(f.id)),
    el("td", when(f.created_at)),
    el("td", f.title),
    el("td", f.account || "several"),
    el("td", `${when(f.window_start)} – ${when(f.window_end)}`),
    el("td", f.explanation),
    el("td", records(f.evidence)),
    el("td", f.state + (f.decided_by ? ` (${f.decided_by})` : "")),
    el("td", f.note || ""),
    actions(f),
  );
  return tr;
}

async function load() {
  const list = await getJSON("/api/review/findings", { state: stateSel.value });
  body.replaceChildren(...list.map(row));
  table.hidden = list.length === 0;
  document.getElementById("empty").hidden = list.length !== 0;
}

async function main() {
  const me = await whoami();
  if (me.user.role !== "auditor") {
    document.getElementById("not-reviewer").hidden = false;
    return;
  }
  document.getElementById("list-section").hidden = false;
  stateSel.addEventListener("change", () => load().catch((err) => say(err.message)));
  await load();
}

main().catch((err) => say(err.message));
