// The live wall (issue 14): tiles of live cameras, anonymised by default, each one a view on the
// record. A tile asks the console for a view (POST /api/live/{camera}/views with the session's
// purpose), receives a gateway token valid for that view only and the mountpoint's pin, plays it
// over WebRTC through Janus, confirms every few seconds that it still plays, and ends the view
// when it is closed or the page goes away. Removing protection is a second view on the same tile,
// under the user's permission, with a red banner until its end.
//
// Where WebRTC cannot be set up (no gateway on the console, a browser without WebRTC, a tile that
// cannot connect over WebRTC within WEBRTC_DEADLINE_MS, or ?transport=mjpeg), an anonymised tile
// plays the fallback instead: the view's pictures as a multipart JPEG stream from the console,
// drawn on a canvas. The fallback carries anonymised pictures only.
import Janus from "/static/vendor/janus/janus.es.js";
import { el, getJSON, post, say, send, whoami } from "/static/console/common.js";
import { baseLayer } from "/static/console/basemap.js";

const PURPOSE_KEY = "lanterne.wall.purpose";
const FROZEN_MS = 3000; // a tile without a new frame for this long says "reconnecting"
const LAYOUT_KEY = "lanterne.wall.tiles";
const WEBRTC_DEADLINE_MS = 10000; // a page whose first tile's ICE has not connected by then plays the fallback
const FALLBACK_RETRY_MS = 1000;
const DELAY_MS = 2000; // how often each tile's delay behind its camera is estimated
const DELAY_TITLE = "At least this far behind the camera: the analysing process's lag plus this browser's network, buffering and decoding (the camera's own encoding and network are not counted)";
let webrtc = false; // set from /api/live, the browser and ?transport=
let webrtcWorked = false; // once a tile connected over WebRTC, a later stall is a camera or gateway fault, not a blocked network
const grid = document.getElementById("grid");
const layoutSelect = document.getElementById("layout");
const cameraList = document.getElementById("camera-list");
const groupsSelect = document.getElementById("groups");
let me = null;
let cameras = new Map(); // id -> camera from /api/cameras
let tiles = []; // Tile objects, in order
let picked = null; // a tile waiting for a camera click
let janusReady = null;

function initJanus() {
  if (!janusReady) {
    janusReady = new Promise((resolve) => {
      Janus.init({
        debug: false,
        dependencies: Janus.useDefaultDependencies({ adapter: window.adapter }),
        callback: resolve,
      });
    });
  }
  return janusReady;
}

function purpose() {
  return sessionStorage.getItem(PURPOSE_KEY) || "";
}

// --- a tile ------------------------------------------------------------------------------------

class Tile {
  constructor(index) {
    this.index = index;
    this.camera = null;
    this.view = null; // the grant being played
    this.janus = null;
    this.handle = null;
    this.beat = null;
    this.retry = null;
    this.lastFrame = 0; // performance.now() of the last frame the <video> or the canvas presented
    this.transport = "webrtc"; // or "fallback"
    this.deadline = null;
    this.fetching = null; // the fallback's AbortController
    this.node = el("div", null, { class: "tile", "data-tile": String(index + 1), tabindex: "0" });
    this.node.addEventListener("dragover", (e) => e.preventDefault());
    this.node.addEventListener("drop", (e) => {
      e.preventDefault();
      const id = e.dataTransfer.getData("text/plain");
      if (id) this.show(id);
    });
    this.node.addEventListener("click", (e) => {
      if (e.target.closest("button")) return;
      for (const t of tiles) t.node.classList.remove("picked");
      picked = this;
      this.node.classList.add("picked");
    });
    this.render();
  }

  render() {
    this.node.replaceChildren();
    this.node.classList.toggle("raw", Boolean(this.view && this.view.kind === "raw"));
    if (!this.camera) {
      this.node.removeAttribute("data-camera");
      this.node.append(el("p", "Empty tile: drop a camera here", { class: "empty-tile" }));
      return;
    }
    this.node.setAttribute("data-camera", this.camera);
    const cam = cameras.get(this.camera);
    const caption = el("div", null, { class: "caption" });
    caption.append(el("span", cam ? cam.name : this.camera, { class: "name" }));
    this.stateBadge = el("span", "starting", { class: "badge state st-starting" });
    caption.append(this.stateBadge);
    this.delayBadge = el("span", "", { class: "badge delay", title: DELAY_TITLE });
    this.lastStats = null;
    if (this.view) caption.append(this.delayBadge);
    if (!this.view || this.view.kind !== "raw") caption.append(el("span", "anonymised", { class: "badge anon" }));
    if (this.view && this.transport === "fallback") {
      caption.append(el("span", "fallback", { class: "badge fallback", title: "WebRTC unavailable: pictures relayed by the console (MJPEG)" }));
    }
    const full = el("button", "Full screen", { type: "button", class: "full" });
    full.addEventListener("click", () => this.node.requestFullscreen && this.node.requestFullscreen());
    const unmask = el("button", "Remove protection", { type: "button", class: "unmask" });
    unmask.addEventListener("click", () => openUnmask(this));
    const close = el("button", "×", { type: "button", title: "Close this tile", class: "close" });
    close.addEventListener("click", () => { this.clear(); saveLocal(); });
    caption.append(full, unmask, close);
    if (this.view && this.transport === "fallback") {
      this.video = null;
      this.canvas = el("canvas", null, { width: "640", height: "360" });
      this.watchFrames(this.canvas);
      this.node.append(this.canvas, caption);
    } else {
      this.canvas = null;
      this.video = el("video", null, { autoplay: "", muted: "", playsinline: "" });
      this.video.muted = true;
      this.node.append(this.video, caption);
    }
    if (this.view && this.view.kind === "raw") {
      const until = new Date(this.view.raw_until).toLocaleTimeString();
      this.node.append(el("div", "PRIVACY PROTECTION REMOVED until " + until + " — recorded", { class: "banner" }));
    }
  }

  setState(state) {
    if (!this.stateBadge) return;
    this.stateBadge.textContent = state.replace("_", " ");
    this.stateBadge.className = "badge state st-" + state;
    this.node.setAttribute("data-state", state);
  }

  // Start a view of `camera` on this tile (with protection removed when `raw` holds the reason,
  // reference and minutes); true when it plays, false when refused (the reason is shown).
  async show(camera, raw) {
    if (!purpose()) {
      say("State the purpose of this wall session first.");
      return false;
    }
    if (raw && !webrtc) {
      // The fallback is anonymised only: without WebRTC, protection cannot be removed here.
      say(camera + ": removing protection needs WebRTC, which this browser or network cannot set up.");
      return false;
    }
    await this.stop();
    this.camera = camera;
    this.transport = webrtc ? "webrtc" : "fallback";
    this.render();
    try {
      const path = "/api/live/" + encodeURIComponent(camera) + "/views" + (raw ? "/raw" : "");
      this.view = await post(path, Object.assign({ purpose: purpose() }, raw || {}));
    } catch (err) {
      say(camera + ": " + err.message);
      this.view = null;
      this.render();
      this.setState("unavailable");
      return false;
    }
    say("");
    if (!this.view.token) this.transport = "fallback";
    this.render();
    this.heartbeat();
    if (this.transport === "fallback") this.playFallback();
    else this.play();
    return true;
  }

  heartbeat() {
    clearInterval(this.beat);
    const view = this.view;
    this.beat = setInterval(async () => {
      try {
        await post("/api/live/views/" + view.view + "/heartbeat");
      } catch (err) {
        // Ended elsewhere (grant over, habilitation lapsed, console restarted): back to anonymised.
        clearInterval(this.beat);
        if (this.view === view) {
          say(this.camera + ": " + err.message);
          const camera = this.camera;
          this.view = null;
          await this.teardown();
          if (camera) this.show(camera);
        }
      }
    }, view.heartbeat_seconds * 1000);
  }

  async play() {
    await initJanus();
    const view = this.view;
    if (!view) return;
    this.setState("starting");
    clearTimeout(this.deadline);
    if (view.fallback_url && !webrtcWorked) {
      // WebRTC that does not start (UDP blocked, ICE never completes) gives way to the fallback.
      this.deadline = setTimeout(() => {
        if (this.view === view && !webrtcWorked) this.useFallback(view);
      }, WEBRTC_DEADLINE_MS);
    }
    // The console's relay is a path on this origin; a configured public URL is used as it is.
    const server = view.janus_url.startsWith("/")
      ? (location.protocol === "https:" ? "wss://" : "ws://") + location.host + view.janus_url
      : view.janus_url;
    const janus = new Janus({
      server,
      token: view.token,
      success: () => {
        janus.attach({
          plugin: "janus.plugin.streaming",
          success: (handle) => {
            this.handle = handle;
            handle.send({ message: { request: "watch", id: view.mountpoint, pin: view.pin } });
          },
          error: () => this.reconnect(view),
          onmessage: (msg, jsep) => {
            const result = msg && msg.result;
            if (result && result.status === "started") {
              this.handle.send({ message: { request: "configure", min_delay: 0, max_delay: 0 } });
            }
            if (msg && msg.error) {
              this.setState("reconnecting");
              this.reconnect(view);
              return;
            }
            if (jsep) {
              this.handle.createAnswer({
                jsep,
                tracks: [{ type: "data" }],
                success: (answer) => this.handle.send({ message: { request: "start" }, jsep: answer }),
                error: () => this.reconnect(view),
              });
            }
          },
          onremotetrack: (track, mid, on) => {
            if (!on || track.kind !== "video") return;
            this.video.srcObject = new MediaStream([track]);
            this.video.play().catch(() => {});
            this.watchFrames(this.video);
          },
          iceState: (state) => {
            if (state === "connected" || state === "completed") {
              webrtcWorked = true;
              clearTimeout(this.deadline);
              this.setState("live");
            }
            if (state === "disconnected" || state === "failed") {
              this.setState("reconnecting");
              if (state === "failed") this.reconnect(view);
            }
          },
          webrtcState: (up) => { if (!up) this.reconnect(view); },
          oncleanup: () => {},
        });
      },
      error: () => { this.setState("reconnecting"); this.reconnect(view); },
      destroyed: () => {},
    });
    this.janus = janus;
    this.video.addEventListener("playing", () => this.setState("live"));
  }

  // Switch this tile, and the tiles started after it, to the fallback.
  async useFallback(view) {
    if (this.view !== view) return;
    webrtc = false;
    clearTimeout(this.retry);
    this.retry = null;
    await this.teardown();
    this.transport = "fallback";
    this.render();
    this.playFallback();
  }

  // The fallback: the view's pictures, one JPEG per part of a multipart response, each drawn on
  // the tile's canvas as it arrives. A stream that ends (camera quiet, console restarted) is
  // asked again a moment later, with the same view, until the view itself ends.
  async playFallback() {
    const view = this.view;
    if (!view || !view.fallback_url) return;
    const abort = new AbortController();
    this.fetching = abort;
    this.setState("starting");
    try {
      const response = await fetch(view.fallback_url, { signal: abort.signal, credentials: "same-origin" });
      if (!response.ok) throw new Error("fallback " + response.status);
      for await (const jpeg of jpegParts(response.body.getReader())) {
        if (this.view !== view) return;
        const bitmap = await createImageBitmap(new Blob([jpeg], { type: "image/jpeg" }));
        const canvas = this.canvas;
        if (!canvas) { bitmap.close(); return; }
        canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
        bitmap.close();
        canvas.dispatchEvent(new Event("frame"));
        if (this.node.dataset.state !== "live") this.setState("live");
      }
    } catch (err) {
      if (abort.signal.aborted) return;
    } finally {
      if (this.fetching === abort) this.fetching = null;
    }
    if (this.view !== view) return;
    this.setState("reconnecting");
    this.retry = setTimeout(() => {
      this.retry = null;
      if (this.view === view && !this.fetching) this.playFallback();
    }, FALLBACK_RETRY_MS);
  }

  // Every presented frame is noted: a camera that drops leaves the tile frozen, which
  // `checkFrozen()` turns into "reconnecting" until frames come again, without reloading anything.
  // A <video> tells its frames through requestVideoFrameCallback; the fallback's canvas has nothing
  // of the kind, so the tile dispatches a "frame" event on it after each picture it draws, which
  // anything else reading the tile's pictures hears too (the clock camera's reader,
  // tests/support/clock.py, times the fallback's pictures with it).
  watchFrames(source) {
    if (source instanceof HTMLCanvasElement) {
      source.addEventListener("frame", () => { this.lastFrame = performance.now(); });
      return;
    }
    const seen = () => {
      if (this.video !== source) return;
      this.lastFrame = performance.now();
      source.requestVideoFrameCallback(seen);
    };
    source.requestVideoFrameCallback(seen);
  }

  // How far behind the camera the picture is, shown on the tile: the camera process's lag (from
  // a frame's arrival to its analysis and encoding: the camera's health row) plus this browser's
  // share (half the round trip to the gateway, then the jitter buffer and decoding: WebRTC's
  // statistics over the last interval; a fallback tile has only the process's share).
  async measureDelay() {
    const badge = this.delayBadge;
    if (!badge || !this.view || this.node.dataset.state !== "live") {
      if (badge) badge.textContent = "";
      return;
    }
    const cam = cameras.get(this.camera);
    const lag = cam && typeof cam.lag_seconds === "number" ? Math.max(0, cam.lag_seconds) * 1000 : null;
    const pc = this.transport === "webrtc" && this.handle && this.handle.webrtcStuff && this.handle.webrtcStuff.pc;
    let here = null;
    if (pc) {
      let rtp = null;
      let rtt = 0;
      (await pc.getStats()).forEach((r) => {
        if (r.type === "inbound-rtp" && r.kind === "video") rtp = r;
        if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded" && r.currentRoundTripTime) rtt = r.currentRoundTripTime;
      });
      const prev = this.lastStats;
      this.lastStats = rtp;
      if (rtp && prev && rtp.framesDecoded > prev.framesDecoded) {
        const frames = rtp.framesDecoded - prev.framesDecoded;
        // From a frame's first packet to its decoded picture; Chromium's own sum where it has it.
        const processing = rtp.totalProcessingDelay !== undefined
          ? rtp.totalProcessingDelay - prev.totalProcessingDelay
          : (rtp.jitterBufferDelay - prev.jitterBufferDelay) + (rtp.totalDecodeTime - prev.totalDecodeTime);
        here = 1000 * (processing / frames + rtt / 2);
      }
    }
    // A floor, not an estimate: the camera's own encoding and network before Lanterne, and the
    // screen's refresh after the decoder, are not in it (about 130 ms more with the test camera).
    badge.textContent = lag === null && here === null ? "" : "≥ " + Math.round((lag || 0) + (here || 0)) + " ms";
    badge.dataset.lagMs = lag === null ? "" : String(Math.round(lag));
    badge.dataset.browserMs = here === null ? "" : String(Math.round(here));
  }

  checkFrozen() {
    if (!this.view || !this.lastFrame) return;
    const state = this.node.dataset.state;
    const stale = performance.now() - this.lastFrame > FROZEN_MS;
    if (stale && state === "live") this.setState("reconnecting");
    else if (!stale && state === "reconnecting" && !this.retry) this.setState("live");
  }

  // The gateway went away (restarted, a network cut) or refused: try again in a moment with the
  // same view; the console answers 404 at the next heartbeat if the view itself ended.
  reconnect(view) {
    if (this.view !== view || this.retry) return;
    this.setState("reconnecting");
    this.retry = setTimeout(async () => {
      this.retry = null;
      if (this.view !== view) return;
      await this.teardown();
      try {
        // The same view again: another viewer of the camera may have arrived meanwhile and
        // rotated its mountpoint's pin, so the view's own would no longer open it.
        Object.assign(view, await post("/api/live/views/" + view.view + "/rejoin"));
      } catch (err) {
        // The console or the gateway cannot be reached yet: try again. A view that ended is
        // the heartbeat's to handle (it starts the camera again, anonymised).
        if (this.view === view) this.reconnect(view);
        return;
      }
      if (this.view === view) this.play();
    }, 1000);
  }

  async teardown() {
    const janus = this.janus;
    this.janus = null;
    this.handle = null;
    this.lastFrame = 0;
    clearTimeout(this.deadline);
    if (this.fetching) {
      this.fetching.abort();
      this.fetching = null;
    }
    if (janus) {
      try { janus.destroy({ cleanupHandles: true, notifyDestroyed: false }); } catch (_) { /* gone already */ }
    }
    if (this.video) this.video.srcObject = null;
  }

  // The tile stops at once; the console is told the view ended without waiting for its answer,
  // so that a tile switched to another camera asks for its new view straight away (the wait was
  // a third of a switch's time on a loaded wall, benchmarks/live_wall.py's start steps).
  async stop() {
    clearInterval(this.beat);
    clearTimeout(this.retry);
    this.retry = null;
    await this.teardown();
    const view = this.view;
    this.view = null;
    if (view) send("DELETE", "/api/live/views/" + view.view).catch(() => { /* ended already */ });
  }

  async clear() {
    await this.stop();
    this.camera = null;
    this.render();
  }
}

// The JPEG pictures of a multipart/x-mixed-replace body: each part's headers give its length, so
// a picture is cut out whole whatever the chunks the network delivers.
async function* jpegParts(reader) {
  const CRLF2 = [13, 10, 13, 10];
  let buffer = new Uint8Array(0);
  const find = (seq, from) => {
    outer: for (let i = from; i <= buffer.length - seq.length; i++) {
      for (let j = 0; j < seq.length; j++) if (buffer[i + j] !== seq[j]) continue outer;
      return i;
    }
    return -1;
  };
  for (;;) {
    const end = find(CRLF2, 0);
    if (end >= 0) {
      const headers = new TextDecoder().decode(buffer.subarray(0, end));
      const match = /content-length:\s*(\d+)/i.exec(headers);
      if (!match) throw new Error("fallback part without a length");
      const length = Number(match[1]);
      if (buffer.length >= end + 4 + length) {
        yield buffer.slice(end + 4, end + 4 + length);
        buffer = buffer.slice(end + 4 + length);
        continue;
      }
    }
    const { value, done } = await reader.read();
    if (done) return;
    const joined = new Uint8Array(buffer.length + value.length);
    joined.set(buffer);
    joined.set(value, buffer.length);
    buffer = joined;
  }
}

// --- the grid ----------------------------------------------------------------------------------

function layout(n) {
  grid.className = "grid g" + n;
  layoutSelect.value = String(n);
  while (tiles.length > n) tiles.pop().clear().then(() => {});
  while (tiles.length < n) tiles.push(new Tile(tiles.length));
  grid.replaceChildren(...tiles.map((t) => t.node));
}

function saveLocal() {
  sessionStorage.setItem(LAYOUT_KEY, JSON.stringify({ layout: tiles.length, cameras: tiles.map((t) => t.camera) }));
}

async function apply(n, ids) {
  layout(n);
  for (let i = 0; i < tiles.length; i++) {
    const id = ids[i] || null;
    if (id && cameras.has(id)) await tiles[i].show(id);
    else if (!id && tiles[i].camera) await tiles[i].clear();
  }
  saveLocal();
}

function focus(index) {
  const tile = tiles[index];
  if (!tile) return;
  for (const t of tiles) t.node.classList.toggle("focus", t === tile);
  grid.classList.add("focused");
}

document.addEventListener("keydown", (e) => {
  if (e.target.closest("input, select, textarea, dialog")) return;
  if (e.key === "Escape") {
    grid.classList.remove("focused");
    for (const t of tiles) t.node.classList.remove("focus");
  } else if (/^[1-9]$/.test(e.key)) {
    focus(Number(e.key) - 1);
  }
});

layoutSelect.addEventListener("change", () => { layout(Number(layoutSelect.value)); saveLocal(); });

// --- cameras, alerts, who watches ---------------------------------------------------------------

const STATE_OF = { running: "live", lagging: "live", offline: "offline", stopped: "stopped_detector", suspended: "live" };

// A clicked camera goes to the picked tile, else the first empty one, else the first.
function place(id) {
  const target = picked || tiles.find((t) => !t.camera) || tiles[0];
  target.show(id).then(saveLocal);
}

// --- the map: the same cameras where they are, dragged onto a tile or clicked -----------------

let wallMap = null;
let wallMarkers = null;
let mapDrawn = ""; // what the markers show (ids and states): redrawn only when it changes

async function initMap() {
  if (typeof L === "undefined") return; // no Leaflet on this server: the list still works
  wallMap = L.map("wall-map", { zoomControl: true, attributionControl: false });
  wallMap.setView([46.6, 2.4], 6);
  wallMarkers = L.layerGroup().addTo(wallMap);
  await baseLayer(wallMap, await getJSON("/api/map-settings"), () => {});
}

function drawMap(list) {
  if (!wallMap) return;
  const key = list.map((c) => c.id + ":" + c.state).join(",");
  if (key === mapDrawn) return; // a marker rebuilt under a drag in progress would end the drag
  const first = !mapDrawn;
  mapDrawn = key;
  wallMarkers.clearLayers();
  const points = [];
  for (const c of list) {
    const icon = L.divIcon({ className: "wall-cam state-" + c.state, iconSize: [18, 18], html: "" });
    const marker = L.marker([c.lat, c.lon], { icon, title: c.name }).addTo(wallMarkers);
    const node = marker.getElement();
    node.setAttribute("draggable", "true");
    node.dataset.camera = c.id;
    // A press on a marker starts the browser's drag of the camera, not a pan of the map.
    L.DomEvent.on(node, "mousedown", L.DomEvent.stopPropagation);
    node.addEventListener("dragstart", (e) => e.dataTransfer.setData("text/plain", c.id));
    marker.on("click", () => place(c.id));
    points.push([c.lat, c.lon]);
  }
  if (first && points.length) wallMap.fitBounds(L.latLngBounds(points).pad(0.3), { maxZoom: 17 });
}

async function loadCameras() {
  const list = await getJSON("/api/cameras");
  cameras = new Map(list.map((c) => [c.id, c]));
  cameraList.replaceChildren();
  for (const c of list) {
    const item = el("li", c.name + " — " + c.state, { draggable: "true", class: "state-" + c.state, "data-camera": c.id });
    item.addEventListener("dragstart", (e) => e.dataTransfer.setData("text/plain", c.id));
    item.addEventListener("click", () => place(c.id));
    cameraList.append(item);
  }
  drawMap(list);
  for (const t of tiles) {
    const c = t.camera && cameras.get(t.camera);
    if (!c || !t.view) continue;
    const s = STATE_OF[c.state] || "live";
    if (s !== "live") t.setState(s);
    else if (t.node.dataset.state === "offline" || t.node.dataset.state === "stopped_detector") t.setState("live");
  }
}

function alerts() {
  const strip = document.getElementById("alerts-strip");
  const es = new EventSource("/api/alerts/stream");
  es.addEventListener("alert", (e) => {
    const a = JSON.parse(e.data);
    if (a.state !== "new") return;
    const tile = tiles.find((t) => t.camera === a.camera);
    if (tile) {
      tile.node.classList.add("alerting");
      setTimeout(() => tile.node.classList.remove("alerting"), 30000);
      return;
    }
    const offer = el("span", null, { class: "offer", "data-alert": a.id });
    offer.append(el("span", a.type + " on " + a.camera + " "));
    const show = el("button", "Show live", { type: "button" });
    show.addEventListener("click", () => {
      const target = tiles.find((t) => !t.camera) || tiles[tiles.length - 1];
      target.show(a.camera).then(saveLocal);
      offer.remove();
      strip.hidden = strip.children.length === 0;
    });
    offer.append(show);
    strip.append(offer);
    strip.hidden = false;
  });
}

async function watching() {
  if (!me || me.user.role !== "supervisor") return;
  document.getElementById("watching-section").hidden = false;
  const list = document.getElementById("watching");
  const views = await getJSON("/api/live/watching");
  list.replaceChildren(
    ...views.map((v) =>
      el("li", v.user + " → " + v.camera + (v.kind === "raw" ? " (PROTECTION REMOVED: " + v.reason + ", " + v.reference + ")" : ""), {
        class: v.kind === "raw" ? "raw" : "",
      }),
    ),
  );
}

// --- saved walls -------------------------------------------------------------------------------

async function loadGroups() {
  const groups = await getJSON("/api/live/groups");
  const current = groupsSelect.value;
  groupsSelect.replaceChildren(el("option", "—", { value: "" }));
  for (const g of groups) {
    const o = el("option", g.title, { value: String(g.id) });
    o.dataset.layout = String(g.layout);
    o.dataset.cameras = JSON.stringify(g.cameras);
    groupsSelect.append(o);
  }
  groupsSelect.value = current;
  document.getElementById("delete-group").disabled = !groupsSelect.value;
}

groupsSelect.addEventListener("change", () => {
  const o = groupsSelect.selectedOptions[0];
  document.getElementById("delete-group").disabled = !groupsSelect.value;
  if (o && o.value) apply(Number(o.dataset.layout), JSON.parse(o.dataset.cameras));
});

document.getElementById("save-group").addEventListener("click", async () => {
  const title = window.prompt("Name of this wall");
  if (!title) return;
  try {
    await send("PUT", "/api/live/groups", { title, layout: tiles.length, cameras: tiles.map((t) => t.camera) });
    await loadGroups();
    say("Wall saved.");
  } catch (err) {
    say(err.message);
  }
});

document.getElementById("delete-group").addEventListener("click", async () => {
  if (!groupsSelect.value) return;
  await send("DELETE", "/api/live/groups/" + groupsSelect.value);
  groupsSelect.value = "";
  await loadGroups();
});

// --- removing protection -----------------------------------------------------------------------

const dialog = document.getElementById("unmask-dialog");
let unmasking = null;

function openUnmask(tile) {
  unmasking = tile;
  document.getElementById("unmask-camera").textContent = tile.camera;
  dialog.showModal();
}

dialog.addEventListener("close", async () => {
  const tile = unmasking;
  unmasking = null;
  if (dialog.returnValue !== "go" || !tile || !tile.camera) return;
  const raw = {
    reason: document.getElementById("unmask-reason").value,
    reference: document.getElementById("unmask-reference").value,
    minutes: Number(document.getElementById("unmask-minutes").value),
  };
  const camera = tile.camera;
  if (!webrtc) {
    say(camera + ": removing protection needs WebRTC, which this browser or network cannot set up.");
    return;
  }
  if (!(await tile.show(camera, raw))) {
    // Refused: back to the anonymised picture, the refusal's reason kept on screen.
    const why = document.getElementById("message").textContent;
    await tile.show(camera);
    say(why);
  }
});

// --- the session's purpose, and start --------------------------------------------------------

function showPurpose() {
  const p = purpose();
  document.getElementById("purpose-form").hidden = Boolean(p);
  document.getElementById("session").hidden = !p;
  document.getElementById("purpose-shown").textContent = p;
}

document.getElementById("purpose-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const p = document.getElementById("purpose").value.trim();
  if (!p) return;
  sessionStorage.setItem(PURPOSE_KEY, p);
  showPurpose();
  restore();
});

document.getElementById("change-purpose").addEventListener("click", async () => {
  // A new purpose is a new session: every view ends and starts again under it.
  for (const t of tiles) await t.stop();
  sessionStorage.removeItem(PURPOSE_KEY);
  showPurpose();
});

function restore() {
  const saved = JSON.parse(sessionStorage.getItem(LAYOUT_KEY) || "null");
  if (saved) apply(saved.layout, saved.cameras);
}

window.addEventListener("pagehide", () => {
  // Best effort: the sweeper ends a view whose page went quiet anyway.
  for (const t of tiles) if (t.view) navigator.sendBeacon && t.stop();
});

async function start() {
  me = await whoami();
  const status = await getJSON("/api/live");
  const asked = new URLSearchParams(location.search).get("transport");
  webrtc = Boolean(status.webrtc && window.RTCPeerConnection) && asked !== "mjpeg";
  if (!status.available || status.reason) say(status.reason || "live view unavailable");
  layout(4);
  await initMap().catch(() => {});
  await loadCameras();
  await loadGroups();
  showPurpose();
  if (purpose()) restore();
  alerts();
  await watching();
  setInterval(() => loadCameras().catch(() => {}), 5000);
  setInterval(() => watching().catch(() => {}), 5000);
  setInterval(() => { for (const t of tiles) t.checkFrozen(); }, 500);
  setInterval(() => { for (const t of tiles) t.measureDelay().catch(() => {}); }, DELAY_MS);
}

start().catch((err) => say(err.message));

export { tiles };
