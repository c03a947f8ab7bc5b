// Camera map: Leaflet served by the app (never a CDN), cameras coloured by state, their latest
// alerts in a popup. Supervisors can stop or resume inference from here. No inline script or
// style (CSP): element styles are set through the DOM, which the policy allows.
import { api, el, post, say, whoami } from "./common.js";
import { baseLayer } from "./basemap.js";

const REFRESH_MS = 15000;
const COLOURS = {
  running: "#7ee081",
  lagging: "#f4a261",
  suspended: "#ffd166",
  stopped: "#ff6b6b",
  offline: "#9aa5b1",
};
const LABELS = {
  running: "running",
  lagging: "behind real time",
  suspended: "detector suspended",
  stopped: "stopped by a supervisor",
  offline: "offline",
};

// How far behind real time and at what rate, from the runner's health row: "4.2 s behind, 2.5 of
// 5 fps, 120 frames dropped". Empty when the camera keeps up (or nothing fresh is known).
function keepingUp(cam) {
  const h = cam.health;
  if (!h) return cam.health_stale ? "no recent health report from the runner" : "";
  const parts = [];
  if (h.lag_seconds !== null && (cam.state === "lagging" || h.lag_seconds > 2)) {
    parts.push(h.lag_seconds.toFixed(1) + " s behind");
  }
  if (h.shed) parts.push("analysing " + h.analysis_fps + " of " + h.configured_fps + " fps");
  if (h.frames_dropped) parts.push(h.frames_dropped + " frames dropped");
  if (h.last_error && cam.state === "offline") parts.push(h.last_error);
  return parts.join(", ");
}

let user = null;
let map = null;
let markers = null;
let fitted = false;

function when(iso) {
  return new Date(iso).toLocaleString();
}

async function stopCamera(camera) {
  const reason = window.prompt("Stop all detection on camera " + camera + ". Reason (recorded):");
  if (!reason) return;
  try {
    await post("/api/stops", { scope: "camera", camera: camera, reason: reason });
    say("Camera " + camera + " stopped.");
  } catch (err) {
    say(err.message);
  }
  await refresh();
}

function popup(cam) {
  const box = el("div", null, { class: "cam-popup" });
  box.appendChild(el("strong", cam.name));
  box.appendChild(el("div", LABELS[cam.state] || cam.state));
  const load = keepingUp(cam);
  if (load) box.appendChild(el("div", load, { class: "cam-load" }));
  if (cam.stopped_types.length) box.appendChild(el("div", "stopped: " + cam.stopped_types.join(", ")));
  if (cam.suspended_types.length) box.appendChild(el("div", "suspended: " + cam.suspended_types.join(", ")));
  if (cam.recent_alerts.length) {
    const list = el("ul");
    for (const a of cam.recent_alerts) {
      const item = el("li");
      item.appendChild(el("a", a.type + " — " + when(a.start), { href: "/console/alerts/" + encodeURIComponent(a.id) }));
      item.appendChild(document.createTextNode(" (" + a.state + ")"));
      list.appendChild(item);
    }
    box.appendChild(list);
  } else {
    box.appendChild(el("div", "no recent alert"));
  }
  return box;
}

function drawCameras(cameras) {
  markers.clearLayers();
  const body = document.querySelector("#cameras tbody");
  body.replaceChildren();
  const points = [];
  for (const cam of cameras) {
    const colour = COLOURS[cam.state] || COLOURS.offline;
    const marker = L.circleMarker([cam.lat, cam.lon], {
      radius: 11,
      color: "#111",
      weight: 2,
      fillColor: colour,
      fillOpacity: 0.95,
      className: "cam-marker state-" + cam.state,
    });
    marker.bindPopup(popup(cam));
    marker.bindTooltip(cam.name);
    marker.addTo(markers);
    points.push([cam.lat, cam.lon]);

    const row = el("tr", null, { "data-camera": cam.id, "data-state": cam.state });
    row.appendChild(el("td", cam.name));
    const state = el("td", LABELS[cam.state] || cam.state);
    state.style.color = colour;
    const load = keepingUp(cam);
    if (load) state.appendChild(el("div", load, { class: "cam-load" }));
    row.appendChild(state);
    const alerts = el("td");
    for (const a of cam.recent_alerts) {
      alerts.appendChild(el("a", a.type, { href: "/console/alerts/" + encodeURIComponent(a.id) }));
      alerts.appendChild(document.createTextNode(" "));
    }
    row.appendChild(alerts);
    const action = el("td");
    if (user && user.role === "supervisor" && cam.state !== "stopped") {
      const button = el("button", "Stop…", { type: "button", class: "secondary" });
      button.addEventListener("click", () => stopCamera(cam.id));
      action.appendChild(button);
    }
    row.appendChild(action);
    body.appendChild(row);
  }
  if (!fitted && points.length) {
    map.fitBounds(L.latLngBounds(points).pad(0.3), { maxZoom: 17 });
    fitted = true;
  }
}

async function drawStops() {
  if (!user || user.role !== "supervisor") return;
  document.getElementById("stops-section").hidden = false;
  const list = document.getElementById("stops");
  const stops = await (await api("/api/stops")).json();
  list.replaceChildren();
  for (const s of stops.filter((x) => x.active)) {
    const what = s.scope === "site" ? "whole site" : s.scope === "camera" ? "camera " + s.camera : s.type + " on " + s.camera;
    const item = el("li", what + " since " + when(s.started_at) + ": " + s.reason + " ");
    const lift = el("button", "Resume", { type: "button", class: "secondary" });
    lift.addEventListener("click", async () => {
      try {
        await post("/api/stops/" + s.id + "/lift");
        say("Stop lifted: detection resumes within a second.");
      } catch (err) {
        say(err.message);
      }
      await refresh();
    });
    item.appendChild(lift);
    list.appendChild(item);
  }
  if (!list.children.length) list.appendChild(el("li", "none", { class: "muted" }));
}

async function refresh() {
  try {
    const response = await api("/api/cameras");
    if (!response.ok) {
      say("Cameras unavailable (" + response.status + ").");
      return;
    }
    drawCameras(await response.json());
    await drawStops();
  } catch (err) {
    if (err.message !== "login required") say("Server unreachable; retrying.");
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  const holder = document.getElementById("map");
  holder.style.height = "65vh";
  holder.style.border = "1px solid #3a4756";
  holder.style.background = "#0f1419";
  if (typeof L === "undefined") {
    say("Leaflet is missing on this server: reinstall Lanterne (the package ships it under static/vendor/leaflet) and reload. The camera list below still works.");
  }
  try {
    user = (await whoami()).user;
  } catch (_) {
    return;
  }
  document.getElementById("stop-site").addEventListener("click", async () => {
    const reason = window.prompt("Stop ALL detection on every camera. Reason (recorded):");
    if (!reason) return;
    try {
      await post("/api/stops", { scope: "site", reason: reason });
      say("Site stopped.");
    } catch (err) {
      say(err.message);
    }
    await refresh();
  });
  if (typeof L !== "undefined") {
    map = L.map(holder, { zoomControl: true, attributionControl: false });
    map.setView([46.6, 2.4], 6);
    markers = L.layerGroup().addTo(map);
    const settings = await (await api("/api/map-settings")).json();
    await baseLayer(map, settings);
  } else {
    // Without Leaflet the table still lists every camera and its state.
    fitted = true;
    markers = { clearLayers() {}, addLayer() {} };
    window.L = {
      circleMarker: () => ({ bindPopup() {}, bindTooltip() {}, addTo() {} }),
    };
  }
  await refresh();
  window.setInterval(refresh, REFRESH_MS);
});
