// The live alert queue, and the card shared with the alert detail page (alert.js).
// No framework, no inline script (the CSP forbids it), text set with textContent only.
"use strict";

const Lanterne = (() => {
  const TYPES = {
    abandoned_object: "Abandoned object", weapon: "Weapon", wrong_way: "Wrong way",
    zone_intrusion: "Zone intrusion", person_down: "Person down", crowd_movement: "Crowd movement",
    crowd_density: "Crowd density", fire: "Fire",
  };
  const FOLLOW_UPS = [
    ["none", "none"], ["monitoring", "monitoring"], ["field_request", "field request"],
    ["emergency_services", "emergency services"],
  ];
  const REASONS = [
    ["reflection_or_light", "reflection or light"], ["street_furniture", "street furniture"],
    ["person_at_rest", "person at rest"], ["owner_nearby", "owner nearby"], ["test", "test"],
    ["other", "other (say what)"],
  ];
  let csrf = sessionStorage.getItem("lanterne.csrf") || "";
  let me = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function time(iso) {
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

  async function whoami() {
    const r = await fetch("/api/me", { credentials: "same-origin" });
    if (r.status === 401) { location.href = "/login"; return null; }
    me = await r.json();
    const token = me.csrf_token || (me.session && me.session.csrf_token);
    if (token) { csrf = token; sessionStorage.setItem("lanterne.csrf", token); }
    const user = me.user || me;
    const who = document.getElementById("who");
    if (who && user) who.textContent = `${user.login || ""} (${user.role || ""})`;
    return me;
  }

  async function api(path, opts) {
    const r = await fetch(path, Object.assign({ credentials: "same-origin" }, opts || {}));
    if (r.status === 401) { location.href = "/login"; throw new Error("login required"); }
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) {
      let msg = body && body.detail ? body.detail : `the server refused (${r.status})`;
      if (Array.isArray(msg)) msg = msg.map((d) => d.msg).join("; ");
      throw new Error(msg);
    }
    return body;
  }

  function post(path, payload) {
    return api(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(payload || {}),
    });
  }

  function select(name, label, options) {
    const wrap = el("label", "field");
    wrap.append(el("span", null, label));
    const s = el("select");
    s.name = name;
    s.append(el("option", null, "— choose —"));
    s.options[0].value = "";
    for (const [value, text] of options) {
      const o = el("option", null, text);
      o.value = value;
      s.append(o);
    }
    wrap.append(s);
    return [wrap, s];
  }

  function snapshot(a) {
    const box = el("div", "snap");
    const img = el("img");
    img.alt = "anonymised snapshot of the alert";
    img.src = a.snapshot_url;
    img.addEventListener("error", () => { box.classList.add("missing"); box.textContent = "no snapshot"; });
    const [x0, y0, x1, y1] = a.region;
    const r = el("div", "region");
    // CSSOM properties are allowed by the CSP; a style attribute in markup would not be.
    r.style.left = `${x0 * 100}%`;
    r.style.top = `${y0 * 100}%`;
    r.style.width = `${Math.max(0, x1 - x0) * 100}%`;
    r.style.height = `${Math.max(0, y1 - y0) * 100}%`;
    box.append(img, r);
    return box;
  }

  function card(a, onChange) {
    const li = el("li", `card state-${a.state}`);
    li.dataset.id = a.id;
    li.dataset.state = a.state;
    li.dataset.stored = a.stored_at;
    li.append(el("p", "label", a.label));
    const head = el("h2");
    const link = el("a", null, TYPES[a.type] || a.type);
    link.href = a.page_url;
    head.append(link, el("span", `state state-${a.state}`, a.state));
    li.append(head);
    const facts = el("dl", "facts");
    for (const [k, v] of [
      ["Camera", a.camera], ["Zone", a.zone], ["Time", time(a.start)],
      ["Measured precision", precisionText(a.precision)],
    ]) {
      facts.append(el("dt", null, k), el("dd", k === "Measured precision" ? "precision" : null, v));
    }
    li.append(snapshot(a), facts);

    const msg = el("p", "error");
    msg.setAttribute("role", "alert");
    msg.hidden = true;
    const act = (path, payload) => post(`/api/alerts/${encodeURIComponent(a.id)}/${path}`, payload)
      .then((updated) => onChange(updated))
      .catch((e) => { msg.textContent = e.message; msg.hidden = false; });

    const actions = el("div", "actions");
    if (a.state === "new") {
      const b = el("button", "ack", "Acknowledge");
      b.type = "button";
      b.addEventListener("click", () => act("ack", {}));
      actions.append(b);
    } else if (a.state === "acknowledged") {
      const conf = el("div", "decide confirm");
      const [fw, fs] = select("follow_up", "Follow-up", FOLLOW_UPS);
      const cb = el("button", "confirm", "Confirm");
      cb.type = "button";
      cb.addEventListener("click", () => act("confirm", { follow_up: fs.value || null }));
      conf.append(fw, cb);
      const dis = el("div", "decide dismiss");
      const [rw, rs] = select("reason", "Reason", REASONS);
      const tx = el("input");
      tx.name = "text";
      tx.maxLength = 500;
      tx.placeholder = "what it was (needed for other)";
      const db = el("button", "dismiss", "Dismiss");
      db.type = "button";
      db.addEventListener("click", () => act("dismiss", { reason: rs.value || null, text: tx.value || null }));
      dis.append(rw, tx, db);
      actions.append(conf, dis);
    } else {
      actions.append(el("p", "final", `Decided: ${a.state}. A decision is final.`));
    }
    li.append(actions, msg);
    return li;
  }

  return { el, time, api, post, card, whoami, precisionText };
})();

// The queue itself runs only on the queue page (alert.html reuses the card).
(() => {
  const list = document.getElementById("queue");
  if (!list || list.classList.contains("single")) return;
  const filter = document.getElementById("filter");
  const live = document.getElementById("live");
  const empty = document.getElementById("empty");

  function visible(a) { return !filter.value || filter.value === a.state; }

  function place(a) {
    const old = list.querySelector(`li[data-id="${CSS.escape(a.id)}"]`);
    // The stream also repeats this console's own decisions: a card already in that state is left
    // alone, so a half-filled dismissal form is not wiped.
    if (old && old.dataset.state === a.state) return;
    if (!visible(a)) { if (old) old.remove(); empty.hidden = list.children.length > 0; return; }
    const c = Lanterne.card(a, place);
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
    const q = filter.value ? `?state=${encodeURIComponent(filter.value)}` : "";
    const alerts = await Lanterne.api(`/api/alerts${q}`);
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
  Lanterne.whoami().then(() => load()).then(stream);
})();
