// Trackway dashboard: progressive enhancement only; every page works without it.
"use strict";

// Copy buttons: <button data-copy="#id"> copies the text of the element it names.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    button.textContent = "Copied";
  });
});

// The live debugger: rows from the source's SSE stream, filtered, pausable; a row
// opens its full JSON. Rows are built like the server's (pages/sources.py `row`).
const MAX_ROWS = 200;

function rowOf(record) {
  const rejected = record.status === "rejected";
  const event = (rejected ? record.payload : record) || {};
  const error = record.error;
  return {
    status: record.status,
    at: rejected ? record.receivedAt : event.receivedAt,
    type: event.type || "",
    event: event.event || event.name || "",
    user: event.userId || event.anonymousId || "",
    message_id: event.messageId || "",
    error: error ? `${error.code}: ${error.message}` : "",
    json: JSON.stringify(record),
  };
}

function rowElement(row) {
  const tr = document.createElement("tr");
  tr.tabIndex = 0;
  Object.assign(tr.dataset, {
    status: row.status, type: row.type, event: row.event, user: row.user, json: row.json,
  });
  const cells = [row.at, row.status, row.type, row.event, row.user, row.error || row.message_id];
  cells.forEach((text, i) => {
    const td = document.createElement("td");
    td.textContent = text || "";
    if (i === 0 || i === 5) td.className = "mono";
    if (i === 1) td.className = `status-${row.status}`;
    tr.appendChild(td);
  });
  return tr;
}

function startDebugger(live) {
  const body = document.querySelector("#records tbody");
  const detail = document.getElementById("detail");
  const form = document.getElementById("filters");
  const pause = document.getElementById("pause");
  let paused = false;
  let held = [];
  let sampled = 0;

  const matches = (tr) => {
    const f = Object.fromEntries(new FormData(form));
    return (!f.status || tr.dataset.status === f.status)
      && (!f.type || tr.dataset.type === f.type)
      && (!f.event || tr.dataset.event.toLowerCase().includes(f.event.toLowerCase()))
      && (!f.user || tr.dataset.user.toLowerCase().includes(f.user.toLowerCase()));
  };
  const applyFilters = () => {
    for (const tr of body.rows) tr.hidden = !matches(tr);
  };
  const say = () => {
    let text = paused ? `Paused: ${held.length} new event(s) held.` : "Live.";
    if (sampled) text += ` Sampling: ${sampled} event(s) not shown (more than the stream sends a second).`;
    live.textContent = text;
  };
  const add = (rows) => {
    const empty = document.getElementById("empty");
    if (empty) empty.remove();
    for (const row of rows) {
      const tr = rowElement(row);
      tr.hidden = !matches(tr);
      body.insertBefore(tr, body.firstChild);
    }
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
  };
  const receive = (message) => {
    const row = rowOf(JSON.parse(message.data));
    if (paused) held.push(row); else add([row]);
    say();
  };

  applyFilters();
  form.addEventListener("input", applyFilters);
  form.addEventListener("submit", (event) => event.preventDefault());
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) { add(held); held = []; }
    say();
  });
  const open = (tr) => {
    detail.textContent = JSON.stringify(JSON.parse(tr.dataset.json), null, 2);
  };
  body.addEventListener("click", (event) => {
    const tr = event.target.closest("tr");
    if (tr) open(tr);
  });
  body.addEventListener("keydown", (event) => {
    const tr = event.target.closest("tr");
    if (tr && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); open(tr); }
  });

  const source = new EventSource(live.dataset.stream);
  for (const status of ["accepted", "rejected", "duplicate"]) {
    source.addEventListener(status, receive);
  }
  source.addEventListener("sampled", (m) => { sampled += JSON.parse(m.data).skipped; say(); });
  source.addEventListener("overflow", (m) => { sampled += JSON.parse(m.data).dropped; say(); });
  source.addEventListener("open", say);
  source.addEventListener("error", () => { live.textContent = "Reconnecting…"; });
}

const live = document.getElementById("live");
if (live && live.dataset.stream) startDebugger(live);
