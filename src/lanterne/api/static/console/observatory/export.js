// What leaves the observatory on request: the analyst's incident rows and the exported report,
// each with its recorded purpose.
import { el, getJSON, postForBlob, say } from "../common.js";
import { CHANNEL_LABELS, filters, level, monthBounds, num, state, when } from "./state.js";

// --- analyst rows and export -----------------------------------------------------------------

export async function loadRows(event) {
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

export async function exportReport(event) {
  event.preventDefault();
  const body = Object.assign(filters(), monthBounds(), {
    level: level(),
    format: document.getElementById("export-format").value,
    purpose: document.getElementById("export-purpose").value,
    recipient: document.getElementById("export-recipient").value,
  });
  try {
    const blob = await postForBlob("/api/observatory/export", body);
    const link = el("a", null, { href: URL.createObjectURL(blob), download: "observatory-" + state.dataset + "." + body.format });
    document.body.appendChild(link);
    link.click();
    link.remove();
    say("");
  } catch (err) {
    say("Export: " + err.message);
  }
}
