// Observatory: counts by area on a Leaflet map with a month slider, series with trend and
// seasonality, profiles, unusual periods, and the bias audit beside the map. Charts are SVG drawn
// here (no chart library, nothing from a CDN). No inline script or style (CSP): element styles
// are set through the DOM or classes in observatory.css. Every request is recorded server-side.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
// Five steps of viridis: ordered light-to-dark for colour-blind readers and legible on the dark
// console background. Suppressed areas are hatched (#hatch in the page), zeros left unfilled.
const PALETTE = ["#3b528b", "#21918c", "#5ec962", "#b5de2b", "#fde725"];
const SUPPRESSED_FILL = "#5a6570";
const DOW = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const CHANNEL_LABELS = {
  citizen_report: "reported by residents",
  police_initiated: "police-initiated",
  sensor: "sensor",
  operator: "operator",
};

const state = {
  user: null,
  info: null, // /api/observatory/datasets
  dataset: null,
  months: [], // "YYYY-MM" of the dataset's span
  map: null,
  areas: null, // the Leaflet layer of the current map
  fittedFor: null,
  series: null,
  anomalies: [],
  mapSeq: 0,
  exportAvailable: false,
  discovered: new Set(), // categories the audit labels police activity
  cross: null, // /api/observatory/cross, with the span it was asked for
  crossSeq: 0,
};

// --- small helpers ---------------------------------------------------------------------------

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function num(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-GB");
}

function pct(x) {
  return x === null || x === undefined ? "—" : (100 * x).toFixed(1) + " %";
}

function shown(count, k) {
  return count === null || count === undefined ? "< " + k : num(count);
}

// "2024-03-04T00:00:00" → "2024-03-04" (dates) or "2024-03-04 14:05" (24-hour times).
function when(iso, withTime) {
  if (!iso) return "—";
  const [d, t] = String(iso).split("T");
  return withTime && t ? d + " " + t.slice(0, 5) : d;
}

async function getJSON(path, params) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === null || v === undefined || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) query.append(k, item);
  }
  const qs = query.toString();
  return answer(await api(path + (qs ? "?" + qs : "")));
}

// --- filters ---------------------------------------------------------------------------------

function datasetInfo() {
  return state.info.datasets.find((d) => d.id === state.dataset);
}

function filters() {
  const out = { dataset: state.dataset };
  const category = document.getElementById("category").value;
  const channel = document.getElementById("channel").value;
  if (category) out.category = category;
  if (channel) out.channel = channel;
  return out;
}

function periodKey() {
  if (document.getElementById("whole-span").checked || !state.months.length) return null;
  return state.months[Number(document.getElementById("month").value)];
}

function monthBounds() {
  // The slider steps months, or years for data recorded by year ("2021").
  const start = periodKey();
  if (!start) return {};
  if (start.length === 4) return { from: start + "-01-01T00:00:00", to: Number(start) + 1 + "-01-01T00:00:00" };
  const [y, m] = start.split("-").map(Number);
  const next = m === 12 ? y + 1 + "-01" : y + "-" + String(m + 1).padStart(2, "0");
  return { from: start + "-01T00:00:00", to: next + "-01T00:00:00" };
}

function level() {
  return document.getElementById("level").value;
}

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

// --- map -------------------------------------------------------------------------------------

function quantileBreaks(values) {
  // Lower bounds of the colour classes: quantiles of the shown counts, so that a few very large
  // areas do not leave all others in the first colour.
  const sorted = values.filter((v) => v > 0).sort((a, b) => a - b);
  if (!sorted.length) return [];
  const out = [];
  for (let i = 0; i < PALETTE.length; i++) {
    const v = sorted[Math.min(sorted.length - 1, Math.floor((i * sorted.length) / PALETTE.length))];
    if (!out.length || v > out[out.length - 1]) out.push(v);
  }
  return out;
}

function colourOf(value, breaks) {
  let idx = 0;
  for (let i = 0; i < breaks.length; i++) if (value >= breaks[i]) idx = i;
  // Spread the classes over the whole palette when there are fewer than five.
  const step = breaks.length > 1 ? (PALETTE.length - 1) / (breaks.length - 1) : 0;
  return PALETTE[Math.round(idx * step)];
}

function drawLegend(breaks, data) {
  const box = document.getElementById("legend");
  box.replaceChildren();
  const unit = data.rate_per ? "rate" : "count";
  if (data.rate_per) box.appendChild(el("span", "per " + num(data.rate_per) + ":", { class: "muted" }));
  for (let i = 0; i < breaks.length; i++) {
    const item = el("span");
    const sw = el("span", null, { class: "swatch" });
    sw.style.background = colourOf(breaks[i], breaks);
    item.appendChild(sw);
    let text;
    if (data.rate_per) {
      text = (i + 1 < breaks.length ? breaks[i].toFixed(2) + "–" + breaks[i + 1].toFixed(2) : "≥ " + breaks[i].toFixed(2));
    } else {
      const hi = i + 1 < breaks.length ? breaks[i + 1] - 1 : null;
      text = hi === null || hi <= breaks[i] ? "≥ " + num(breaks[i]) : num(breaks[i]) + "–" + num(hi);
    }
    item.appendChild(document.createTextNode(text));
    box.appendChild(item);
  }
  const zero = el("span");
  zero.appendChild(el("span", null, { class: "swatch" }));
  zero.appendChild(document.createTextNode("0"));
  box.appendChild(zero);
  if (!data.analyst) {
    const hidden = el("span");
    const sw = svg("svg", { class: "swatch", width: 18, height: 18, viewBox: "0 0 18 18" });
    sw.appendChild(svg("rect", { width: 18, height: 18, fill: "url(#hatch)" }));
    hidden.appendChild(sw);
    hidden.appendChild(document.createTextNode("< " + data.k + " (suppressed, with enough neighbours that totals cannot reveal it)"));
    box.appendChild(hidden);
  }
  box.setAttribute("data-unit", unit);
}

function tooltipText(p, k) {
  if (p.suppressed) return p.label + ": fewer than " + k + " (suppressed)";
  let text = p.label + ": " + num(p.count);
  if (p.interval) text += " (95 % interval " + num(Math.floor(p.interval[0])) + "–" + num(Math.ceil(p.interval[1])) + ")";
  if (p.rate !== null && p.rate !== undefined) {
    text += " (rate " + Number(p.rate).toFixed(2);
    if (p.rate_interval) text += ", 95 % interval " + p.rate_interval[0].toFixed(2) + "–" + p.rate_interval[1].toFixed(2);
    text += ")";
  }
  return text;
}

async function loadMap() {
  const holder = document.getElementById("obs-map");
  if (typeof L === "undefined" || !state.dataset) return;
  const seq = ++state.mapSeq;
  const params = Object.assign(filters(), monthBounds(), { level: level() });
  const exposure = document.getElementById("exposure").value;
  if (exposure) params.exposure = exposure;
  let data;
  try {
    data = await getJSON("/api/observatory/map", params);
  } catch (err) {
    say("Map: " + err.message);
    return;
  }
  if (seq !== state.mapSeq) return; // a newer request (the slider moved on) wins
  if (state.areas) state.areas.remove();
  // With a denominator the colours follow the rate, else the count.
  const measure = (p) => (data.rate_per ? p.rate : p.count);
  const values = data.features.map((f) => measure(f.properties)).filter((v) => v !== null && v !== undefined);
  const breaks = quantileBreaks(values);
  state.areas = L.geoJSON(data, {
    style: (f) => {
      const p = f.properties;
      if (p.suppressed) {
        return { className: "area suppressed", color: "#c9d1d9", weight: 1, fillColor: SUPPRESSED_FILL, fillOpacity: 0.8 };
      }
      const v = measure(p);
      if (!v) return { className: "area zero", color: "#66727f", weight: 1, fillOpacity: 0 };
      return { className: "area", color: "#0f1419", weight: 1, fillColor: colourOf(v, breaks), fillOpacity: 0.8 };
    },
    onEachFeature: (f, layer) => {
      layer.bindTooltip(tooltipText(f.properties, data.k), { className: "obs-tip", sticky: true });
    },
  }).addTo(state.map);
  drawLegend(breaks, data);
  const key = state.dataset + "|" + level();
  if (state.fittedFor !== key && state.areas.getBounds().isValid()) {
    state.map.fitBounds(state.areas.getBounds(), { padding: [10, 10] });
    state.fittedFor = key;
  }
  const parts = [
    "Total " + (data.total === null ? "withheld" : num(data.total)) + " incident(s) in " + data.features.length + " area(s)",
  ];
  if (!data.analyst) parts.push(data.suppressed_cells + " area(s) suppressed below k = " + data.k);
  if (data.unlocated) parts.push(num(data.unlocated) + " without a location at this level (not drawn)");
  document.getElementById("map-summary").textContent = parts.join(" · ") + ".";
  holder.setAttribute("data-loads", String(Number(holder.getAttribute("data-loads")) + 1));
  holder.setAttribute("data-period", periodKey() || "all");
  holder.setAttribute("data-features", String(data.features.length));
}

// --- charts ----------------------------------------------------------------------------------

function chartFrame(node, height) {
  node.replaceChildren();
  const width = Math.max(node.clientWidth || 600, 240);
  node.setAttribute("viewBox", "0 0 " + width + " " + height);
  node.setAttribute("preserveAspectRatio", "none");
  return { width: width, height: height, left: 48, right: 10, top: 10, bottom: 26 };
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function yAxis(node, f, lo, hi, fmt) {
  const plotH = f.height - f.top - f.bottom;
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    const y = f.top + plotH - (plotH * i) / 4;
    node.appendChild(svg("line", { class: "axis", x1: f.left, x2: f.width - f.right, y1: y, y2: y, opacity: i ? 0.35 : 1 }));
    node.appendChild(svg("text", { class: "tick", x: f.left - 4, y: y + 4, "text-anchor": "end" }, fmt(v)));
  }
}

function drawSeries() {
  const node = document.getElementById("series-chart");
  const data = state.series;
  if (!data) return;
  const f = chartFrame(node, 260);
  const pts = data.points;
  const note = document.getElementById("series-note");
  if (!pts.length) {
    note.textContent = "No incident under these filters.";
    return;
  }
  const trend = data.decomposition ? data.decomposition.trend : [];
  const intervals = data.intervals || [];
  const top = niceMax(
    Math.max(...pts.map((p) => p.count || 0), ...trend.filter((t) => t !== null), ...intervals.map((b) => (b ? b[1] : 0)))
  );
  yAxis(node, f, 0, top, (v) => num(Math.round(v)));
  const plotW = f.width - f.left - f.right;
  const plotH = f.height - f.top - f.bottom;
  const x = (i) => f.left + (pts.length > 1 ? (plotW * i) / (pts.length - 1) : plotW / 2);
  const y = (v) => f.top + plotH - (plotH * v) / top;

  // The month the map shows, as a band.
  const key = periodKey();
  if (key) {
    const idx = pts.map((p, i) => [p.start.slice(0, key.length), i]).filter(([m]) => m === key).map(([, i]) => i);
    if (idx.length) {
      const x0 = x(Math.max(idx[0] - 0.5, 0));
      const x1 = x(Math.min(idx[idx.length - 1] + 0.5, pts.length - 1));
      node.appendChild(svg("rect", { class: "selected", x: x0, y: f.top, width: Math.max(x1 - x0, 3), height: plotH }));
    }
  }
  // Year ticks on the x axis. A first week that starts on 31 December would print its year over
  // the next one's: a label too close to the next is left out.
  const years = [];
  pts.forEach((p, i) => {
    const year = p.start.slice(0, 4);
    if (!years.length || years[years.length - 1].year !== year) years.push({ year: year, x: x(i) });
  });
  years.forEach((t, j) => {
    if (j + 1 < years.length && years[j + 1].x - t.x < 36) return;
    node.appendChild(svg("line", { class: "axis", x1: t.x, x2: t.x, y1: f.top + plotH, y2: f.top + plotH + 5 }));
    node.appendChild(svg("text", { class: "tick", x: t.x + 2, y: f.height - 8 }, t.year));
  });
  // Each shown count's 95 % interval as a band, broken where a count is hidden.
  let segment = [];
  const band = () => {
    if (segment.length > 1) {
      const upper = segment.map((i) => x(i).toFixed(1) + " " + y(intervals[i][1]).toFixed(1));
      const lower = segment.slice().reverse().map((i) => x(i).toFixed(1) + " " + y(intervals[i][0]).toFixed(1));
      node.appendChild(svg("path", { class: "interval", d: "M" + upper.join(" L") + " L" + lower.join(" L") + " Z" }));
    }
    segment = [];
  };
  pts.forEach((p, i) => (intervals[i] ? segment.push(i) : band()));
  band();
  // Observed counts as a line broken at suppressed periods, which are marked at the base.
  let d = "";
  let pen = false;
  pts.forEach((p, i) => {
    if (p.count === null) {
      pen = false;
      node.appendChild(svg("rect", { class: "bar hidden-count", x: x(i) - 2, y: f.top + plotH - 8, width: 4, height: 8 }));
      return;
    }
    d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(p.count).toFixed(1) + " ";
    pen = true;
  });
  node.appendChild(svg("path", { class: "observed", d: d }));
  if (trend.length) {
    let td = "";
    let on = false;
    trend.forEach((t, i) => {
      if (t === null) {
        on = false;
        return;
      }
      td += (on ? "L" : "M") + x(i).toFixed(1) + " " + y(t).toFixed(1) + " ";
      on = true;
    });
    node.appendChild(svg("path", { class: "trend", d: td }));
  }
  const starts = new Map(pts.map((p, i) => [p.start, i]));
  for (const a of state.anomalies) {
    const i = starts.get(a.start);
    if (i === undefined) continue;
    const dot = svg("circle", { class: "dot-anomaly", cx: x(i), cy: y(a.observed), r: 4 });
    dot.appendChild(svg("title", {}, a.text));
    node.appendChild(dot);
  }
  const notes = [];
  notes.push("Blue: counts per " + data.grain + ", with their 95 % interval shaded; yellow: trend (moving average over a year); red dots: unusual periods.");
  if (pts.some((p) => p.suppressed)) notes.push("Hatched marks: periods with fewer than " + data.k + " (suppressed).");
  if (data.note) notes.push(data.note);
  if (data.decomposition && data.decomposition.notes) notes.push(...data.decomposition.notes);
  note.textContent = notes.join(" ");
  drawYearly();
}

function drawYearly() {
  const node = document.getElementById("yearly-chart");
  const note = document.getElementById("yearly-note");
  const f = chartFrame(node, 220);
  const dec = state.series && state.series.decomposition;
  const profile = dec && dec.yearly_profile ? dec.yearly_profile : [];
  if (!profile.length) {
    note.textContent = "Needs at least two years of data.";
    return;
  }
  note.textContent = "Each bar: how far that " + (profile.length === 12 ? "month" : "week of the year") + " usually sits above or below the year's average.";
  // Deviations in per cent around zero, symmetric scale.
  const dev = profile.map((v) => (v === null ? null : 100 * (v - 1)));
  const span = niceMax(Math.max(5, ...dev.filter((v) => v !== null).map((v) => Math.abs(v))));
  yAxis(node, f, -span, span, (v) => (v > 0 ? "+" : "") + Math.round(v) + " %");
  const plotW = f.width - f.left - f.right;
  const plotH = f.height - f.top - f.bottom;
  const bw = plotW / dev.length;
  const y = (v) => f.top + plotH / 2 - (plotH / 2) * (v / span);
  node.appendChild(svg("line", { class: "zero", x1: f.left, x2: f.width - f.right, y1: y(0), y2: y(0) }));
  dev.forEach((v, i) => {
    if (v === null) return;
    const y0 = y(Math.max(v, 0));
    const h = Math.abs(y(v) - y(0));
    const bar = svg("rect", { class: "bar" + (v < 0 ? " negative" : ""), x: f.left + i * bw + 1, y: y0, width: Math.max(bw - 2, 1), height: Math.max(h, 0.5) });
    const name = profile.length === 12 ? MONTHS[i] : "week " + (i + 1);
    bar.appendChild(svg("title", {}, name + ": " + (v > 0 ? "+" : "") + v.toFixed(1) + " %"));
    node.appendChild(bar);
    if (profile.length === 12 || i % 13 === 0) {
      node.appendChild(svg("text", { class: "tick", x: f.left + i * bw + bw / 2, y: f.height - 8, "text-anchor": "middle" }, profile.length === 12 ? MONTHS[i] : MONTHS[Math.floor(i / 4.35)]));
    }
  });
}

function drawBars(id, bins, labels, k) {
  const node = document.getElementById(id);
  const f = chartFrame(node, 220);
  const top = niceMax(Math.max(...bins.map((b) => b.count || 0)));
  yAxis(node, f, 0, top, (v) => num(Math.round(v)));
  const plotW = f.width - f.left - f.right;
  const plotH = f.height - f.top - f.bottom;
  const bw = plotW / bins.length;
  bins.forEach((b, i) => {
    const hidden = b.count === null;
    const h = hidden ? plotH * 0.05 : (plotH * b.count) / top;
    const bar = svg("rect", { class: "bar" + (hidden ? " hidden-count" : ""), x: f.left + i * bw + 1, y: f.top + plotH - h, width: Math.max(bw - 2, 1), height: Math.max(h, 0.5) });
    bar.appendChild(svg("title", {}, labels[i] + ": " + shown(b.count, k)));
    node.appendChild(bar);
    if (bins.length <= 12 || i % 3 === 0) {
      node.appendChild(svg("text", { class: "tick", x: f.left + i * bw + bw / 2, y: f.height - 8, "text-anchor": "middle" }, labels[i]));
    }
  });
}

async function loadSeries() {
  const grain = document.getElementById("grain").value;
  const params = Object.assign(filters(), { grain: grain });
  try {
    // Anomalies need a usual level to depart from: not offered on a handful of yearly counts.
    const [series, found] = await Promise.all([
      getJSON("/api/observatory/series", params),
      grain === "year"
        ? Promise.resolve({ anomalies: [], withheld: 0, notes: ["Unusual periods need weekly or monthly counts; this dataset records years."] })
        : getJSON("/api/observatory/anomalies", params),
    ]);
    state.series = series;
    state.anomalies = found.anomalies;
    drawSeries();
    drawAnomalies(found);
  } catch (err) {
    say("Series: " + err.message);
  }
}

function drawAnomalies(found) {
  const list = document.getElementById("anomalies");
  list.replaceChildren();
  for (const a of found.anomalies) {
    list.appendChild(el("li", a.text, { "data-start": a.start }));
  }
  if (!found.anomalies.length) list.appendChild(el("li", "No unusual period at this grain.", { class: "muted" }));
  if (found.withheld) {
    list.appendChild(el("li", found.withheld + " more unusual period(s) fall on suppressed counts and are not listed.", { class: "muted" }));
  }
  for (const n of found.notes || []) list.appendChild(el("li", n, { class: "muted small" }));
}

const PRECISION_RANK = { minute: 0, hour: 1, day: 2, month: 3, year: 4 };

async function loadProfile(by, chartId, noteId, labels, needs) {
  const node = document.getElementById(chartId);
  const note = noteId ? document.getElementById(noteId) : null;
  const precision = datasetInfo().time_precision;
  if (PRECISION_RANK[precision] > PRECISION_RANK[needs]) {
    // The server would refuse it too: an hour profile of dates puts everything at midnight.
    node.replaceChildren();
    if (note) note.textContent = "This dataset records " + precision + "s only: no " + (by === "hour" ? "hour of day" : "day of week") + " to show.";
    return;
  }
  try {
    const data = await getJSON("/api/observatory/profile", Object.assign({ by: by }, filters()));
    drawBars(chartId, data.bins, data.bins.map((b) => labels(b.key)), data.k);
    if (note) note.textContent = by === "hour" ? "Local time of the dataset, 24-hour clock." : "";
  } catch (err) {
    say("Profile: " + err.message);
  }
}

function loadProfiles() {
  return Promise.all([
    loadProfile("hour", "hour-chart", "hour-note", (key) => String(key).padStart(2, "0") + ":00", "hour"),
    loadProfile("dow", "dow-chart", "dow-note", (key) => DOW[key] || String(key), "day"),
  ]);
}

// --- beside other sources -------------------------------------------------------------------

const CROSS_MAX = 4;
// Finer than the incidents' clock is refused by the server; days are offered for timed records
// because hourly weather or counts summed by week hide what a day shows.
const CROSS_GRAINS = {
  minute: ["day", "week", "month"],
  hour: ["day", "week", "month"],
  day: ["day", "week", "month"],
  month: ["month", "year"],
  year: ["year"],
};
const CROSS_BAND = 92; // px per series: label, plot and gap

function dayOf(iso) {
  return iso ? String(iso).slice(0, 10) : null;
}

function nextDay(isoDate) {
  const d = new Date(isoDate + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

function compact(v) {
  // Tick labels in 50 px: 1.2 M, 15 k, 3.5.
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + " M";
  if (a >= 1e4) return Math.round(v / 1e3) + " k";
  if (a >= 100 || Number.isInteger(v)) return num(Math.round(v));
  return v.toFixed(1);
}

function checkedMeasures() {
  return Array.from(document.querySelectorAll("#cross-measures input:checked")).map((i) => i.value);
}

function limitMeasures() {
  // Four at most (the server refuses more): the others are disabled once four are ticked.
  const full = checkedMeasures().length >= CROSS_MAX;
  for (const input of document.querySelectorAll("#cross-measures input")) {
    input.disabled = input.hasAttribute("data-no-overlap") || (full && !input.checked);
  }
}

function fillCross(d) {
  const box = document.getElementById("cross-measures");
  const before = new Set(checkedMeasures());
  box.replaceChildren(el("legend", "Measures (up to four)"));
  const sets = state.info.datasets.filter((x) => x.kind === "measures");
  if (!sets.length) {
    box.appendChild(el("p", "No measures dataset ingested yet (weather, footfall, bike or camera counts): ingest one with kind: measures to compare.", { class: "muted small" }));
  }
  for (const m of sets) {
    // A measure that never runs at the same time as the incidents has nothing to show beside them.
    const overlap = Boolean(m.first && d.first) && dayOf(m.first) <= dayOf(d.last) && dayOf(d.first) <= dayOf(m.last);
    const row = el("div", null, { class: "cross-set" + (overlap ? "" : " muted"), "data-dataset": m.id });
    let title = m.title;
    if (!overlap) title += ": no period in common (" + when(m.first) + " → " + when(m.last) + ")";
    row.appendChild(el("span", title, { class: "cross-set-title" }));
    for (const v of m.variables) {
      const value = m.id + ":" + v;
      const label = el("label", null, { class: "inline" });
      const input = el("input", null, { type: "checkbox", value: value });
      if (!overlap) input.setAttribute("data-no-overlap", "");
      else if (before.has(value)) input.checked = true;
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + v));
      row.appendChild(label);
    }
    box.appendChild(row);
  }
  limitMeasures();
  const select = document.getElementById("cross-grain");
  const prev = select.value;
  const offered = CROSS_GRAINS[d.time_precision] || ["month"];
  select.replaceChildren();
  for (const g of offered) select.appendChild(el("option", g, { value: g }));
  select.value = offered.includes(prev) ? prev : offered.includes("week") ? "week" : offered[0];
}

function commonSpan(chosen) {
  // The days the incidents and every chosen measure all cover, so that the axis is not mostly
  // one source alone (sixteen years of accidents beside four of bike counts).
  let first = dayOf(datasetInfo().first);
  let last = dayOf(datasetInfo().last);
  for (const id of new Set(chosen.map((c) => c.split(":")[0]))) {
    const m = state.info.datasets.find((x) => x.id === id);
    if (!m || !m.first) return null;
    if (dayOf(m.first) > first) first = dayOf(m.first);
    if (dayOf(m.last) < last) last = dayOf(m.last);
  }
  return first && last && first <= last ? { first: first, last: last } : null;
}

async function loadCross() {
  const chosen = checkedMeasures();
  const seq = ++state.crossSeq;
  state.cross = null;
  if (!chosen.length) {
    drawCross("Choose one to four measures to draw them beside the incidents.");
    return;
  }
  const span = commonSpan(chosen);
  if (!span) {
    drawCross("These measures and the incidents have no period in common.");
    return;
  }
  const params = Object.assign(filters(), {
    grain: document.getElementById("cross-grain").value,
    measure: chosen,
    from: span.first + "T00:00:00",
    to: nextDay(span.last) + "T00:00:00",
  });
  let data;
  try {
    data = await getJSON("/api/observatory/cross", params);
  } catch (err) {
    if (seq === state.crossSeq) drawCross("Beside other sources: " + err.message);
    return;
  }
  if (seq !== state.crossSeq) return; // a newer choice wins
  state.cross = Object.assign(data, { span: span });
  drawCross();
}

function crossLine(node, values, x, y, cls) {
  // A line broken where a value is unknown (no data, or a suppressed count).
  let d = "";
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || v === undefined) {
      pen = false;
      return;
    }
    d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1) + " ";
    pen = true;
  });
  node.appendChild(svg("path", { class: "cross-line " + cls, d: d }));
}

function drawCross(message) {
  const node = document.getElementById("cross-chart");
  const results = document.getElementById("cross-results");
  const notes = document.getElementById("cross-notes");
  const caveat = document.getElementById("cross-caveat");
  results.replaceChildren();
  notes.replaceChildren();
  caveat.textContent = "";
  node.replaceChildren();
  const data = state.cross;
  node.setAttribute("class", "chart cross rows-" + (data ? data.cross.measures.length + 1 : 0));
  node.setAttribute("data-series", String(data ? data.cross.measures.length + 1 : 0));
  if (!data) {
    if (message) results.appendChild(el("li", message, { class: "muted" }));
    return;
  }
  const c = data.cross;
  const category = document.getElementById("category").value;
  const rows = [
    { name: "incidents" + (category ? ", " + category : "") + " (count per " + c.grain + ", " + state.dataset + ")", values: c.incidents, cls: "s0", counts: true },
  ];
  c.measures.forEach((m, i) => {
    rows.push({ name: m.variable + " (" + (m.aggregation === "mean" ? "mean" : "total") + " per " + c.grain + ", " + m.dataset + ")", values: m.values, cls: "s" + (i + 1), counts: m.aggregation !== "mean" });
  });
  const f = chartFrame(node, 12 + rows.length * CROSS_BAND + 24);
  f.left = 56;
  const n = c.starts.length;
  const plotW = f.width - f.left - f.right;
  const x = (i) => f.left + (n > 1 ? (plotW * i) / (n - 1) : plotW / 2);
  rows.forEach((r, b) => {
    const top = f.top + b * CROSS_BAND + 16;
    const h = CROSS_BAND - 16 - 14;
    const known = r.values.filter((v) => v !== null && v !== undefined);
    // Counts and sums from zero; a mean (temperature) over its own range.
    let lo = known.length ? (r.counts ? Math.min(0, ...known) : Math.min(...known)) : 0;
    let hi = known.length ? Math.max(...known) : 1;
    if (hi <= lo) hi = lo + 1;
    if (r.counts) hi = niceMax(hi);
    const y = (v) => top + h - (h * (v - lo)) / (hi - lo);
    node.appendChild(svg("text", { class: "cross-label " + r.cls, x: f.left, y: top - 4 }, r.name));
    for (const v of [lo, hi]) {
      node.appendChild(svg("line", { class: "axis", x1: f.left, x2: f.width - f.right, y1: y(v), y2: y(v), opacity: v === lo ? 1 : 0.35 }));
      node.appendChild(svg("text", { class: "tick", x: f.left - 4, y: y(v) + 4, "text-anchor": "end" }, compact(v)));
    }
    crossLine(node, r.values, x, y, r.cls);
    if (r.cls === "s0" && !data.analyst) {
      r.values.forEach((v, i) => {
        if (v === null) node.appendChild(svg("rect", { class: "bar hidden-count", x: x(i) - 2, y: top + h - 8, width: 4, height: 8 }));
      });
    }
  });
  // One time axis for all: years, and quarters when the span is short enough to read them.
  const years = new Set(c.starts.map((s) => s.slice(0, 4)));
  const quarters = years.size <= 4 && c.grain !== "year";
  const ticks = [];
  let lastKey = null;
  c.starts.forEach((s, i) => {
    const quarter = quarters ? Math.floor((Number(s.slice(5, 7)) - 1) / 3) : 0;
    const key = s.slice(0, 4) + "-" + quarter;
    if (key === lastKey) return;
    lastKey = key;
    ticks.push({ x: x(i), quarter: quarter, text: quarter ? MONTHS[quarter * 3] : s.slice(0, 4) });
  });
  ticks.forEach((t, j) => {
    // A first week that starts in the previous quarter (31 Dec) would print over the next label.
    if (j + 1 < ticks.length && ticks[j + 1].x - t.x < 36) return;
    node.appendChild(svg("line", { class: "axis", x1: t.x, x2: t.x, y1: f.top, y2: f.height - f.bottom + 5, opacity: t.quarter ? 0.15 : 0.4 }));
    node.appendChild(svg("text", { class: "tick", x: t.x + 2, y: f.height - 8 }, t.text));
  });
  node.setAttribute("data-periods", String(n));

  c.measures.forEach((m, i) => {
    const item = el("li", null, { "data-measure": m.dataset + ":" + m.variable, "data-correlation": m.correlation === null ? "" : m.correlation.toFixed(2) });
    item.appendChild(el("span", null, { class: "cross-key s" + (i + 1) }));
    let text = m.variable + " (" + m.dataset + ", " + (m.aggregation === "mean" ? "averaged" : "summed") + " per " + c.grain + "): ";
    if (m.correlation === null) {
      text += "no correlation (fewer than three " + c.grain + "s where both are known, or one of them constant).";
    } else {
      text += "correlation " + m.correlation.toFixed(2) + " with the incidents over " + num(m.periods) + " " + c.grain + "s.";
    }
    item.appendChild(document.createTextNode(text));
    results.appendChild(item);
  });
  caveat.textContent = c.caveat;
  const lines = ["Periods both sources cover: " + data.span.first + " → " + data.span.last + "."];
  if (!data.analyst && c.incidents.some((v) => v === null)) {
    lines.push("Hatched marks: " + c.grain + "s with fewer than " + data.k + " incidents (suppressed); they are left out of every correlation.");
  }
  lines.push(...(c.notes || []));
  for (const line of lines) notes.appendChild(el("li", line));
}

// --- bias audit and hotspots -----------------------------------------------------------------

function auditTable(categories) {
  const table = el("table", null, { class: "audit-table" });
  const head = el("tr");
  for (const h of ["Category", "Total", "Police-initiated", "Gini", "Top 10 %", "Persistence"]) head.appendChild(el("th", h));
  table.appendChild(el("thead")).appendChild(head);
  const body = el("tbody");
  for (const c of categories) {
    const row = el("tr", null, { "data-category": c.category });
    const name = el("td", c.category + " ");
    if (c.discovered) name.appendChild(el("span", "police activity, not crime", { class: "discovered", title: "Mostly recorded when police are present: maps where officers look." }));
    row.appendChild(name);
    row.appendChild(el("td", c.total === null ? "< k" : num(c.total), { class: "num" }));
    const shares = c.channel_shares || {};
    row.appendChild(el("td", pct(shares.police_initiated || 0), { class: "num" }));
    row.appendChild(el("td", c.gini === null || c.gini === undefined ? "—" : Number(c.gini).toFixed(2), { class: "num" }));
    row.appendChild(el("td", pct(c.top10_share), { class: "num" }));
    row.appendChild(el("td", c.persistence === null || c.persistence === undefined ? "—" : Number(c.persistence).toFixed(2), { class: "num" }));
    body.appendChild(row);
  }
  table.appendChild(body);
  return table;
}

function channelShares(shares) {
  const list = el("ul", null, { class: "notes" });
  for (const [ch, share] of Object.entries(shares || {})) {
    if (share) list.appendChild(el("li", (CHANNEL_LABELS[ch] || ch) + ": " + pct(share)));
  }
  return list;
}

function overallShares(coverage) {
  // The dataset's channel mix, from the per-year coverage weighted by each year's records.
  const sums = {};
  let total = 0;
  for (const year of coverage) {
    total += year.records;
    for (const [ch, share] of Object.entries(year.channel_shares)) sums[ch] = (sums[ch] || 0) + share * year.records;
  }
  const out = {};
  for (const [ch, sum] of Object.entries(sums)) out[ch] = total ? sum / total : 0;
  return out;
}

function coverageTable(coverage) {
  const table = el("table", null, { class: "coverage-table" });
  const head = el("tr");
  for (const h of ["Year", "Records", "With coordinates", "With an area code"]) head.appendChild(el("th", h));
  table.appendChild(el("thead")).appendChild(head);
  const body = el("tbody");
  for (const y of coverage) {
    const row = el("tr");
    row.appendChild(el("td", y.year));
    row.appendChild(el("td", num(y.records), { class: "num" }));
    row.appendChild(el("td", pct(y.located_share), { class: "num" }));
    row.appendChild(el("td", pct(y.coded_share), { class: "num" }));
    body.appendChild(row);
  }
  table.appendChild(body);
  return table;
}

function channelMix(mix, k) {
  // Per area, collapsed: up to 277 police beats would drown the panel.
  const box = el("details", null, { class: "channel-mix" });
  box.appendChild(el("summary", "Channel mix by area (" + mix.length + ")"));
  const table = el("table");
  const head = el("tr");
  head.appendChild(el("th", "Area"));
  head.appendChild(el("th", "Records"));
  head.appendChild(el("th", "Channels"));
  table.appendChild(el("thead")).appendChild(head);
  const body = el("tbody");
  for (const a of mix) {
    const row = el("tr");
    row.appendChild(el("td", a.label || a.key));
    row.appendChild(el("td", shown(a.total, k), { class: "num" }));
    const parts = [];
    for (const [ch, share] of Object.entries(a.channel_shares || {})) {
      if (share === null) parts.push((CHANNEL_LABELS[ch] || ch) + " < " + k);
      else if (share) parts.push((CHANNEL_LABELS[ch] || ch) + " " + pct(share));
    }
    row.appendChild(el("td", a.suppressed ? "suppressed" : parts.join(", ")));
    body.appendChild(row);
  }
  table.appendChild(body);
  box.appendChild(table);
  return box;
}

function renderAudit(result) {
  const a = result.audit;
  const body = document.getElementById("audit-body");
  body.replaceChildren();
  state.discovered = new Set(a.categories.filter((c) => c.discovered).map((c) => c.category));
  if (a.caveat && a.caveat !== state.info.caveat) body.appendChild(el("p", a.caveat, { class: "small caveat" }));
  body.appendChild(el("h3", "Who recorded them"));
  body.appendChild(channelShares(overallShares(a.coverage)));
  if (a.discovered_vs_reported !== null && a.discovered_vs_reported !== undefined) {
    body.appendChild(
      el("p", "Busiest areas of police-initiated and of reported categories overlap by " + pct(a.discovered_vs_reported) + " (Jaccard): police activity and residents' reports point at " + (a.discovered_vs_reported < 0.5 ? "different" : "similar") + " places.", { class: "small" }),
    );
  }
  body.appendChild(el("h3", "Per category"));
  body.appendChild(el("p", "Gini: 0 = spread evenly over the " + a.areas + " areas, 1 = all in one. Top 10 %: share recorded in the busiest tenth of areas. Persistence: how much the busiest areas stay the same year to year (1 = identical).", { class: "muted small" }));
  body.appendChild(auditTable(a.categories));
  if (a.suppressed_categories) {
    body.appendChild(el("p", a.suppressed_categories + " category(ies) with fewer than " + a.k + " records are not listed.", { class: "muted small" }));
  }
  body.appendChild(el("h3", "Missing data and format changes"));
  body.appendChild(coverageTable(a.coverage));
  const list = el("ul", null, { class: "notes" });
  for (const n of a.drift_notes) list.appendChild(el("li", n));
  if (!a.drift_notes.length) list.appendChild(el("li", "No break in coverage or channels from one year to the next.", { class: "muted" }));
  body.appendChild(list);
  if (a.channel_mix.length) body.appendChild(channelMix(a.channel_mix, a.k));
}

async function loadAudit() {
  const body = document.getElementById("audit-body");
  document.getElementById("hotspots").replaceChildren();
  try {
    renderAudit(await getJSON("/api/observatory/audit", { dataset: state.dataset, level: level() }));
  } catch (err) {
    body.replaceChildren(el("p", "Audit unavailable: " + err.message, { class: "message" }));
  }
}

function renderHotspots(result) {
  const h = result.hotspots;
  const box = document.getElementById("hotspots");
  box.replaceChildren();
  if (h.warning) box.appendChild(el("p", h.warning, { class: "discovered-warning" }));
  const list = el("ol", null, { class: "ranking" });
  for (const area of h.ranking) {
    list.appendChild(el("li", (area.label || area.key) + ": " + num(area.count), { "data-key": area.key }));
  }
  box.appendChild(list);
  if (!h.ranking.length) box.appendChild(el("p", "No area holds " + result.k + " or more of these.", { class: "muted" }));
  if (h.excluded_below_k) {
    box.appendChild(el("p", h.excluded_below_k + " area(s) with fewer than " + result.k + " are never ranked.", { class: "muted small" }));
  }
  box.appendChild(el("div", h.feedback_text, { class: "feedback" + (h.runaway ? " runaway" : "") }));
  const a = h.audit;
  box.appendChild(
    el(
      "p",
      "This category: " + pct(a.channel_shares.police_initiated || 0) + " police-initiated, Gini " + Number(a.gini).toFixed(2) + ", " + pct(a.top10_share) + " in the top 10 % of areas.",
      { class: "muted small" },
    ),
  );
}

function resetRankAnyway() {
  // Each police-activity category needs its own deliberate choice.
  document.getElementById("rank-anyway").checked = false;
  document.getElementById("rank-anyway-label").hidden = true;
  document.getElementById("hotspots").replaceChildren();
}

async function loadHotspots() {
  const button = document.getElementById("rank");
  const category = document.getElementById("category").value;
  if (!category) {
    document.getElementById("hotspots").replaceChildren(el("p", "Choose one category first: a ranking mixes nothing.", { class: "message" }));
    return;
  }
  const anyway = document.getElementById("rank-anyway").checked;
  button.disabled = true;
  try {
    const params = Object.assign(filters(), monthBounds(), { level: level(), top: 10 });
    if (anyway) params.include_discovered = "true";
    renderHotspots(await getJSON("/api/observatory/hotspots", params));
  } catch (err) {
    document.getElementById("hotspots").replaceChildren(el("p", err.message, { class: "message refusal" }));
    // A category mostly recorded by police is not ranked unless asked for explicitly (OB-05).
    if (!anyway && state.discovered.has(category)) document.getElementById("rank-anyway-label").hidden = false;
  } finally {
    button.disabled = false;
  }
}

// --- analyst rows and export -----------------------------------------------------------------

async function loadRows(event) {
  event.preventDefault();
  const table = document.getElementById("rows");
  const purpose = document.getElementById("rows-purpose").value;
  try {
    const data = await getJSON("/api/observatory/rows", Object.assign(filters(), monthBounds(), { purpose: purpose, limit: 100 }));
    const body = table.querySelector("tbody");
    body.replaceChildren();
    for (const r of data.rows) {
      const row = el("tr");
      for (const v of [when(r.ts, true), r.category, CHANNEL_LABELS[r.channel] || r.channel, r.h3 || "—", r.area_code || "—", r.n]) row.appendChild(el("td", v));
      body.appendChild(row);
    }
    table.hidden = false;
    say(data.total > data.rows.length ? "First " + data.rows.length + " of " + num(data.total) + " rows." : "");
  } catch (err) {
    say(err.message);
  }
}

async function exportReport(event) {
  event.preventDefault();
  const body = Object.assign(filters(), monthBounds(), {
    level: level(),
    format: document.getElementById("export-format").value,
    purpose: document.getElementById("export-purpose").value,
    recipient: document.getElementById("export-recipient").value,
  });
  try {
    const response = await api("/api/observatory/export", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": await csrf() },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      let detail = "refused (" + response.status + ")";
      try {
        detail = (await response.json()).detail || detail;
      } catch (_) {
        /* not JSON */
      }
      throw new Error(detail);
    }
    const blob = await response.blob();
    const link = el("a", null, { href: URL.createObjectURL(blob), download: "observatory-" + state.dataset + "." + body.format });
    document.body.appendChild(link);
    link.click();
    link.remove();
    say("");
  } catch (err) {
    say("Export: " + err.message);
  }
}

// --- wiring ----------------------------------------------------------------------------------

async function reloadAll() {
  say("");
  await Promise.all([loadMap(), loadSeries(), loadProfiles(), loadAudit(), loadCross()]);
}

let sliderTimer = null;

document.addEventListener("DOMContentLoaded", async () => {
  if (typeof L === "undefined") {
    say("Leaflet is missing on this server: run scripts/bootstrap (npm ci --prefix console) and reload. Charts and the audit still work.");
  }
  try {
    const me = await (await api("/api/me")).json();
    state.user = me.user;
    if (me.csrf_token) sessionStorage.setItem(CSRF_KEY, me.csrf_token);
    document.getElementById("who").textContent = state.user.login + " (" + state.user.role + ")";
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
