// The bias audit beside the map, and the ranking of areas it must accompany (OB-05).
import { el, getJSON } from "../common.js";
import { CHANNEL_LABELS, filters, level, monthBounds, num, pct, shown, state } from "./state.js";

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

export async function loadAudit() {
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

export function resetRankAnyway() {
  // Each police-activity category needs its own deliberate choice.
  document.getElementById("rank-anyway").checked = false;
  document.getElementById("rank-anyway-label").hidden = true;
  document.getElementById("hotspots").replaceChildren();
}

export async function loadHotspots() {
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
