// The oversight page: the auditor reads the register, the metrics, the logs' summaries and the
// complaints from one recorded API read, and may re-check the whole audit chain. Read-only: the
// page writes nothing and links to no footage. Any other role is told the page is not theirs
// without asking the API (which would refuse, and record the refusal).
import { el, getJSON, say, whoami } from "./common.js";

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function share(value) {
  return value === null || value === undefined ? "–" : `${(100 * value).toFixed(1)} %`;
}

function number(value) {
  return value === null || value === undefined ? "–" : String(value);
}

// Fills a table's body with one row per item; an empty list shows one muted row saying so.
function fill(id, items, cells, empty) {
  const body = document.querySelector(`#${id} tbody`);
  const columns = document.querySelectorAll(`#${id} thead th`).length;
  if (items.length === 0) {
    const tr = el("tr");
    tr.append(el("td", empty || "None.", { colspan: String(columns), class: "muted" }));
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(
    ...items.map((item) => {
      const tr = el("tr");
      tr.append(...cells(item).map((c) => (c instanceof Node ? wrap(c) : el("td", c))));
      return tr;
    }),
  );
}

function wrap(node) {
  const td = el("td");
  td.append(node);
  return td;
}

// A link only when it is a web address; a FRIA's reference stays text.
function reference(text) {
  if (/^https:\/\//.test(text)) return el("a", text, { href: text, rel: "noreferrer" });
  return el("span", text);
}

function links(list) {
  const span = el("span");
  list.forEach((text, i) => {
    if (i) span.append(", ");
    span.append(reference(text));
  });
  if (list.length === 0) span.append("none recorded");
  return span;
}

function render(v) {
  document.getElementById("summary").textContent =
    `${v.site}: mode ${v.mode}, configuration ${v.config_sha256.slice(0, 12)}…, read ${when(v.generated_at)}.`;
  fill("authorisations", v.authorisations, (a) => [
    a.reference, a.legal_basis, a.authority, when(a.valid_from), when(a.valid_until),
    String(a.camera_count), a.event_types.join(", "), a.state, links(a.impact_assessments),
  ], "No authorisation recorded: no camera may raise alerts.");
  fill("frias", v.frias, (f) => [f.reference, f.assessed_on, when(f.recorded_at)]);
  fill("approvals", v.approvals, (a) => [
    String(a.id), a.change, a.summary, a.approved_by, when(a.approved_at), reference(a.notice_url),
    a.signature_valid ? "valid" : "NOT VALID",
  ]);
  document.getElementById("quarter-title").textContent = `This quarter (since ${when(v.quarter_since)}), per detector`;
  fill("quarter", v.quarter, (q) => [
    q.event_type, String(q.alerts), String(q.confirmed), String(q.dismissed), String(q.pending),
    share(q.confirmed_share), number(q.alerts_per_camera_hour), String(q.useful_to_an_operation),
    String(q.confirmed_without_action),
  ]);
  document.getElementById("quality-title").textContent =
    `Precision and recall per detector (last ${v.recall.days} days; ${v.recall.audits} recall audits closed, ${v.recall.open_audits} open)`;
  fill("quality", v.recall.rows, (r) => [
    r.event_type, share(r.precision), String(r.decided), share(r.recall), String(r.marks), String(r.found), String(r.windows),
  ], "No closed recall audit yet: recall is unknown.");
  fill("monthly", v.monthly, (m) => [
    m.month, m.event_type, String(m.alerts), String(m.confirmed), String(m.dismissed), String(m.pending), share(m.confirmed_share),
  ]);
  fill("suspensions", v.suspensions, (s) => [s.camera, s.event_type, s.cause, when(s.started_at), s.lifted_at ? when(s.lifted_at) : "in force"]);
  fill("incidents", v.incidents, (i) => [
    String(i.id), when(i.opened_at), i.kind, i.title, i.overdue ? `${i.state}, OVERDUE` : i.state, when(i.closed_at),
  ]);
  const a = v.audit;
  document.getElementById("audit-state").replaceChildren(
    el("li", `${a.records} records stored, the last at ${when(a.last_record_at) || "–"}.`),
    el("li", a.last_checkpoint_seq === null
      ? "No signed checkpoint yet."
      : `Last signed checkpoint at record ${a.last_checkpoint_seq} (${when(a.last_checkpoint_at)}); ${a.unsigned} newer records not yet signed.`),
    el("li", a.witness_file ? "Signed heads are kept in a witness file outside the database." : "No witness file: deleted newest records would not show."),
    el("li", a.open_breaches ? `${a.open_breaches} open breach incident(s).` : "No open breach incident."),
  );
  fill("findings", v.findings, (f) => [f.title, String(f.open), String(f.acknowledged), String(f.closed)]);
  fill("complaint-counts", v.complaint_counts, (c) => [c.title, c.state, String(c.count)], "No complaint recorded.");
  fill("complaint-list", v.complaints, (c) => [
    String(c.id), c.received_on, c.channel, c.category_title, c.summary, c.state, c.answered_on || "", c.answer || "",
    number(c.days_to_answer),
  ], "No complaint recorded.");
}

async function verify(button) {
  const out = document.getElementById("verification");
  button.disabled = true;
  out.textContent = "checking every record…";
  try {
    const r = await getJSON("/api/oversight/verification");
    out.textContent = r.ok ? r.summary : `${r.summary} — breach incident ${r.breach_incident} opened`;
  } catch (err) {
    out.textContent = "";
    say(err.message);
  } finally {
    button.disabled = false;
  }
}

async function main() {
  const me = await whoami();
  if (me.user.role !== "auditor") {
    document.getElementById("not-overseer").hidden = false;
    return;
  }
  render(await getJSON("/api/oversight"));
  document.getElementById("view").hidden = false;
  const button = document.getElementById("verify");
  button.addEventListener("click", () => verify(button));
}

main().catch((err) => say(err.message));
