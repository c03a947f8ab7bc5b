// The alert detail: the card, the anonymised clip (after a stated purpose), the timeline.
"use strict";

(() => {
  const id = decodeURIComponent(location.pathname.split("/").pop());
  const holder = document.getElementById("queue");
  const problem = document.getElementById("problem");
  const timeline = document.getElementById("timeline");
  const STEP = {
    acknowledged: "Acknowledged", confirmed: "Confirmed", dismissed: "Dismissed",
  };

  function fail(e) { problem.textContent = e.message; problem.hidden = false; }

  function show(a) {
    holder.replaceChildren(Lanterne.card(a, (updated) => { show(updated); history(); }));
  }

  async function history() {
    const h = await Lanterne.api(`/api/alerts/${encodeURIComponent(id)}/history`);
    const items = [];
    const raised = Lanterne.el("li", "step raised");
    raised.append(Lanterne.el("time", null, Lanterne.time(h.raised)),
      Lanterne.el("span", "what", "Raised by the detector (machine suggestion)"));
    items.push(raised);
    for (const s of h.steps) {
      const li = Lanterne.el("li", `step state-${s.state}`);
      let what = `${STEP[s.state] || s.state} by ${s.user_id}`;
      if (s.follow_up) what += ` — follow-up: ${s.follow_up.replace(/_/g, " ")}`;
      if (s.reason) what += ` — reason: ${s.reason.replace(/_/g, " ")}`;
      if (s.reason_text) what += ` (${s.reason_text})`;
      li.append(Lanterne.el("time", null, Lanterne.time(s.ts)), Lanterne.el("span", "what", what));
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

  Lanterne.whoami()
    .then(() => Lanterne.api(`/api/alerts/${encodeURIComponent(id)}`))
    .then(show)
    .then(history)
    .catch(fail);
})();
