// The "beside other sources" panel: the incidents period by period beside up to four measures
// of other datasets, each on its own scale, over the periods they all cover.
import { el, getJSON } from "../common.js";
import { chartFrame, niceMax, svg } from "./chart.js";
import { MONTHS, datasetInfo, filters, num, state, when } from "./state.js";

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

export function limitMeasures() {
  // Four at most (the server refuses more): the others are disabled once four are ticked.
  const full = checkedMeasures().length >= CROSS_MAX;
  for (const input of document.querySelectorAll("#cross-measures input")) {
    input.disabled = input.hasAttribute("data-no-overlap") || (full && !input.checked);
  }
}

export function fillCross(d) {
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

export async function loadCross() {
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

export function drawCross(message) {
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
