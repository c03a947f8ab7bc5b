// The observatory's shared state and what every panel reads from it: the filters, the period
// the slider shows, and the number formats. One object, written by the page (observatory.js) and
// the panels that load data, so that a panel never asks another for what is chosen.

export const DOW = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
export const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
export const CHANNEL_LABELS = {
  citizen_report: "reported by residents",
  police_initiated: "police-initiated",
  sensor: "sensor",
  operator: "operator",
};

export const state = {
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

export function num(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-GB");
}

export function pct(x) {
  return x === null || x === undefined ? "—" : (100 * x).toFixed(1) + " %";
}

export function shown(count, k) {
  return count === null || count === undefined ? "< " + k : num(count);
}

// "2024-03-04T00:00:00" → "2024-03-04" (dates) or "2024-03-04 14:05" (24-hour times).
export function when(iso, withTime) {
  if (!iso) return "—";
  const [d, t] = String(iso).split("T");
  return withTime && t ? d + " " + t.slice(0, 5) : d;
}

// --- filters ---------------------------------------------------------------------------------

export function datasetInfo() {
  return state.info.datasets.find((d) => d.id === state.dataset);
}

export function filters() {
  const out = { dataset: state.dataset };
  const category = document.getElementById("category").value;
  const channel = document.getElementById("channel").value;
  if (category) out.category = category;
  if (channel) out.channel = channel;
  return out;
}

export function periodKey() {
  if (document.getElementById("whole-span").checked || !state.months.length) return null;
  return state.months[Number(document.getElementById("month").value)];
}

export function monthBounds() {
  // The slider steps months, or years for data recorded by year ("2021").
  const start = periodKey();
  if (!start) return {};
  if (start.length === 4) return { from: start + "-01-01T00:00:00", to: Number(start) + 1 + "-01-01T00:00:00" };
  const [y, m] = start.split("-").map(Number);
  const next = m === 12 ? y + 1 + "-01" : y + "-" + String(m + 1).padStart(2, "0");
  return { from: start + "-01T00:00:00", to: next + "-01T00:00:00" };
}

export function level() {
  return document.getElementById("level").value;
}
