// Live pages: one websocket per page, a snapshot on (re)connect, versioned updates that replace only the
// rows they name (the keyboard focus kept in place), timers that tick locally, and reconnection with backoff
// that never hides staleness.

import { focusIn, keepingFocus, refocus } from "./focus.js";

const root = document.querySelector("[data-live]");
const isBoard = root?.classList.contains("board");
const banner = document.getElementById("connection");
const announcer = document.getElementById("announcer");
const toasts = document.getElementById("toasts");

export const live = {
  conferenceId: root?.dataset.conferenceId || null,
  myPhone: root?.dataset.myPhone || "",
  version: Number(root?.dataset.version || 0),
  socket: null,
  resync() {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ type: "resync" }));
  },
  selectedIds() {
    return [...document.querySelectorAll("#participants .leg-select:checked")].map((box) => box.value);
  },
  joinedRows() {
    return [...document.querySelectorAll('#participants tr.leg:not([data-status="left"])')];
  },
  rowOf(callControlId) {
    return [...document.querySelectorAll("#participants tr.leg")].find((row) => row.dataset.callControlId === callControlId);
  },
  myCallControlIds() {
    if (!this.myPhone) return [];
    return this.joinedRows().filter((row) => row.dataset.from === this.myPhone).map((row) => row.dataset.callControlId);
  },
  toast,
};

// --- rendering -------------------------------------------------------------------------------------

function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  return template.content;
}

// Replace a panel's content; the focus, if it was in there, stays on its control (or the one in its place).
function setHTML(id, html, ...fallbacks) {
  const scope = document.getElementById(id);
  keepingFocus(scope, () => {
    scope.innerHTML = html;
  }, ...fallbacks);
}

const heading = (id) => document.getElementById(id);

function rowFragment(html) {
  const table = document.createElement("table");
  table.innerHTML = `<tbody>${html}</tbody>`;
  return table.tBodies[0].firstElementChild;
}

function markMe(scope = document) {
  if (!live.myPhone) return;
  for (const row of scope.querySelectorAll?.("tr.leg") || []) {
    const mine = row.dataset.from === live.myPhone;
    row.classList.toggle("mine", mine);
    row.querySelector(".me")?.toggleAttribute("hidden", !mine);
  }
}

function replaceRow(callControlId, html) {
  const body = document.getElementById("participants");
  const fresh = rowFragment(html);
  if (!fresh) return;
  const current = body.querySelector(`tr[data-call-control-id="${CSS.escape(callControlId)}"]`);
  const focus = focusIn(current);
  if (current) {
    const selected = current.querySelector(".leg-select")?.checked;
    const box = fresh.querySelector(".leg-select");
    if (box && selected && !box.disabled) box.checked = true;
    current.replaceWith(fresh);
  } else {
    body.querySelector(".empty-row")?.remove();
    body.append(fresh);
  }
  markMe(fresh.parentElement || body);
  document.dispatchEvent(new CustomEvent("row-replaced", { detail: { callControlId } }));
  // After the roster placed the row (a sort may move it): a moved element loses the focus.
  refocus(focus, fresh, fresh.nextElementSibling, fresh.previousElementSibling, heading("legs-title"));
}

// The summary says the conference's status: once it is completed, the page is read-only (the server sends
// rows without controls from then on; rows it did not re-render lose theirs here).
function readOnlyIfEnded() {
  const summary = document.querySelector("#conference-summary .summary");
  if (summary?.dataset.status !== "completed" || root.classList.contains("read-only") || root.classList.contains("observer")) return;
  root.classList.add("read-only");
  for (const el of document.querySelectorAll(".toolbar, #select-all, .select-all-label, #row-menu, #participants .controls, #participants .leg-select")) el.remove();
  document.querySelector(".read-only-note")?.removeAttribute("hidden");
  document.dispatchEvent(new CustomEvent("conference-ended"));
}

function applyConferenceSnapshot(message) {
  setHTML("conference-summary", message.summary, heading("legs-title"));
  setHTML("hands", message.hands, heading("legs-title"));
  setHTML("bans", message.bans, heading("viewers-title"));
  const participants = document.getElementById("participants");
  const focus = focusIn(participants);
  participants.innerHTML = message.rows;
  setHTML("timeline", message.timeline);
  if (message.captions !== undefined) document.dispatchEvent(new CustomEvent("captions-snapshot", { detail: message.captions }));
  showViewers(message.viewers);
  live.version = message.version;
  markMe();
  document.dispatchEvent(new CustomEvent("row-replaced", { detail: { callControlId: "*" } }));
  refocus(focus, participants, heading("legs-title"));
  readOnlyIfEnded();
}

// The rest of a long roster's snapshot (it comes in parts): appended, before any update is handled.
function appendRows(message) {
  if (message.version !== live.version) return;
  const rows = document.createElement("tbody");
  rows.innerHTML = message.html;
  document.getElementById("participants").append(...rows.children);
  markMe();
  document.dispatchEvent(new CustomEvent("row-replaced", { detail: { callControlId: "+" } })); // rows added after the others
  readOnlyIfEnded();
}

function applyConferenceUpdate(message) {
  if (message.version <= live.version) return; // the snapshot already had it
  // An update covers the versions since..version (several of the server's batches); one further ahead means
  // an update was lost.
  if ((message.since ?? message.version) > live.version + 1) {
    live.resync(); // an update was missed: never show stale state silently
    return;
  }
  live.version = message.version;
  setHTML("conference-summary", message.summary, heading("legs-title"));
  if (message.hands !== undefined) setHTML("hands", message.hands, heading("legs-title"));
  if (message.bans !== undefined) setHTML("bans", message.bans, heading("viewers-title"));
  // Most of a crowd changed at once (the conference ended, a resync): a snapshot, in parts, is cheaper.
  if (message.refresh) live.resync();
  for (const [callControlId, html] of Object.entries(message.rows)) replaceRow(callControlId, html);
  readOnlyIfEnded();
  if (message.timeline) prependEntries(message.timeline);
  if (message.announce?.length) announce(message.announce.join(". "));
  tick();
}

// A snapshot and an update may both carry an entry (the page loaded between the commit and its update):
// each entry shows once, by its key.
function prependEntries(html) {
  const timeline = document.getElementById("timeline");
  const incoming = fragment(html);
  // A folded flood carries its members' keys: shown already (one of them, or the group), it is a duplicate.
  const shown = new Set();
  for (const li of [...timeline.children].filter((li) => li.dataset.key)) {
    shown.add(li.dataset.key);
    for (const key of (li.dataset.keys || "").split(" ")) if (key) shown.add(key);
  }
  for (const entry of [...incoming.children].filter((li) => li.dataset.key)) {
    const keys = [entry.dataset.key, ...(entry.dataset.keys || "").split(" ").filter(Boolean)];
    if (keys.some((key) => shown.has(key))) entry.remove();
  }
  if (incoming.querySelector("li[data-key]")) timeline.querySelector("li.empty")?.remove();
  timeline.prepend(incoming);
}

function showViewers(viewers = []) {
  const list = document.getElementById("viewers");
  if (!list) return;
  list.replaceChildren(...viewers.map((name) => Object.assign(document.createElement("li"), { textContent: name })));
}

const boardVersions = new Map();

function readBoardVersions() {
  boardVersions.clear();
  for (const card of document.querySelectorAll(".conference-card")) {
    boardVersions.set(card.dataset.conferenceId, Number(card.dataset.version));
  }
}

function applyBoardSnapshot(message) {
  setHTML("live-conferences", message.live, heading("live-title"));
  setHTML("ended-conferences", message.ended, heading("ended-title"));
  setHTML("queues", message.queues, heading("queue-title"));
  if (message.alerts !== undefined) document.dispatchEvent(new CustomEvent("alerts-snapshot", { detail: message.alerts }));
  readBoardVersions();
}

function applyBoardConference(message) {
  const known = boardVersions.get(message.conference_id);
  if (known !== undefined && message.version <= known) return;
  if (known !== undefined && (message.since ?? message.version) > known + 1) {
    live.resync();
    return;
  }
  boardVersions.set(message.conference_id, message.version);
  const card = fragment(message.card).firstElementChild;
  const current = document.querySelector(`.conference-card[data-conference-id="${CSS.escape(message.conference_id)}"]`);
  const target = document.getElementById(message.live ? "live-conferences" : "ended-conferences");
  const focus = focusIn(current);
  if (current && current.parentElement === target) {
    current.replaceWith(card);
  } else {
    current?.remove();
    target.querySelector(".empty")?.remove();
    target.prepend(card);
    if (!message.live) [...target.querySelectorAll(".conference-card")].slice(10).forEach((old) => old.remove());
    const liveList = document.getElementById("live-conferences");
    if (!liveList.querySelector(".conference-card")) {
      liveList.innerHTML = '<p class="empty">No live conferences right now.</p>';
    }
  }
  refocus(focus, card, heading("live-title"));
  tick();
}

function handle(message) {
  switch (message.type) {
    case "snapshot":
      isBoard ? applyBoardSnapshot(message) : applyConferenceSnapshot(message);
      setConnected(true);
      break;
    case "update":
      applyConferenceUpdate(message);
      break;
    case "rows":
      appendRows(message);
      break;
    case "conference":
      applyBoardConference(message);
      break;
    case "queues":
      setHTML("queues", message.html, heading("queue-title"));
      break;
    case "presence":
      showViewers(message.viewers);
      break;
    case "captions": // captions.js (loaded for readers of captions only: others are never sent them)
    case "alert":
      document.dispatchEvent(new CustomEvent(`live-${message.type}`, { detail: message }));
      break;
  }
  tick();
  document.dispatchEvent(new CustomEvent("live-updated"));
}

// --- time ------------------------------------------------------------------------------------------

function clock(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function ago(seconds) {
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

const parse = (value) => (value && value !== "None" ? Date.parse(value) : NaN);

export function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-tick]")) {
    const since = parse(el.dataset.since);
    const until = parse(el.dataset.until);
    let text = "–";
    switch (el.dataset.tick) {
      case "since":
        if (!Number.isNaN(since)) text = clock((now - since) / 1000);
        break;
      case "duration":
        if (!Number.isNaN(since)) text = clock(((Number.isNaN(until) ? now : until) - since) / 1000);
        break;
      case "ago":
        if (!Number.isNaN(since)) text = ago((now - since) / 1000);
        break;
      case "talk": {
        const base = Number(el.dataset.base || 0);
        text = clock(base + (Number.isNaN(since) ? 0 : (now - since) / 1000));
        break;
      }
      case "clock":
        if (!Number.isNaN(since)) text = new Date(since).toLocaleTimeString([], { hour12: false });
        break;
    }
    if (el.textContent !== text) el.textContent = text;
  }
}

// --- messages to the moderator -------------------------------------------------------------------

function announce(text) {
  if (announcer) announcer.textContent = text;
}

const TOAST_SECONDS = { error: 10, success: 4, info: 6 };
const MAX_TOASTS = 3;

// The page keeps room at its end for the toasts (main's padding), so they never hide content for good.
function reserveToastSpace() {
  const height = toasts.childElementCount ? toasts.offsetHeight + 12 : 0;
  document.documentElement.style.setProperty("--toast-space", `${height}px`);
}

// A toast announces itself (an error as an alert, anything else politely: the container is no live region,
// or it would be said twice), goes away by itself — an error after a while, not while it is hovered or
// focused — or on a click, and at most three are shown.
export function toast(text, kind = "info") {
  const item = document.createElement("div");
  item.className = `toast ${kind}`;
  item.setAttribute("role", kind === "error" ? "alert" : "status");
  item.append(Object.assign(document.createElement("span"), { textContent: text }));
  const close = Object.assign(document.createElement("button"), { type: "button", textContent: "×", className: "link" });
  close.setAttribute("aria-label", "Dismiss");
  item.append(close);
  const dismiss = () => {
    item.remove();
    reserveToastSpace();
  };
  item.addEventListener("click", dismiss);
  let timer = null;
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(dismiss, (TOAST_SECONDS[kind] || 6) * 1000);
  };
  item.addEventListener("mouseenter", () => clearTimeout(timer));
  item.addEventListener("mouseleave", later);
  item.addEventListener("focusin", () => clearTimeout(timer));
  item.addEventListener("focusout", later);
  toasts.append(item);
  while (toasts.childElementCount > MAX_TOASTS) toasts.firstElementChild.remove();
  later();
  reserveToastSpace();
  return item;
}

// --- the socket ------------------------------------------------------------------------------------

let attempts = 0;

function setConnected(connected) {
  document.body.classList.toggle("stale", !connected);
  if (!banner) return;
  banner.hidden = connected;
  banner.textContent = connected ? "" : "Reconnecting… the page may be out of date";
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${root.dataset.live}`);
  live.socket = socket;
  socket.addEventListener("open", () => {
    attempts = 0;
  });
  socket.addEventListener("message", (event) => handle(JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    setConnected(false);
    if (event.code === 4401) {
      location.href = `/accounts/login/?next=${encodeURIComponent(location.pathname)}`;
      return;
    }
    if (event.code === 4404) {
      banner.hidden = false;
      banner.textContent = "This conference is not known (yet). Retrying…";
    }
    const delay = Math.min(10000, 500 * 2 ** attempts++) * (0.75 + Math.random() / 2);
    setTimeout(connect, delay);
  });
}

if (root) {
  readBoardVersions();
  markMe();
  tick();
  setInterval(tick, 1000);
  setInterval(() => {
    if (live.socket?.readyState === WebSocket.OPEN) live.socket.send(JSON.stringify({ type: "ping" }));
  }, 60000);
  connect();
}
