// Observatory: counts by area on a Leaflet map with a month slider, series with trend and
// seasonality, profiles, unusual periods, and the bias audit beside the map. Charts are SVG drawn
// here (no chart library, nothing from a CDN). No inline script or style (CSP): element styles
// are set through the DOM or classes in observatory.css. Every request is recorded server-side.
// This module fills the filters and wires the page; each panel is its own module under
// observatory/, sharing observatory/state.js.
import { api, el, getJSON, say, whoami } from "./common.js";
import { loadAudit, loadHotspots, resetRankAnyway } from "./observatory/audit.js";
import { drawCross, fillCross, limitMeasures, loadCross } from "./observatory/cross.js";
import { exportReport, loadRows } from "./observatory/export.js";
import { loadMap } from "./observatory/map.js";
import { drawSeries, loadProfiles, loadSeries } from "./observatory/series.js";
import { CHANNEL_LABELS, datasetInfo, level, num, shown, state, when } from "./observatory/state.js";

function monthsBetween(first, last, byYear) {
  const out = [];
  if (!first || !last) return out;
  if (byYear) {
    for (let y = Number(first.slice(0, 4)); y <= Number(last.slice(0, 4)); y++) out.push(String(y));
    return out;
  }
  let [y, m] = first.slice(0, 7).split("-").map(Number);
  const [ly, lm] = last.slice(0, 7).split("-").map(Number);
  while (y < ly || (y === ly && m <= lm)) {
    out.push(y + "-" + String(m).padStart(2, "0"));
    m += 1;
    if (m > 12) {
      m = 1;
      y += 1;
    }
  }
  return out;
}

function showMonth() {
  const label = document.getElementById("month-label");
  const slider = document.getElementById("month");
  const whole = document.getElementById("whole-span").checked;
  slider.disabled = whole || !state.months.length;
  if (whole) {
    label.textContent = state.months.length ? state.months[0] + " → " + state.months[state.months.length - 1] : "—";
  } else {
    label.textContent = state.months[Number(slider.value)] || "—";
  }
}

// --- datasets and provenance -----------------------------------------------------------------

function fillProvenance() {
  const body = document.querySelector("#provenance tbody");
  body.replaceChildren();
  for (const d of state.info.datasets) {
    const row = el("tr", null, { "data-dataset": d.id });
    const name = el("td");
    name.appendChild(el("strong", d.title));
    name.appendChild(el("div", d.id + " · " + d.kind, { class: "muted small" }));
    row.appendChild(name);
    const origin = el("td");
    origin.appendChild(el("div", d.origin));
    origin.appendChild(el("div", "Licence: " + d.licence, { class: "muted small" }));
    row.appendChild(origin);
    const file = el("td");
    file.appendChild(el("div", d.source_file));
    file.appendChild(el("code", d.sha256));
    row.appendChild(file);
    row.appendChild(el("td", num(d.rows_read) + " / " + num(d.rows_loaded) + " / " + num(d.rows_rejected), { class: "num" }));
    row.appendChild(el("td", when(d.first) + " → " + when(d.last)));
    row.appendChild(el("td", when(d.ingested_at, true) + " by " + d.ingested_by));
    body.appendChild(row);
  }
}

function fillDatasets() {
  const select = document.getElementById("dataset");
  select.replaceChildren();
  for (const d of state.info.datasets.filter((x) => x.kind === "incidents")) {
    select.appendChild(el("option", d.title + " (" + d.id + ")", { value: d.id }));
  }
}

function fillLevels(d) {
  const select = document.getElementById("level");
  const before = select.value;
  select.replaceChildren();
  if (d.located) {
    for (const r of state.info.resolutions) {
      select.appendChild(el("option", "H3 hexagons, resolution " + r, { value: "h3:" + r }));
    }
  }
  for (const layer of state.info.layers) {
    // A layer fits a dataset located by points (every cell is placed in it) or one whose rows
    // carry that layer's codes.
    if (d.located || d.area_layers.includes(layer.id)) {
      select.appendChild(el("option", "Areas: " + layer.label, { value: "layer:" + layer.id }));
    }
  }
  // Another dataset starts on its own areas: the layer its rows name, else hexagons.
  const values = Array.from(select.options).map((o) => o.value);
  if (d.area_layers.length && values.includes("layer:" + d.area_layers[0])) select.value = "layer:" + d.area_layers[0];
  else if (values.includes("h3:8")) select.value = "h3:8";
  else if (values.includes(before)) select.value = before;
}

async function fillCategories() {
  const select = document.getElementById("category");
  select.replaceChildren(el("option", "all categories", { value: "" }));
  const data = await getJSON("/api/observatory/categories", { dataset: state.dataset });
  for (const c of data.categories) {
    select.appendChild(el("option", c.name + " (" + shown(c.count, data.k) + ")", { value: c.name }));
  }
}

function fillGrains(d) {
  // A series cannot be finer than the dataset's clock (the server refuses it too).
  const select = document.getElementById("grain");
  const before = select.value;
  const offered = { minute: ["week", "month"], hour: ["week", "month"], day: ["week", "month"], month: ["month", "year"], year: ["year"] }[d.time_precision] || ["month"];
  select.replaceChildren();
  for (const g of offered) select.appendChild(el("option", g, { value: g }));
  select.value = offered.includes(before) ? before : offered[0];
}

function fillExposures() {
  const select = document.getElementById("exposure");
  select.replaceChildren(el("option", "counts", { value: "" }));
  for (const d of state.info.datasets.filter((x) => x.kind === "measures")) {
    for (const v of d.variables) {
      select.appendChild(el("option", "rate per 1,000 " + v + " (" + d.id + ")", { value: d.id + ":" + v }));
    }
  }
  showExposure();
}

function showExposure() {
  // Rates need areas with a denominator: offered on boundary layers only.
  const select = document.getElementById("exposure");
  const usable = level().startsWith("layer:") && select.options.length > 1;
  document.getElementById("exposure-label").hidden = !usable;
  if (!usable) select.value = "";
}

function fillChannels(d) {
  const select = document.getElementById("channel");
  select.replaceChildren(el("option", "all channels", { value: "" }));
  for (const c of d.channels) select.appendChild(el("option", CHANNEL_LABELS[c] || c, { value: c }));
}

async function chooseDataset() {
  state.dataset = document.getElementById("dataset").value;
  const d = datasetInfo();
  if (!d) return;
  fillLevels(d);
  fillChannels(d);
  fillExposures();
  state.months = monthsBetween(d.first, d.last, d.time_precision === "year");
  document.querySelector('label[for="month"]').textContent = d.time_precision === "year" ? "Year" : "Month";
  fillGrains(d);
  fillCross(d);
  resetRankAnyway();
  const slider = document.getElementById("month");
  slider.max = String(Math.max(state.months.length - 1, 0));
  slider.value = String(Math.max(state.months.length - 1, 0));
  state.fittedFor = null;
  showMonth();
  try {
    await fillCategories();
  } catch (err) {
    say(err.message);
  }
  await reloadAll();
}

// --- wiring ----------------------------------------------------------------------------------

async function reloadAll() {
  say("");
  await Promise.all([loadMap(), loadSeries(), loadProfiles(), loadAudit(), loadCross()]);
}

let sliderTimer = null;

document.addEventListener("DOMContentLoaded", async () => {
  if (typeof L === "undefined") {
    say("Leaflet is missing on this server: reinstall Lanterne (the package ships it under static/vendor/leaflet) and reload. Charts and the audit still work.");
  }
  try {
    state.user = (await whoami()).user;
  } catch (_) {
    return;
  }
  try {
    state.info = await getJSON("/api/observatory/datasets");
  } catch (err) {
    say(err.message);
    return;
  }
  document.getElementById("caveat").textContent = state.info.caveat;
  document.getElementById("analyst-badge").hidden = !state.info.analyst;
  document.getElementById("rows-section").hidden = !state.info.analyst;
  state.exportAvailable = Boolean(state.info.export);
  document.getElementById("export-section").hidden = !state.exportAvailable;
  fillProvenance();
  fillDatasets();
  if (typeof L !== "undefined") {
    state.map = L.map("obs-map", { zoomControl: true, attributionControl: false });
    state.map.setView([46.6, 2.4], 5);
    const settings = await (await api("/api/map-settings")).json();
    if (settings.tile_url) L.tileLayer(settings.tile_url, { maxZoom: 19 }).addTo(state.map);
  }
  if (!document.getElementById("dataset").options.length) {
    say("No incident dataset ingested yet: run lanterne observatory ingest (see docs/observatory.md).");
    return;
  }

  document.getElementById("dataset").addEventListener("change", chooseDataset);
  for (const id of ["category", "channel"]) {
    document.getElementById(id).addEventListener("change", () => {
      resetRankAnyway();
      return Promise.all([loadMap(), loadSeries(), loadProfiles(), loadCross()]);
    });
  }
  document.getElementById("cross-measures").addEventListener("change", () => {
    limitMeasures();
    return loadCross();
  });
  document.getElementById("cross-grain").addEventListener("change", loadCross);
  document.getElementById("exposure").addEventListener("change", loadMap);
  document.getElementById("level").addEventListener("change", () => {
    state.fittedFor = null;
    showExposure();
    return Promise.all([loadMap(), loadAudit()]);
  });
  document.getElementById("grain").addEventListener("change", loadSeries);
  const slider = document.getElementById("month");
  slider.addEventListener("input", () => {
    showMonth();
    // Reload once the hand stops: dragging across five years should not send sixty requests.
    window.clearTimeout(sliderTimer);
    sliderTimer = window.setTimeout(() => {
      loadMap();
      drawSeries();
    }, 150);
  });
  document.getElementById("whole-span").addEventListener("change", () => {
    showMonth();
    loadMap();
    drawSeries();
  });
  document.getElementById("rank").addEventListener("click", loadHotspots);
  document.getElementById("rows-form").addEventListener("submit", loadRows);
  document.getElementById("export-form").addEventListener("submit", exportReport);
  window.addEventListener("resize", () => {
    drawSeries();
    if (state.cross) drawCross();
  });
  await chooseDataset();
});
