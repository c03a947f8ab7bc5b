// The outbound page: supervisors list confirmed alerts on their way to MQTT and webhooks (dead
// letters by default) and retry a dead one; the server records each retry. Anyone else is told
// the list is for supervisors without asking the API.
import { el, getJSON, post, say, whoami } from "./common.js";

const table = document.getElementById("messages");
const body = table.querySelector("tbody");
const stateSel = document.getElementById("state");

function row(m) {
  const tr = el("tr");
  tr.append(
    el("td", m.id),
    el("td", m.alert_id),
    el("td", m.camera),
    el("td", m.type),
    el("td", m.destination),
    el("td", m.state),
    el("td", m.attempts),
    el("td", m.last_error || ""),
  );
  const cell = el("td");
  if (m.state === "dead") {
    const button = el("button", "Retry", { type: "button", "data-id": String(m.id) });
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await post(`/api/outbound/${m.id}/retry`);
        say(`Message ${m.id} is back in the queue.`);
        await load();
      } catch (err) {
        say(err.message);
        button.disabled = false;
      }
    });
    cell.append(button);
  }
  tr.append(cell);
  return tr;
}

async function load() {
  const list = await getJSON("/api/outbound", { state: stateSel.value });
  body.replaceChildren(...list.map(row));
  table.hidden = list.length === 0;
  document.getElementById("empty").hidden = list.length !== 0;
}

async function main() {
  const me = await whoami();
  if (me.user.role !== "supervisor") {
    document.getElementById("not-supervisor").hidden = false;
    return;
  }
  document.getElementById("list-section").hidden = false;
  stateSel.addEventListener("change", () => load().catch((err) => say(err.message)));
  await load();
}

main().catch((err) => say(err.message));
