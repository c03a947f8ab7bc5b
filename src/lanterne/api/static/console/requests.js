// The access-request page (GDPR art. 15): the list with deadlines (overdue ones flagged), a form to
// record a request, and for an open one: a camera and a time inside its window, one frame of the
// recording at that time (from the recordings' own video route, anonymised, its viewing recorded
// with the request's number as purpose), a rectangle dragged around the requester, then the answer
// (an export where only that person is visible, downloaded as the console's exports are) or a
// refusal with its reason. Export officers only; the page says so to anyone else without asking.
import { time } from "./alert_card.js";
import { el, getJSON, post, postForBlob, say, whoami } from "./common.js";

const FRAME_MS = 1000; // the stretch asked for to show one frame
const MIN_MARK = 0.01; // a rectangle smaller than this (fraction of the frame) is a stray click

const table = document.getElementById("requests");
const body = table.querySelector("tbody");
const handle = document.getElementById("handle");
const video = document.getElementById("video");
const frame = document.getElementById("frame");
const draw = document.getElementById("draw");
const mark = document.getElementById("mark");
const markText = document.getElementById("mark-text");
const answerBtn = document.getElementById("answer");
const answerLink = document.getElementById("answer-link");
const frameState = document.getElementById("frame-state");
const cameraSel = document.getElementById("camera");
const atIn = document.getElementById("at");
const secondsIn = document.getElementById("seconds");

let current = null; // the open request being handled
let shown = null; // {camera, start} of the frame on screen
let keep = null; // {x0, y0, x1, y1} fractions of the frame

function pad(n) { return String(n).padStart(2, "0"); }

// A Date as a datetime-local value, in the browser's time zone.
function localInput(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function dateInput(d) { return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`; }

function purpose(r) { return `access request ${r.id} (GDPR art. 15)`; }

function row(r) {
  const tr = el("tr");
  tr.dataset.id = String(r.id);
  if (r.overdue) tr.classList.add("overdue");
  const due = el("td", time(r.deadline));
  if (r.overdue) due.append(" ", el("span", "overdue", { class: "badge overdue" }));
  const state = r.state === "refused" ? `refused: ${r.refusal_reason}` : r.state === "answered" ? `answered (export ${r.export_id})` : "open";
  const action = el("td");
  if (r.state === "open") {
    const b = el("button", "Handle", { type: "button", class: "secondary", "aria-label": `Handle request ${r.id}` });
    b.addEventListener("click", () => open(r));
    action.append(b);
  }
  tr.append(
    el("td", r.id), due, el("td", state, r.state === "open" ? {} : { class: "closed" }),
    el("td", `${time(r.window_start)} – ${time(r.window_end)}`), el("td", r.place),
    el("td", `${r.requester} (${r.contact})`), action,
  );
  return tr;
}

async function load() {
  const list = await getJSON("/api/requests");
  body.replaceChildren(...list.items.map(row));
  table.hidden = list.items.length === 0;
  document.getElementById("empty").hidden = list.items.length > 0;
  const count = document.getElementById("overdue-count");
  count.textContent = `${list.overdue} overdue`;
  count.hidden = list.overdue === 0;
  return list;
}

function clearMark() {
  keep = null;
  mark.hidden = true;
  markText.textContent = "";
  answerBtn.disabled = true;
}

function open(r) {
  current = r;
  shown = null;
  clearMark();
  answerLink.hidden = true;
  frame.hidden = true;
  frameState.textContent = "";
  document.getElementById("reason").value = "";
  document.getElementById("handle-title").textContent = `Request ${r.id}${r.overdue ? " — overdue" : ""}`;
  document.getElementById("handle-summary").textContent =
    `Received ${time(r.received_at)}, due ${time(r.deadline)}. ${r.place}, ${time(r.window_start)} – ${time(r.window_end)}.` +
    (r.description ? ` They say: ${r.description}` : "");
  atIn.min = localInput(new Date(r.window_start));
  atIn.max = localInput(new Date(r.window_end));
  atIn.value = atIn.min;
  handle.hidden = false;
  handle.scrollIntoView();
  say("");
}

// The instant chosen, the end of the range to hand over, and whether both stay in the window.
function range() {
  const start = new Date(atIn.value);
  const end = new Date(start.getTime() + Number(secondsIn.value) * 1000);
  if (Number.isNaN(start.getTime())) throw new Error("Give the time to look at.");
  if (start < new Date(current.window_start) || end > new Date(current.window_end)) {
    throw new Error(`The range must stay inside the request's window (${time(current.window_start)} – ${time(current.window_end)}).`);
  }
  return { start, end };
}

// One frame, through the same route the recordings page plays from: the server decrypts, verifies,
// masks and anonymises it, and records the view with the request's number as its purpose.
document.getElementById("frame-form").addEventListener("submit", (e) => {
  e.preventDefault();
  say("");
  let start;
  try { ({ start } = range()); } catch (err) { say(err.message); return; }
  const camera = cameraSel.value;
  clearMark();
  answerLink.hidden = true;
  const query = new URLSearchParams({
    start: start.toISOString(),
    end: new Date(start.getTime() + FRAME_MS).toISOString(),
    purpose: purpose(current),
    fps: "1",
  });
  shown = { camera, start };
  frameState.textContent = "loading…";
  video.src = `/api/cameras/${encodeURIComponent(camera)}/recording/video?${query}`;
  video.load();
});

video.addEventListener("loadeddata", () => {
  frame.hidden = false;
  frameState.textContent = "";
});

// The element says only that it failed; the server's one-line reason (nothing recorded then, a
// tampered segment, a refusal) comes from asking again.
video.addEventListener("error", async () => {
  if (!video.getAttribute("src")) return;
  frameState.textContent = "";
  frame.hidden = true;
  shown = null;
  try {
    const r = await fetch(video.src, { credentials: "same-origin" });
    let detail = "";
    try { detail = (await r.json()).detail; } catch (_) { detail = ""; }
    say(r.ok ? "This browser could not show the frame." : detail || `refused (${r.status})`);
  } catch (_) {
    say("The frame could not be loaded.");
  }
});

// Dragging a rectangle over the frame: fractions of the picture, which is what the server keeps.
let anchor = null;

function fractionAt(e) {
  const box = draw.getBoundingClientRect();
  return {
    x: Math.min(1, Math.max(0, (e.clientX - box.left) / box.width)),
    y: Math.min(1, Math.max(0, (e.clientY - box.top) / box.height)),
  };
}

function showMark(a, b) {
  const r = { x0: Math.min(a.x, b.x), y0: Math.min(a.y, b.y), x1: Math.max(a.x, b.x), y1: Math.max(a.y, b.y) };
  mark.style.left = `${r.x0 * 100}%`;
  mark.style.top = `${r.y0 * 100}%`;
  mark.style.width = `${(r.x1 - r.x0) * 100}%`;
  mark.style.height = `${(r.y1 - r.y0) * 100}%`;
  mark.hidden = false;
  return r;
}

draw.addEventListener("pointerdown", (e) => {
  if (!shown) return;
  e.preventDefault();
  draw.setPointerCapture(e.pointerId);
  anchor = fractionAt(e);
  clearMark();
});
draw.addEventListener("pointermove", (e) => { if (anchor) showMark(anchor, fractionAt(e)); });
draw.addEventListener("pointerup", (e) => {
  if (!anchor) return;
  const r = showMark(anchor, fractionAt(e));
  anchor = null;
  if (r.x1 - r.x0 < MIN_MARK || r.y1 - r.y0 < MIN_MARK) { clearMark(); return; }
  keep = r;
  const pct = (v) => `${Math.round(v * 100)} %`;
  markText.textContent = `Requester marked: ${pct(r.x0)}–${pct(r.x1)} across, ${pct(r.y0)}–${pct(r.y1)} down.`;
  answerBtn.disabled = false;
});

// The answer is rendered while the export officer waits and handed over as a download; the server
// records the export and closes the request before answering, and keeps no copy.
answerBtn.addEventListener("click", async () => {
  say("");
  let r;
  try { r = range(); } catch (err) { say(err.message); return; }
  if (!keep || !shown) { say("Show a moment and mark the requester first."); return; }
  answerBtn.disabled = true;
  frameState.textContent = "rendering the answer…";
  try {
    const blob = await postForBlob(`/api/requests/${current.id}/answer`, {
      camera: shown.camera, start: r.start.toISOString(), end: r.end.toISOString(), keep,
    });
    answerLink.href = URL.createObjectURL(blob);
    answerLink.download = `lanterne-access-request-${current.id}.zip`;
    answerLink.hidden = false;
    frameState.textContent = "answered";
    answerLink.click();
    await load();
  } catch (err) {
    frameState.textContent = "";
    answerBtn.disabled = false;
    say(err.message);
  }
});

document.getElementById("refuse-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  say("");
  const reason = document.getElementById("reason").value.trim();
  if (!reason) { say("A refusal needs its reason: the requester is told it."); return; }
  try {
    await post(`/api/requests/${current.id}/refuse`, { reason });
    handle.hidden = true;
    await load();
  } catch (err) {
    say(err.message);
  }
});

document.getElementById("close-handle").addEventListener("click", () => { handle.hidden = true; });

document.getElementById("new-request").addEventListener("submit", async (e) => {
  e.preventDefault();
  say("");
  const value = (id) => document.getElementById(id).value.trim();
  const start = new Date(value("window-start"));
  const end = new Date(value("window-end"));
  if (!(end > start)) { say("The end of the window must come after its start."); return; }
  // The day it arrived, at noon local time: the deadline is the same day a month later.
  const received = new Date(`${value("received")}T12:00:00`);
  const now = new Date();
  try {
    const r = await post("/api/requests", {
      requester: value("requester"), contact: value("contact"), place: value("place"),
      description: document.getElementById("description").value.trim(),
      window_start: start.toISOString(), window_end: end.toISOString(),
      received_at: (received > now ? now : received).toISOString(),
    });
    e.target.reset();
    document.getElementById("received").value = dateInput(new Date());
    await load();
    document.getElementById("recorded").textContent = `Request ${r.id} recorded; due ${time(r.deadline)}.`;
  } catch (err) {
    say(err.message);
  }
});

async function init() {
  const me = await whoami();
  if (me.user.role !== "export_officer") {
    // Asking would be a refused (and recorded) request: say it instead.
    document.getElementById("not-exporter").hidden = false;
    return;
  }
  document.getElementById("list-section").hidden = false;
  document.getElementById("new-request").hidden = false;
  document.getElementById("received").value = dateInput(new Date());
  const cameras = await getJSON("/api/cameras");
  for (const c of cameras) cameraSel.append(el("option", c.name === c.id ? c.id : `${c.name} (${c.id})`, { value: c.id }));
  await load();
}

init().catch((err) => say(err.message));
