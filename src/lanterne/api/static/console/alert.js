// The alert detail: the card, the anonymised clip (after a stated purpose), the timeline.
import { card, time } from "./alert_card.js";
import { el, getJSON, vocabulary, whoami } from "./common.js";

const id = decodeURIComponent(location.pathname.split("/").pop());
const holder = document.getElementById("queue");
const problem = document.getElementById("problem");
const timeline = document.getElementById("timeline");
const STEP = {
  acknowledged: "Acknowledged", confirmed: "Confirmed", dismissed: "Dismissed",
};
let words = null;

function fail(e) { problem.textContent = e.message; problem.hidden = false; }

function show(a) {
  holder.replaceChildren(card(a, (updated) => { show(updated); history(); }, words));
  const rec = document.getElementById("recording-link");
  rec.href = `/console/recordings?camera=${encodeURIComponent(a.camera)}&at=${encodeURIComponent(a.start)}`;
  rec.hidden = false;
}

async function history() {
  const h = await getJSON(`/api/alerts/${encodeURIComponent(id)}/history`);
  const items = [];
  const raised = el("li", null, { class: "step raised" });
  raised.append(el("time", time(h.raised)),
    el("span", "Raised by the detector (machine suggestion)", { class: "what" }));
  items.push(raised);
  for (const s of h.steps) {
    const li = el("li", null, { class: `step state-${s.state}` });
    let what = `${STEP[s.state] || s.state} by ${s.user_id}`;
    if (s.follow_up) what += ` — follow-up: ${s.follow_up.replace(/_/g, " ")}`;
    if (s.reason) what += ` — reason: ${s.reason.replace(/_/g, " ")}`;
    if (s.reason_text) what += ` (${s.reason_text})`;
    li.append(el("time", time(s.ts)), el("span", what, { class: "what" }));
    items.push(li);
  }
  timeline.replaceChildren(...items);
}

document.getElementById("purpose-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const purpose = document.getElementById("purpose").value.trim();
  if (!purpose) return;
  const v = document.getElementById("clip");
  v.src = `/api/alerts/${encodeURIComponent(id)}/clip?purpose=${encodeURIComponent(purpose)}`;
  v.hidden = false;
  v.addEventListener("error", () => fail(new Error("the clip could not be played (none stored, or refused)")), { once: true });
});

whoami()
  .then(() => vocabulary())
  .then((v) => { words = v; })
  .then(() => getJSON(`/api/alerts/${encodeURIComponent(id)}`))
  .then(show)
  .then(history)
  .catch(fail);
