// The participants table at the size of a town hall: find a caller by name or number, hide who left (a count
// instead). The choice holds across live updates (each re-rendered row is filtered as it arrives) and, for
// "hide who left", across visits (localStorage).

const body = document.getElementById("participants");
const search = document.getElementById("roster-search");
const hideLeft = document.getElementById("hide-left");
const status = document.getElementById("roster-status");
const HIDE_LEFT = "moderator.hide-left";

const rows = () => body.querySelectorAll("tr.leg");
let query = "";

function matches(row) {
  if (hideLeft.checked && row.dataset.status === "left") return false;
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
  if (hideLeft.checked && left) parts.push(`${left} who left hidden`);
  status.textContent = parts.join(" · ");
}

function filterAll() {
  query = search.value.trim().toLowerCase();
  for (const row of rows()) filterRow(row);
  say();
}

if (body && search && hideLeft && status) {
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
    const id = event.detail.callControlId;
    if (id === "*") return filterAll();
    const row = [...rows()].find((r) => r.dataset.callControlId === id);
    if (row) filterRow(row);
    say();
  });
  filterAll();
}
