// The alert card, shared by the live queue (queue.js) and the alert detail page (alert.js): the
// situation, its snapshot with the region drawn over it, and the decision the alert's state
// allows. The titles, follow-ups and reasons come from the server's vocabulary.
import { el, post, titleOf } from "./common.js";

export function time(iso) {
  const d = new Date(iso);
  return d.toLocaleString(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
}

function precisionText(p) {
  if (!p || !p.decided) return "precision not measured yet on this camera";
  return `${p.confirmed} of ${p.decided} confirmed over ${p.days} days`;
}

function select(name, label, terms) {
  const wrap = el("label", null, { class: "field" });
  wrap.append(el("span", label));
  const s = el("select", null, { name: name });
  s.append(el("option", "— choose —", { value: "" }));
  for (const t of terms) s.append(el("option", t.label, { value: t.id }));
  wrap.append(s);
  return [wrap, s];
}

function snapshot(a) {
  const box = el("div", null, { class: "snap" });
  const img = el("img", null, { alt: "anonymised snapshot of the alert" });
  img.src = a.snapshot_url;
  img.addEventListener("error", () => { box.classList.add("missing"); box.textContent = "no snapshot"; });
  const [x0, y0, x1, y1] = a.region;
  const r = el("div", null, { class: "region" });
  // CSSOM properties are allowed by the CSP; a style attribute in markup would not be.
  r.style.left = `${x0 * 100}%`;
  r.style.top = `${y0 * 100}%`;
  r.style.width = `${Math.max(0, x1 - x0) * 100}%`;
  r.style.height = `${Math.max(0, y1 - y0) * 100}%`;
  box.append(img, r);
  return box;
}

// One alert as a list item; `onChange` gets the alert as the server answered a decision.
export function card(a, onChange, vocab) {
  const li = el("li", null, { class: `card state-${a.state}` });
  li.dataset.id = a.id;
  li.dataset.state = a.state;
  li.dataset.stored = a.stored_at;
  li.append(el("p", a.label, { class: "label" }));
  const head = el("h2");
  const link = el("a", titleOf(vocab, a.type), { href: a.page_url });
  head.append(link, el("span", a.state, { class: `state state-${a.state}` }));
  li.append(head);
  const facts = el("dl", null, { class: "facts" });
  for (const [k, v] of [
    ["Camera", a.camera], ["Zone", a.zone], ["Time", time(a.start)],
    ["Measured precision", precisionText(a.precision)],
  ]) {
    facts.append(el("dt", k), el("dd", v, k === "Measured precision" ? { class: "precision" } : {}));
  }
  li.append(snapshot(a), facts);

  const msg = el("p", null, { class: "error", role: "alert" });
  msg.hidden = true;
  const act = (path, payload) => post(`/api/alerts/${encodeURIComponent(a.id)}/${path}`, payload)
    .then((updated) => onChange(updated))
    .catch((e) => { msg.textContent = e.message; msg.hidden = false; });

  const actions = el("div", null, { class: "actions" });
  if (a.state === "new") {
    const b = el("button", "Acknowledge", { class: "ack", type: "button" });
    b.addEventListener("click", () => act("ack", {}));
    actions.append(b);
  } else if (a.state === "acknowledged") {
    const conf = el("div", null, { class: "decide confirm" });
    const [fw, fs] = select("follow_up", "Follow-up", vocab.follow_ups);
    const cb = el("button", "Confirm", { class: "confirm", type: "button" });
    cb.addEventListener("click", () => act("confirm", { follow_up: fs.value || null }));
    conf.append(fw, cb);
    const dis = el("div", null, { class: "decide dismiss" });
    const [rw, rs] = select("reason", "Reason", vocab.dismissal_reasons);
    const tx = el("input", null, { name: "text", placeholder: "what it was (needed for other)" });
    tx.maxLength = 500;
    const db = el("button", "Dismiss", { class: "dismiss", type: "button" });
    db.addEventListener("click", () => act("dismiss", { reason: rs.value || null, text: tx.value || null }));
    dis.append(rw, tx, db);
    actions.append(conf, dis);
  } else {
    actions.append(el("p", `Decided: ${a.state}. A decision is final.`, { class: "final" }));
  }
  li.append(actions, msg);
  return li;
}
