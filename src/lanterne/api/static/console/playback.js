// The playback page: one camera's recording over a window. A purpose is stated before anything is
// fetched; the timeline (recorded, gaps, lost, alerts) comes from /api/cameras/{id}/recording and
// the video from .../recording/video, a stretch at a time, rendered (masked, anonymised) by the
// server as it plays. The stream cannot be seeked inside, so every seek, speed change and next
// stretch is a new request starting at that point; each one is recorded with the purpose.
import { time } from "./alert_card.js";
import { el, getJSON, postForBlob, titleOf, vocabulary, whoami } from "./common.js";

const BASE_FPS = 10; // frames a second the operator sees, at any speed
const STRETCH_MS = 2 * 60 * 1000; // one request: short enough to start fast, long enough to play on
const JOIN_MS = 1000; // recorded spans closer than this play as one
const ALERT_LEAD_MS = 5000; // an alert marker plays from a little before the alert

const form = document.getElementById("window-form");
const cameraSel = document.getElementById("camera");
const fromIn = document.getElementById("from");
const toIn = document.getElementById("to");
const purposeIn = document.getElementById("purpose");
const message = document.getElementById("message");
const player = document.getElementById("player");
const track = document.getElementById("track");
const video = document.getElementById("video");
const playBtn = document.getElementById("play");
const speedSel = document.getElementById("speed");
const position = document.getElementById("position");
const stateLine = document.getElementById("state");
const exportForm = document.getElementById("export-form");
const exportFrom = document.getElementById("export-from");
const exportTo = document.getElementById("export-to");
const exportLink = document.getElementById("export-link");
let exporter = false; // only export officers export (AC-03)

let words = null;
let win = null; // {camera, start, end, purpose, runs, spans, alerts} (times in ms)
let base = 0; // wall time (ms) of the current stretch's first frame: video time 0
let stretchEnd = 0;
let cursor = null;
let currentUrl = null;

function say(text) { message.textContent = text || ""; }

function pad(n) { return String(n).padStart(2, "0"); }

// A Date as a datetime-local value, in the browser's time zone.
function localInput(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function clock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fraction(ms) { return (ms - win.start) / (win.end - win.start); }

function place(node, fromMs, toMs) {
  node.style.left = `${Math.max(0, fraction(fromMs)) * 100}%`;
  if (toMs !== undefined) node.style.width = `${Math.max(0, fraction(toMs) - fraction(fromMs)) * 100}%`;
}

// Consecutive recorded spans (segments of one connection) as runs: a stretch never spans a gap,
// so that the player never holds a frame across minutes the camera was offline.
function runsOf(spans) {
  const runs = [];
  for (const s of spans) {
    if (s.kind !== "recorded") continue;
    const last = runs[runs.length - 1];
    if (last && s.start - last.end <= JOIN_MS) last.end = Math.max(last.end, s.end);
    else runs.push({ start: s.start, end: s.end });
  }
  return runs;
}

function drawTimeline() {
  const parts = [];
  for (const s of win.spans) {
    const node = el("div", null, { class: `span ${s.kind}`, title: `${s.kind}: ${time(s.iso_start)} – ${time(s.iso_end)}` });
    node.dataset.kind = s.kind;
    place(node, s.start, s.end);
    parts.push(node);
  }
  for (const a of win.alerts) {
    const label = `${titleOf(words, a.type)} at ${time(a.iso_start)} (${a.state})`;
    const m = el("button", null, { type: "button", class: "marker", title: label, "aria-label": `Play the alert: ${label}` });
    m.dataset.id = a.id;
    place(m, a.start);
    m.addEventListener("click", (e) => { e.stopPropagation(); play(a.start - ALERT_LEAD_MS); });
    parts.push(m);
  }
  cursor = el("div", null, { class: "cursor" });
  cursor.hidden = true;
  parts.push(cursor);
  track.replaceChildren(...parts);
  document.getElementById("tick-start").textContent = time(new Date(win.start).toISOString());
  document.getElementById("tick-end").textContent = time(new Date(win.end).toISOString());
}

function showPosition(ms) {
  cursor.hidden = false;
  place(cursor, ms);
  position.textContent = clock(ms);
  track.setAttribute("aria-valuenow", String(Math.round(fraction(ms) * 100)));
  track.setAttribute("aria-valuetext", clock(ms));
}

function now() { return base + video.currentTime * 1000; }

function speed() { return Number(speedSel.value) || 1; }

// Play from `at` (ms): the first recorded instant at or after it, up to the end of its run, the
// window or one stretch, whichever comes first.
function play(at) {
  if (!win) return;
  const t = Math.max(win.start, Math.min(at, win.end));
  const run = win.runs.find((r) => r.end - t > JOIN_MS / 2);
  if (!run) {
    video.pause();
    stateLine.textContent = "";
    say(`Nothing recorded after ${clock(t)} in this window.`);
    return;
  }
  const from = Math.max(t, run.start);
  const to = Math.min(run.end, win.end, from + STRETCH_MS);
  say(from > t + JOIN_MS ? `Nothing recorded from ${clock(t)} to ${clock(from)}: skipped.` : "");
  base = from;
  stretchEnd = to;
  const rate = speed();
  const query = new URLSearchParams({
    start: new Date(from).toISOString(),
    end: new Date(to).toISOString(),
    purpose: win.purpose,
    fps: String(BASE_FPS / rate),
  });
  if (win.unmasked) query.set("unmasked_reference", win.unmasked);
  currentUrl = `/api/cameras/${encodeURIComponent(win.camera)}/recording/video?${query}`;
  video.src = currentUrl;
  video.defaultPlaybackRate = rate;
  video.playbackRate = rate;
  stateLine.textContent = "loading…";
  playBtn.disabled = false;
  showPosition(from);
  video.play().catch(() => {}); // a refusal is reported by the element's error event
}

// The element says only that the stream failed; the server's one-line reason (a tampered
// segment, nothing recorded, a refusal) comes from asking again: a refused request is not a view.
async function explain() {
  const url = currentUrl;
  stateLine.textContent = "";
  try {
    const ctl = new AbortController();
    const r = await fetch(url, { credentials: "same-origin", signal: ctl.signal });
    // A stream that did come is not downloaded a second time; a refusal's body is its reason.
    if (r.ok) ctl.abort();
    let detail = "";
    try { detail = (await r.json()).detail; } catch (_) { detail = ""; }
    say(r.ok ? "The video could not be played by this browser." : detail || `refused (${r.status})`);
  } catch (_) {
    say("The video could not be loaded.");
  }
}

video.addEventListener("error", explain);
video.addEventListener("timeupdate", () => showPosition(now()));
video.addEventListener("waiting", () => { stateLine.textContent = "loading…"; });
video.addEventListener("playing", () => { stateLine.textContent = ""; playBtn.textContent = "Pause"; });
video.addEventListener("pause", () => { playBtn.textContent = "Play"; });
video.addEventListener("ended", () => {
  playBtn.textContent = "Play";
  if (stretchEnd < win.end - JOIN_MS / 2) play(stretchEnd);
  else stateLine.textContent = "end of the window";
});

playBtn.addEventListener("click", () => {
  if (!video.currentSrc) play(win.start);
  else if (video.paused) video.play().catch(() => {});
  else video.pause();
});

// Another speed asks the server for fewer (or more) frames per second of recording: the page shows
// BASE_FPS frames a second at any speed, and the server anonymises only those.
speedSel.addEventListener("change", () => { if (video.currentSrc) play(now()); });

track.addEventListener("click", (e) => {
  const box = track.getBoundingClientRect();
  play(win.start + ((e.clientX - box.left) / box.width) * (win.end - win.start));
});
track.addEventListener("keydown", (e) => {
  const step = e.key === "ArrowRight" ? 10000 : e.key === "ArrowLeft" ? -10000 : 0;
  if (step) { e.preventDefault(); play((video.currentSrc ? now() : win.start) + step); }
});

function ms(iso) { return new Date(iso).getTime(); }

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  say("");
  const purpose = purposeIn.value.trim();
  if (!purpose) { say("State a purpose first: it is recorded with what you view."); purposeIn.focus(); return; }
  const start = new Date(fromIn.value);
  const end = new Date(toIn.value);
  if (!(end > start)) { say("The end must be after the start."); return; }
  if (end - start > 24 * 3600 * 1000) { say("A window covers at most 24 h."); return; }
  const camera = cameraSel.value;
  try {
    const t = await getJSON(`/api/cameras/${encodeURIComponent(camera)}/recording`, {
      start: start.toISOString(), end: end.toISOString(), purpose,
    });
    const spans = t.spans.map((s) => ({ kind: s.kind, start: ms(s.start), end: ms(s.end), iso_start: s.start, iso_end: s.end }));
    win = {
      camera, purpose, start: start.getTime(), end: end.getTime(), spans, runs: runsOf(spans),
      unmasked: document.getElementById("unmasked").value.trim(),
      alerts: t.alerts.map((a) => Object.assign({}, a, { start: ms(a.start), iso_start: a.start })),
    };
    video.removeAttribute("src");
    video.load();
    player.hidden = false;
    exportForm.hidden = !exporter;
    const from = new URLSearchParams(location.search).get("at");
    const exportStart = from ? new Date(ms(from) - ALERT_LEAD_MS) : start;
    exportFrom.value = localInput(exportStart);
    exportTo.value = localInput(new Date(exportStart.getTime() + 10 * 1000));
    drawTimeline();
    if (!win.runs.length) { say("Nothing is recorded in this window."); playBtn.disabled = true; return; }
    const at = new URLSearchParams(location.search).get("at");
    play(at ? ms(at) - ALERT_LEAD_MS : win.start);
  } catch (err) {
    say(err.message);
  }
});

// An export is rendered while the export officer waits, then handed over as a download: nothing of it
// stays on the server, and the server records it before answering.
exportForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  say("");
  exportLink.hidden = true;
  const body = {
    start: new Date(exportFrom.value).toISOString(),
    end: new Date(exportTo.value).toISOString(),
    recipient: document.getElementById("export-recipient").value.trim(),
    purpose: document.getElementById("export-purpose").value.trim(),
  };
  const reference = document.getElementById("export-unmasked").value.trim();
  if (reference) body.unmasked_reference = reference;
  stateLine.textContent = "rendering the export…";
  try {
    const blob = await postForBlob(`/api/cameras/${encodeURIComponent(win.camera)}/recording/export`, body);
    exportLink.href = URL.createObjectURL(blob);
    exportLink.download = `lanterne-export-${win.camera}.zip`;
    exportLink.hidden = false;
    stateLine.textContent = "export ready";
    exportLink.click();
  } catch (err) {
    stateLine.textContent = "";
    say(err.message);
  }
});

async function init() {
  const me = await whoami();
  exporter = me.user.role === "export_officer";
  words = await vocabulary();
  const cameras = await getJSON("/api/cameras");
  for (const c of cameras) cameraSel.append(el("option", c.name === c.id ? c.id : `${c.name} (${c.id})`, { value: c.id }));
  const params = new URLSearchParams(location.search);
  const at = params.get("at") ? new Date(params.get("at")) : null;
  if (params.get("camera")) cameraSel.value = params.get("camera");
  const centre = at && !Number.isNaN(at.getTime()) ? at : new Date();
  fromIn.value = localInput(new Date(centre.getTime() - (at ? 5 : 60) * 60 * 1000));
  toIn.value = localInput(at ? new Date(centre.getTime() + 5 * 60 * 1000) : centre);
  purposeIn.focus();
}

init().catch((err) => say(err.message));
