// The recall audit page (PM-03): a supervisor draws random windows of recorded footage, plays each
// one without the system's alerts, marks the situations of the 8 types they see (type, seconds
// into the window, zone when they can tell) or says nothing happened; once every window is done
// or the audit is closed, the server scores the marks against the alerts and the page shows the
// result. Nothing here asks for alerts: not /api/cameras (which lists each camera's latest
// alerts), not the alert stream. The windows play through /api/recall/…/video, the one read path,
// and each play is recorded by the server with the audit as its purpose.
import { el, getJSON, post, say, send, titleOf, vocabulary, whoami } from "./common.js";

const FPS = 10;

let me = null;
let words = null;
let audit = null; // the audit being reviewed or read (as the API answers it)
let current = null; // the window being reviewed

const $ = (id) => document.getElementById(id);

function pad(n) { return String(n).padStart(2, "0"); }

function localInput(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

function share(f) {
  if (!f || f.recall === null) return "n/a";
  const [low, high] = f.interval;
  return `${Math.round(100 * f.recall)} % (${Math.round(100 * low)}–${Math.round(100 * high)} %)`;
}

// --- starting ------------------------------------------------------------------------------------

async function loadCameras() {
  const cameras = await getJSON("/api/recall/cameras");
  const box = $("cameras");
  if (!cameras.length) {
    box.replaceChildren(el("p", "No camera in your scope records continuously: nothing can be audited.", { class: "muted" }));
    $("start").disabled = true;
    return;
  }
  box.replaceChildren(...cameras.map((c) => {
    const input = el("input", null, { type: "checkbox", value: c.id, id: `cam-${c.id}` });
    const label = el("label", null, { for: `cam-${c.id}` });
    label.append(input, " ", c.name === c.id ? c.id : `${c.name} (${c.id})`);
    return label;
  }));
}

$("start-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  say("");
  const cameras = [...$("cameras").querySelectorAll("input:checked")].map((i) => i.value);
  if (!cameras.length) { say("Choose at least one camera."); return; }
  const start = new Date($("from").value);
  const end = new Date($("to").value);
  if (!(end > start)) { say("The end must be after the start."); return; }
  try {
    const a = await post("/api/recall/audits", {
      cameras,
      start: start.toISOString(),
      end: end.toISOString(),
      windows: Number($("windows").value),
      seconds: Number($("seconds").value),
      tolerance: Number($("tolerance").value),
    });
    say(`Audit ${a.id}: ${a.windows.length} windows drawn.`);
    await loadList();
    show(a);
  } catch (err) {
    say(err.message);
  }
});

// --- the list ------------------------------------------------------------------------------------

async function loadList() {
  const list = await getJSON("/api/recall/audits");
  const body = $("audits").querySelector("tbody");
  body.replaceChildren(...list.map((a) => {
    const open = el("button", a.state === "open" && a.you_review ? "Review" : "Open", { type: "button", class: "secondary" });
    open.addEventListener("click", () => getJSON(`/api/recall/audits/${a.id}`).then(show).catch((err) => say(err.message)));
    const tr = el("tr", null, { "data-audit": String(a.id) });
    tr.append(
      el("td", String(a.id)),
      el("td", when(a.created_at)),
      el("td", a.cameras.join(", ")),
      el("td", `${a.reviewed} / ${a.windows}`),
      el("td", a.state),
      el("td", a.overall ? share(a.overall) : "–"),
      el("td"),
    );
    tr.lastChild.append(open);
    return tr;
  }));
  $("audits").hidden = list.length === 0;
  $("empty").hidden = list.length !== 0;
}

// --- reviewing -----------------------------------------------------------------------------------

function show(a) {
  audit = a;
  current = null;
  $("current").hidden = true;
  $("video").removeAttribute("src");
  if (a.state === "closed") {
    $("review-section").hidden = true;
    showResults(a);
    return;
  }
  $("results-section").hidden = true;
  $("review-section").hidden = false;
  $("review-title").textContent = `Audit ${a.id}: ${a.reviewed} of ${a.windows.length} windows reviewed`;
  const body = $("windows-table").querySelector("tbody");
  body.replaceChildren(...a.windows.map((w) => {
    const tr = el("tr", null, { "data-window": String(w.seq) });
    const state = el("td", w.reviewed_at ? "done" : "");
    if (!w.reviewed_at && a.you_review) {
      const go = el("button", "Review", { type: "button", class: "secondary" });
      go.addEventListener("click", () => open(w));
      state.append(go);
    }
    tr.append(el("td", String(w.seq)), el("td", w.camera_name), el("td", String(w.marks.length)), state);
    return tr;
  }));
  $("close-form").hidden = !a.you_review;
  const next = a.you_review ? a.windows.find((w) => !w.reviewed_at) : null;
  if (next) open(next);
}

function play() {
  const v = $("video");
  v.src = `/api/recall/audits/${audit.id}/windows/${current.seq}/video?fps=${FPS}`;
  v.play().catch(() => {});
}

function open(w) {
  current = w;
  $("current").hidden = false;
  // The window's place in time is not shown: the reviewer looks for situations, not for moments.
  $("current-title").textContent = `Window ${w.seq} of ${audit.windows.length}: ${w.camera_name}, ${w.seconds} s`;
  $("mark-at").max = String(w.seconds);
  $("mark-zone").replaceChildren(el("option", "—", { value: "" }), ...w.zones.map((z) => el("option", z, { value: z })));
  drawMarks();
  play();
}

function drawMarks() {
  $("marks").replaceChildren(...current.marks.map((m) => {
    const li = el("li", `${titleOf(words, m.type)} at ${m.at} s${m.zone ? ` in ${m.zone}` : ""} `, { "data-mark": String(m.id) });
    const remove = el("button", "Remove", { type: "button", class: "secondary" });
    remove.addEventListener("click", async () => {
      try {
        await send("DELETE", `/api/recall/audits/${audit.id}/windows/${current.seq}/marks/${m.id}`);
        current.marks = current.marks.filter((x) => x.id !== m.id);
        drawMarks();
      } catch (err) {
        say(err.message);
      }
    });
    li.append(remove);
    return li;
  }));
  $("done").disabled = current.marks.length === 0;
  $("nothing").disabled = current.marks.length !== 0;
}

$("replay").addEventListener("click", () => { if (current) play(); });
$("video").addEventListener("timeupdate", () => { $("position").textContent = `${$("video").currentTime.toFixed(1)} s`; });
$("video").addEventListener("error", () => say("The window could not be played; reload the page to see why."));
$("mark-now").addEventListener("click", () => { $("mark-at").value = $("video").currentTime.toFixed(1); });

$("mark-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  say("");
  const body = { type: $("mark-type").value, at: Number($("mark-at").value) };
  if ($("mark-zone").value) body.zone = $("mark-zone").value;
  try {
    const m = await post(`/api/recall/audits/${audit.id}/windows/${current.seq}/marks`, body);
    current.marks.push(m);
    drawMarks();
  } catch (err) {
    say(err.message);
  }
});

async function finish(nothing) {
  say("");
  try {
    const a = await post(`/api/recall/audits/${audit.id}/windows/${current.seq}/done`, { nothing });
    if (a.state === "closed") say(`Every window is reviewed: audit ${a.id} is scored.`);
    await loadList();
    show(a);
  } catch (err) {
    say(err.message);
  }
}

$("done").addEventListener("click", () => finish(false));
$("nothing").addEventListener("click", () => finish(true));

$("close-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  say("");
  try {
    const a = await post(`/api/recall/audits/${audit.id}/close`, { note: $("close-note").value.trim() || null });
    await loadList();
    show(a);
  } catch (err) {
    say(err.message);
  }
});

// --- results -------------------------------------------------------------------------------------

function figureRows(table, figures, label) {
  table.querySelector("tbody").replaceChildren(...figures.map((f) => {
    const tr = el("tr", null, { "data-key": f.key });
    tr.append(
      el("td", label(f.key)),
      el("td", String(f.windows)),
      el("td", String(f.marks)),
      el("td", String(f.found)),
      el("td", share(f)),
      el("td", String(f.unwatched)),
    );
    return tr;
  }));
}

function showResults(a) {
  const r = a.results;
  $("results-section").hidden = false;
  $("results-title").textContent = `Audit ${a.id}, closed ${when(a.closed_at)}`;
  const blind = r.unblinded ? ` ${r.unblinded} window(s) were not blind: the reviewer had looked at their alerts elsewhere.` : "";
  $("overall").textContent = `${r.reviewed} of ${r.windows} windows reviewed: the system alerted ${r.overall.found} of the ${r.overall.marks} situations marked (${share(r.overall)}).${blind}`;
  figureRows($("by-type"), r.by_type, (k) => titleOf(words, k));
  figureRows($("by-camera"), r.by_camera, (k) => k);
  const items = a.windows.flatMap((w) => w.unmarked || []);
  $("unmarked").replaceChildren(...(items.length ? items.map((u) => {
    const li = el("li", `window ${u.window}: ${titleOf(words, u.type)} at ${when(u.start)} `);
    li.append(el("a", u.event_id, { href: `/console/alerts/${encodeURIComponent(u.event_id)}` }));
    return li;
  }) : [el("li", "none", { class: "muted" })]));
}

async function main() {
  me = await whoami();
  if (me.user.role !== "supervisor") {
    $("not-reviewer").hidden = false;
    return;
  }
  words = await vocabulary();
  $("mark-type").replaceChildren(...words.event_types.map((t) => el("option", t.title, { value: t.id })));
  const now = new Date();
  $("from").value = localInput(new Date(now.getTime() - 7 * 24 * 3600 * 1000));
  $("to").value = localInput(now);
  $("start-section").hidden = false;
  $("list-section").hidden = false;
  await Promise.all([loadCameras(), loadList()]);
}

main().catch((err) => say(err.message));
