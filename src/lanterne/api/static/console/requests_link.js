// The navigation's link to the access requests, with how many are overdue, so that a request past
// its one-month deadline is seen from the recordings page, where the export officer starts. Export
// officers only: for anyone else the list would be a refused (and recorded) request, so it is not
// asked for.
import { getJSON } from "./common.js";

async function show() {
  const link = document.querySelector('nav a[href="/console/requests"]');
  if (!link) return;
  const me = await getJSON("/api/me");
  if (me.user.role !== "export_officer") return;
  const list = await getJSON("/api/requests");
  if (list.overdue > 0) {
    link.textContent = `Access requests (${list.overdue} overdue)`;
    link.classList.add("overdue");
  }
}

show().catch(() => {}); // the page works without it; the requests page says what went wrong
