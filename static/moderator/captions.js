// Live captions: the conference page's pane (final lines kept, each caller's line being said replaced in place as
// interim results arrive) and the board's keyword alerts. live.js receives the messages; this module shows them.
// Every line arrives as server-rendered HTML; a final line carries its Telnyx event id (data-key) and shows once.

import { live, toast } from "./live.js";

const pane = document.getElementById("captions");
const follow = document.getElementById("captions-follow");
const alerts = document.getElementById("alerts");

function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html.trim();
  return template.content;
}

// --- the conference page's pane ----------------------------------------------------------------------

const finals = () => document.getElementById("caption-lines");
const speaking = () => document.getElementById("caption-live");

function atBottom() {
  return pane.scrollHeight - pane.scrollTop - pane.clientHeight < 24;
}

// Following, the pane stays at its newest line; scrolled back, it stays where the reader is.
function keepFollowing(wasAtBottom) {
  if (follow?.checked && wasAtBottom !== false) pane.scrollTop = pane.scrollHeight;
}

function showEmpty() {
  const empty = pane.querySelector(".caption-empty");
  if (empty) empty.hidden = Boolean(finals().children.length || speaking().children.length);
}

function addFinals(html) {
  const list = finals();
  const shown = new Set([...list.children].map((li) => li.dataset.key));
  for (const line of [...fragment(html).children]) {
    if (shown.has(line.dataset.key)) continue; // a redelivered webhook, or a message racing the snapshot
    shown.add(line.dataset.key);
    // In time order, wherever it belongs (Telnyx delivers in any order).
    const later = [...list.children].reverse().find((li) => li.dataset.at <= line.dataset.at);
    if (later) later.after(line);
    else list.prepend(line);
  }
}

function setSpeaking(leg, html) {
  const list = speaking();
  const current = [...list.children].find((li) => li.dataset.leg === leg);
  const line = html ? fragment(html).firstElementChild : null;
  if (current && line) current.replaceWith(line);
  else if (current) current.remove();
  else if (line) list.append(line);
}

if (pane) {
  document.addEventListener("captions-snapshot", (event) => {
    const wasAtBottom = atBottom();
    pane.innerHTML = event.detail;
    keepFollowing(wasAtBottom);
  });
  document.addEventListener("live-captions", (event) => {
    const message = event.detail;
    if (message.conference_id !== live.conferenceId) return;
    const wasAtBottom = atBottom();
    if (message.lines) addFinals(message.lines);
    for (const [leg, html] of Object.entries(message.live || {})) setSpeaking(leg, html);
    showEmpty();
    keepFollowing(wasAtBottom);
  });
  // Scrolling back stops following; scrolling to the end (or ticking Follow) follows again.
  pane.addEventListener("scroll", () => {
    if (follow) follow.checked = atBottom();
  });
  follow?.addEventListener("change", () => keepFollowing(true));
  pane.scrollTop = pane.scrollHeight;
  // The conference ends while the page is open: the pane is its transcript now, as on a page loaded after the
  // end (checked after every message: a reader of captions who cannot moderate gets no "conference-ended").
  document.addEventListener("live-updated", () => {
    if (document.querySelector("#conference-summary .summary")?.dataset.status !== "completed") return;
    const title = document.getElementById("captions-title");
    if (title.textContent === "Transcript") return;
    title.textContent = "Transcript";
    follow?.closest("label")?.remove();
    const empty = pane.querySelector(".caption-empty");
    if (empty) empty.textContent = "Nothing was transcribed in this conference.";
  });
}

// --- the board's keyword alerts ----------------------------------------------------------------------

const ALERTS_SHOWN = 10;

if (alerts) {
  const empty = document.getElementById("alerts-empty");
  document.addEventListener("alerts-snapshot", (event) => {
    alerts.innerHTML = event.detail;
    empty.hidden = Boolean(alerts.children.length);
  });
  document.addEventListener("live-alert", (event) => {
    const message = event.detail;
    if ([...alerts.children].some((li) => li.dataset.key === message.key)) return;
    const item = fragment(message.html).firstElementChild;
    alerts.prepend(item);
    [...alerts.children].slice(ALERTS_SHOWN).forEach((old) => old.remove());
    empty.hidden = true;
    const said = [...item.querySelectorAll("a, .who, .badge, .said")].map((part) => part.textContent);
    toast(`Keyword alert in ${said[0]}: ${said[1]} said ${said[2]}: ${said[3]}`, "info");
  });
}
