// The series panel: counts over time with trend and interval, yearly seasonality, hour and day
// profiles, and the unusual periods.
import { el, getJSON, say } from "../common.js";
import { chartFrame, niceMax, svg, yAxis } from "./chart.js";
import { DOW, MONTHS, datasetInfo, filters, num, periodKey, shown, state } from "./state.js";

// --- charts ----------------------------------------------------------------------------------

export function drawSeries() {
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

export async function loadSeries() {
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

export function loadProfiles() {
  return Promise.all([
    loadProfile("hour", "hour-chart", "hour-note", (key) => String(key).padStart(2, "0") + ":00", "hour"),
    loadProfile("dow", "dow-chart", "dow-note", (key) => DOW[key] || String(key), "day"),
  ]);
}
