// The map panel: counts (or rates) by area for the chosen period, coloured by quantile, with
// suppressed areas hatched and a legend.
import { el, getJSON, say } from "../common.js";
import { svg } from "./chart.js";
import { filters, level, monthBounds, num, periodKey, state } from "./state.js";

// Five steps of viridis: ordered light-to-dark for colour-blind readers and legible on the dark
// console background. Suppressed areas are hatched (#hatch in the page), zeros left unfilled.
const PALETTE = ["#3b528b", "#21918c", "#5ec962", "#b5de2b", "#fde725"];
const SUPPRESSED_FILL = "#5a6570";

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

export async function loadMap() {
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
