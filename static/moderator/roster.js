// The participants table and the timeline at the size of a town hall: find a caller by name or number, hide
// who left (a count instead), sort, put raised hands and the speaker first; show one kind of timeline entry.
// The choices hold across live updates (each re-rendered row is filtered, and placed, as it arrives) and, for
// "hide who left" and the sort, across visits (localStorage).

const body = document.getElementById("participants");
const search = document.getElementById("roster-search");
const hideLeft = document.getElementById("hide-left");
const status = document.getElementById("roster-status");
const sortBy = document.getElementById("roster-sort");
const handsFirst = document.getElementById("hands-first");
const timelineFilter = document.getElementById("timeline-filter");
const HIDE_LEFT = "moderator.hide-left";
const SORT = "moderator.roster-sort";
const HANDS_FIRST = "moderator.hands-first";

const rows = () => body.querySelectorAll("tr.leg");
let query = "";

// Once the conference has ended everyone has left and no hand is up: "hide who left" and "hands first" mean
// nothing then (a remembered "hide who left" would hide everyone), and are put away.
const ended = () => document.querySelector("#conference-summary .summary")?.dataset.status === "completed";
const hidingLeft = () => hideLeft.checked && !ended();
const handsFirstNow = () => handsFirst.checked && !ended();

function matches(row) {
  if (hidingLeft() && row.dataset.status === "left") return false;
  if (!query) return true;
  const name = row.querySelector(".name")?.textContent || "";
  return `${name} ${row.dataset.from}`.toLowerCase().includes(query);
}

function filterRow(row) {
  const shown = matches(row);
  row.classList.toggle("filtered", !shown);
  // A hidden row's selection would be acted on unseen: a filter unselects what it hides.
  const box = row.querySelector(".leg-select");
  if (!shown && box?.checked) {
    box.checked = false;
    box.dispatchEvent(new Event("change", { bubbles: true }));
  }
  return shown;
}

function say() {
  let total = 0;
  let shown = 0;
  let left = 0;
  for (const row of rows()) {
    total += 1;
    if (row.dataset.status === "left") left += 1;
    if (!row.classList.contains("filtered")) shown += 1;
  }
  const parts = [];
  if (query) parts.push(`${shown} of ${total} match “${search.value.trim()}”`);
  if (hidingLeft() && left) parts.push(`${left} who left hidden`);
  status.textContent = parts.join(" · ");
}

// --- order ---------------------------------------------------------------------------------------

const parse = (value) => (value && value !== "None" ? Date.parse(value) : NaN);

function talkSeconds(row) {
  const cell = row.querySelector("td.talk");
  const since = parse(cell?.dataset.since);
  return Number(cell?.dataset.base || 0) + (Number.isNaN(since) ? 0 : (Date.now() - since) / 1000);
}

// The server's order (as they joined), by leg: a re-rendered row keeps its place, a new one comes last.
const arrival = new Map();

function noteArrivals(fresh = false) {
  if (fresh) arrival.clear();
  for (const row of rows()) if (!arrival.has(row.dataset.callControlId)) arrival.set(row.dataset.callControlId, arrival.size);
}

const KEYS = {
  joined: (row) => arrival.get(row.dataset.callControlId) ?? Infinity,
  // People by name first, then the callers known only by a number.
  name: (row) => (row.querySelector(".number") ? "" : "\uffff") + (row.querySelector(".name")?.textContent || "").toLowerCase(),
  talk: (row) => -talkSeconds(row),
};

function rank(row) {
  if (!handsFirstNow()) return 0;
  if (row.querySelector(".badge.hand")) return 0;
  return row.classList.contains("talking") ? 1 : 2;
}

let ordering = 0;

function sortRows() {
  ordering = 0;
  noteArrivals();
  if (body.contains(document.activeElement)) {
    // Moving the row that has the focus would lose it: wait until the moderator is done there.
    body.addEventListener("focusout", sortSoon, { once: true });
    return;
  }
  const key = KEYS[sortBy.value] || KEYS.joined;
  const all = [...rows()];
  const keyed = all.map((row, index) => [rank(row), key(row), index, row]);
  keyed.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) || a[2] - b[2]);
  if (keyed.every(([, , , row], index) => row === all[index])) return; // in order already: no reflow
  body.append(...keyed.map(([, , , row]) => row));
}

function sortSoon() {
  if (!ordering) ordering = requestAnimationFrame(sortRows); // a burst of row updates: one sort a frame
}

function filterAll() {
  query = search.value.trim().toLowerCase();
  for (const row of rows()) filterRow(row);
  say();
}

if (body && search && hideLeft && status && sortBy && handsFirst) {
  hideLeft.checked = localStorage.getItem(HIDE_LEFT) === "1";
  search.addEventListener("input", filterAll);
  search.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && search.value) {
      event.preventDefault();
      search.value = "";
      filterAll();
    }
  });
  hideLeft.addEventListener("change", () => {
    localStorage.setItem(HIDE_LEFT, hideLeft.checked ? "1" : "0");
    filterAll();
  });
  document.addEventListener("row-replaced", (event) => {
    const id = event.detail.callControlId; // "*": a snapshot (the server's order afresh); "+": its next part
    if (id === "*") noteArrivals(true);
    sortSoon();
    if (id === "*" || id === "+") return filterAll();
    const row = [...rows()].find((r) => r.dataset.callControlId === id);
    if (row) filterRow(row);
    say();
  });
  sortBy.value = localStorage.getItem(SORT) || "joined";
  handsFirst.checked = localStorage.getItem(HANDS_FIRST) === "1";
  sortBy.addEventListener("change", () => {
    localStorage.setItem(SORT, sortBy.value);
    sortRows();
  });
  handsFirst.addEventListener("change", () => {
    localStorage.setItem(HANDS_FIRST, handsFirst.checked ? "1" : "0");
    sortRows();
  });
  let wasEnded = ended();
  document.addEventListener("live-updated", () => {
    if (wasEnded || !ended()) return;
    wasEnded = true;
    for (const choice of document.querySelectorAll(".roster-tools .live-only")) choice.hidden = true;
    filterAll();
    sortRows();
  });
  noteArrivals(true);
  filterAll();
  sortRows();
}

timelineFilter?.addEventListener("change", () => {
  document.getElementById("timeline").dataset.show = timelineFilter.value;
});
