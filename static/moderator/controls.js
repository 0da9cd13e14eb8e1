// Moderator controls: every button with data-action posts to the actions API. The result shows up
// through the websocket in every tab; here we only show that a command is in flight, and why it failed.

import { focusHeading, wayBack } from "./focus.js";
import { live, toast } from "./live.js";

const dialog = document.getElementById("action-dialog");
const dialogForm = document.getElementById("action-form");
const fieldsBox = document.getElementById("action-fields");
const dialogError = dialog?.querySelector(".dialog-error");
// Every action and verb of the page, declared once on the server (moderator/control/registry.py): what it
// posts, which legs it addresses and what its dialog asks for (with the body schema's constraints).
const ACTIONS = JSON.parse(document.getElementById("page-actions").textContent);

function csrfToken() {
  return document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] || "";
}

// An answer of the API's one error shape: {"error": {"status", "code", "title", "detail", "field"?}}.
class ApiFailure extends Error {
  constructor(status, error) {
    super([error.title, error.detail].filter(Boolean).join(": ") || `HTTP ${status}`);
    this.status = status;
    this.field = error.field || "";
    this.detail = error.detail || error.title || "";
  }
}

async function request(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let payload = {};
  try {
    payload = await response.json();
  } catch {
    payload = { error: { title: `HTTP ${response.status}`, detail: "The server answered without JSON." } };
  }
  if (!response.ok) throw new ApiFailure(response.status, payload.error || {});
  return payload;
}

const post = async (path, body) => (await request("POST", path, body)).data;

// --- dialogs ---------------------------------------------------------------------------------------

function option(value, text) {
  return new Option(text, value);
}

// Choices the server provides (GET /api/choices/<kind>): asked when the dialog opens, so they are fresh.
async function fillChoices(select, spec) {
  const loading = option("", "Loading…");
  loading.disabled = true;
  select.append(loading);
  let choices = [];
  try {
    choices = (await request("GET", `/api/choices/${spec.kind}`)).choices;
  } catch (error) {
    loading.textContent = `Could not load the choices: ${error.message}`;
    return;
  }
  loading.remove();
  if (!choices.length) {
    if (spec.kind === "queues") {
      // No waiting room anywhere: a queue can still be named.
      const input = Object.assign(document.createElement("input"), { type: "text", name: spec.name, id: select.id, required: spec.required });
      input.setAttribute("aria-describedby", select.getAttribute("aria-describedby"));
      select.replaceWith(input);
    } else {
      select.append(Object.assign(option("", spec.empty || "Nothing to choose from."), { disabled: true, selected: true }));
    }
    return;
  }
  const groups = new Map();
  for (const choice of choices) {
    if (!groups.has(choice.group)) groups.set(choice.group, Object.assign(document.createElement("optgroup"), { label: choice.group }));
    groups.get(choice.group).append(option(choice.value, choice.label));
  }
  select.append(...groups.values());
}

function field(spec, context) {
  const { name, label, kind, options = [], required } = spec;
  const wrap = document.createElement("div");
  wrap.className = kind === "checkbox" ? "check" : "field";
  wrap.dataset.field = name;
  const id = `f-${name}`;
  let input;
  if (kind === "select") {
    input = document.createElement("select");
    for (const [value, text] of options) input.append(option(value, text));
  } else if (kind === "textarea") {
    input = document.createElement("textarea");
  } else if (kind === "legs") {
    input = document.createElement("select");
    input.multiple = true;
    // The participant a dialog is about is never their own target (no whispering to oneself).
    for (const row of live.joinedRows()) {
      if (row.dataset.callControlId === context.self) continue;
      input.append(option(row.dataset.callControlId, row.querySelector(".name").textContent));
    }
    if (!input.options.length) input.append(Object.assign(option("", spec.empty || "Nobody else is on the call."), { disabled: true }));
  } else if (kind === "conferences") {
    input = document.createElement("select");
    for (const card of document.querySelectorAll('#live-conferences .conference-card[data-live="1"]')) {
      input.append(option(card.dataset.conferenceId, card.querySelector("h3").textContent.trim()));
    }
    if (!input.options.length) input.append(Object.assign(option("", "No live conference right now"), { disabled: true, selected: true }));
  } else if (kind === "calls" || kind === "queues") {
    input = document.createElement("select");
    context.loading.push(fillChoices(input, spec));
  } else {
    input = document.createElement("input");
    input.type = kind;
    // A checkbox with an option sends that option's value (trim: "trim-silence"), otherwise true.
    if (kind === "checkbox" && options.length) input.value = options[0][0];
  }
  input.name = name;
  input.id = id;
  input.required = required;
  // The body schema's own constraints: the browser refuses what the API would.
  if (spec.pattern) input.pattern = spec.pattern;
  for (const attr of ["minlength", "maxlength", "min", "max"]) if (spec[attr] !== undefined) input.setAttribute(attr, spec[attr]);
  const labelEl = Object.assign(document.createElement("label"), { textContent: label, htmlFor: id });
  const described = [];
  const extra = [];
  if (spec.hint) {
    extra.push(Object.assign(document.createElement("span"), { className: "hint", id: `${id}-hint`, textContent: spec.hint }));
    described.push(`${id}-hint`);
  }
  const error = Object.assign(document.createElement("span"), { className: "field-error", id: `${id}-error`, hidden: true });
  extra.push(error);
  described.push(error.id);
  input.setAttribute("aria-describedby", described.join(" "));
  kind === "checkbox" ? wrap.append(input, " ", labelEl, ...extra) : wrap.append(labelEl, input, ...extra);
  return wrap;
}

function formValues(form) {
  const values = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === "checkbox") {
      if (el.checked) values[el.name] = el.value === "on" ? true : el.value;
    } else if (el.multiple) {
      const chosen = [...el.selectedOptions].map((o) => o.value);
      if (chosen.length) values[el.name] = chosen;
    } else if (el.value !== "") {
      values[el.name] = el.type === "number" ? Number(el.value) : el.value;
    }
  }
  return values;
}

// A field that applies only with another's value (whisper targets only for the whisper role) is hidden
// and disabled otherwise: not sent, not validated.
function applyConditions(form) {
  for (const spec of form.fields || []) {
    if (!spec.shown_when) continue;
    const [other, value] = spec.shown_when;
    const wrap = fieldsBox.querySelector(`[data-field="${spec.name}"]`);
    const shown = fieldsBox.querySelector(`[name="${other}"]`)?.value === value;
    wrap.hidden = !shown;
    for (const el of wrap.querySelectorAll("input, select, textarea")) el.disabled = !shown;
  }
}

function clearErrors() {
  for (const el of fieldsBox.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of fieldsBox.querySelectorAll(".field-error")) {
    el.hidden = true;
    el.textContent = "";
  }
  dialogError.hidden = true;
  dialogError.textContent = "";
}

// The API names fields as the body does (audio_url); the moderator knows them by their labels.
function inWords(text) {
  for (const { name, label } of currentForm?.fields || []) {
    text = text.replace(new RegExp(`\\b${name}\\b`, "g"), `“${label.replace(/^…or | \(optional\)$/g, "")}”`);
  }
  return text;
}

// Show a problem next to its field (the dialog stays open, the input kept), or under the form.
function showError(name, text) {
  const input = name && fieldsBox.querySelector(`[name="${CSS.escape(name.split(".")[0])}"]`);
  if (!input) {
    dialogError.textContent = inWords(text);
    dialogError.hidden = false;
    return;
  }
  input.setAttribute("aria-invalid", "true");
  const error = document.getElementById(`${input.id}-error`);
  error.textContent = text;
  error.hidden = false;
  input.focus();
}

// The browser's own check, shown inline (its bubbles vanish, and say nothing of what a pattern means).
function validate() {
  let first = null;
  for (const el of fieldsBox.querySelectorAll("input, select, textarea")) {
    if (el.disabled || el.checkValidity()) continue;
    const spec = currentForm.fields.find((f) => f.name === el.name) || {};
    const text = el.validity.patternMismatch && spec.hint ? spec.hint : el.validationMessage;
    el.setAttribute("aria-invalid", "true");
    const error = document.getElementById(`${el.id}-error`);
    error.textContent = text;
    error.hidden = false;
    first ||= el;
  }
  first?.focus();
  return !first;
}

let currentForm = null;
let pending = null; // {submit, resolve, reject} of the open dialog
let back = () => {}; // where the focus goes when it closes (`wayBack`)

// Ask for the action's parameters (or a confirmation) and send them with `submit(values)`. The dialog stays
// open until the server accepted: a refused field is shown next to it. Resolves to the answer, or null if
// cancelled; rejects with failures that are not about the input (Telnyx refused, the server failed).
function ask(form, preset, context, submit) {
  currentForm = form;
  document.getElementById("action-dialog-title").textContent = form.title;
  fieldsBox.replaceChildren();
  clearErrors();
  if (form.confirm) fieldsBox.append(Object.assign(document.createElement("p"), { textContent: form.confirm }));
  context.loading = [];
  for (const spec of form.fields || []) fieldsBox.append(field(spec, context));
  const setPreset = () => {
    for (const [name, value] of Object.entries(preset)) {
      const input = fieldsBox.querySelector(`[name="${name}"]`);
      if (input) input.value = value;
    }
  };
  setPreset();
  Promise.all(context.loading).then(setPreset);
  applyConditions(form);
  const submitButton = document.getElementById("action-submit");
  submitButton.textContent = form.confirm ? form.title.replace("?", "") : "Send";
  submitButton.classList.toggle("danger", Boolean(form.destructive));
  submitButton.removeAttribute("aria-busy");
  back = wayBack(document.activeElement);
  dialog.showModal();
  // A destructive confirmation opens on Cancel: one stray Enter must not end a conference for everyone.
  const safe = form.destructive ? document.getElementById("action-cancel") : submitButton;
  (fieldsBox.querySelector("input, select, textarea") || safe).focus();
  return new Promise((resolve, reject) => {
    pending = { submit, resolve, reject };
  });
}

function settle(outcome, value) {
  const done = pending;
  pending = null;
  if (dialog.open) dialog.close();
  done?.[outcome](value);
}

if (dialog) {
  dialogForm.noValidate = true; // validate() shows the browser's verdict inline
  fieldsBox.addEventListener("change", () => currentForm && applyConditions(currentForm));
  document.getElementById("action-cancel").addEventListener("click", () => settle("resolve", null));
  fieldsBox.addEventListener("input", (event) => {
    if (event.target.getAttribute("aria-invalid") !== "true" || !event.target.checkValidity()) return;
    event.target.removeAttribute("aria-invalid");
    document.getElementById(`${event.target.id}-error`).hidden = true;
  });
  // Send, or Enter in a field (the browser's implicit submission presses Send, the one submit button).
  dialogForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submitButton = document.getElementById("action-submit");
    if (!pending || submitButton.getAttribute("aria-busy") === "true") return;
    clearErrors();
    if (!validate()) return;
    submitButton.setAttribute("aria-busy", "true");
    try {
      settle("resolve", await pending.submit(formValues(dialogForm)));
    } catch (error) {
      if (error instanceof ApiFailure && error.status === 400) {
        // About the input: keep the dialog and what was typed, say what is wrong where it is wrong.
        const prefix = `${error.field}: `;
        showError(error.field, error.detail.startsWith(prefix) ? error.detail.slice(prefix.length) : error.detail);
      } else {
        settle("reject", error);
      }
    } finally {
      submitButton.removeAttribute("aria-busy");
    }
  });
  // Esc, or the dialog closed by anything else: a cancel. Whatever closed it, the focus goes back where it was.
  dialog.addEventListener("close", () => {
    settle("resolve", null);
    back();
  });
}

// --- what a click sends ----------------------------------------------------------------------------

function targets(button) {
  if (button.dataset.callControlId) return [button.dataset.callControlId];
  switch (button.dataset.scope) {
    case "selected":
      return live.selectedIds();
    case "all-but-me": {
      const mine = new Set(live.myCallControlIds());
      return live.joinedRows().map((row) => row.dataset.callControlId).filter((id) => !mine.has(id));
    }
    default:
      return null; // everyone
  }
}

// Telnyx ids go into URL paths encoded: a v2 call_control_id may hold "/", "+" or "=".
const id = encodeURIComponent;

function send(spec, button, values, body) {
  const conference = live.conferenceId;
  const callControlId = button.dataset.callControlId;
  const [on, api] = spec.api.split(":");
  switch (on) {
    case "resync":
      return post(`/api/conferences/${id(conference)}/resync`, {}).then((data) => {
        live.resync();
        return data;
      });
    case "create":
      return post("/api/conferences", { ...values, call_control_id: callControlId });
    case "name":
      return post(`/api/calls/${id(callControlId)}/name`, { name: values.name || "" });
    case "lock":
      return post(`/api/conferences/${id(conference)}/lock`, { locked: api === "on" });
    case "captions":
      return post(`/api/conferences/${id(conference)}/captions`, { on: api === "on" });
    case "admit_waiting":
      return post(`/api/queues/${id(button.dataset.queue)}/admit`, api === "next" ? { count: 1 } : {});
    case "ban":
      return post(`/api/conferences/${id(conference)}/ban`, { call_control_id: callControlId, for_good: values.duration === "forever" });
    case "lift_ban":
      return post(`/api/bans/${id(button.dataset.ban)}/lift`, {});
    case "lower_hands":
      return post(`/api/conferences/${id(conference)}/lower_hands`, callControlId ? { call_control_ids: [callControlId] } : {});
    case "call":
      return post(`/api/calls/${id(callControlId)}/actions/${api}`, values);
    default: {
      // A verb that picks its conference in the dialog (admit) acts there, on the button's caller.
      const { conference: chosen, ...rest } = values;
      if (chosen) return post(`/api/conferences/${id(chosen)}/actions/${api}`, { ...rest, call_control_id: callControlId });
      return post(`/api/conferences/${id(conference)}/actions/${api}`, { ...values, ...body });
    }
  }
}

async function perform(button) {
  const spec = ACTIONS[button.dataset.action];
  if (!spec) throw new Error(`This page does not know the action "${button.dataset.action}".`);
  const body = {};
  if (spec.targets === "leg") body.call_control_id = button.dataset.callControlId;
  if (spec.targets === "legs") {
    const legs = targets(button);
    if (legs) body.call_control_ids = legs;
  }
  const preset = button.dataset.action === "update" ? { supervisor_role: button.dataset.role || "none" } : {};
  if (button.dataset.action === "name") preset.name = live.rowOf(button.dataset.callControlId)?.dataset.name || "";
  // A caller in a room's waiting room is admitted into that room's conference unless the moderator picks another.
  if (button.dataset.conferenceId) preset.conference = button.dataset.conferenceId;
  if (!spec.form) return send(spec, button, {}, body);
  return ask(spec.form, preset, { self: button.dataset.callControlId }, (values) => send(spec, button, values, body));
}

// --- buttons that cannot work now: disabled, saying why --------------------------------------------

const lockState = () => document.querySelector("#conference-summary .summary")?.dataset.locked === "true";
const captionsState = () => document.querySelector("#conference-summary .summary")?.dataset.captions === "true";
const recordingState = () => document.querySelector("#conference-summary .summary")?.dataset.recording || "idle";

const NEEDS = {
  participants: () => (live.joinedRows().length ? "" : "Nobody is on the call."),
  selection: () => (live.selectedIds().length ? "" : "Select one or more participants first (the boxes at the left of the rows)."),
  "my-leg": () => {
    if (!live.myPhone) return "Save your phone number in your profile first: then the dashboard knows which leg is yours.";
    return live.myCallControlIds().length ? "" : `Your phone (${live.myPhone}) is not on this call.`;
  },
  "not-recording": () => (recordingState() === "idle" ? "" : "A recording is already running."),
  recording: () => (recordingState() === "recording" ? "" : "Nothing is being recorded."),
  paused: () => (recordingState() === "paused" ? "" : "The recording is not paused."),
  "recording-any": () => (recordingState() === "idle" ? "Nothing is being recorded." : ""),
  unlocked: () => (lockState() ? "The conference is locked already." : ""),
  locked: () => (lockState() ? "" : "The conference is not locked."),
  "captions-off": () => (captionsState() ? "Live captions are on already." : ""),
  "captions-on": () => (captionsState() ? "" : "Live captions are off."),
};

function refreshAvailability() {
  for (const button of document.querySelectorAll("button[data-needs]")) {
    const why = NEEDS[button.dataset.needs]?.() || "";
    // aria-disabled, not disabled: the button stays focusable and its reason (title) readable.
    if (why) {
      button.setAttribute("aria-disabled", "true");
      button.title = why;
    } else {
      button.removeAttribute("aria-disabled");
      button.removeAttribute("title");
    }
  }
}

// --- the conference's toolbar: one Tab stop, the arrow keys move along it (the WAI-ARIA toolbar pattern) ----
// Twenty buttons would otherwise be twenty Tab presses between the page's top and its roster.

const toolbar = document.querySelector('.toolbar[role="toolbar"]');
const toolbarButtons = () => [...toolbar.querySelectorAll("button")].filter((button) => button.getClientRects().length);

function rove(current) {
  for (const button of toolbarButtons()) button.tabIndex = button === current ? 0 : -1;
}

if (toolbar) {
  rove(toolbarButtons()[0]);
  toolbar.addEventListener("focusin", (event) => event.target.matches("button") && rove(event.target));
  toolbar.addEventListener("keydown", (event) => {
    const buttons = toolbarButtons();
    const at = buttons.indexOf(document.activeElement);
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: buttons.length - 1 }[event.key];
    if (at < 0 || to === undefined) return;
    event.preventDefault();
    buttons[(to + buttons.length) % buttons.length].focus(); // (focusin roves the Tab stop along)
  });
}

// --- the row's "More" menu: one shared menu, the WAI-ARIA menu button pattern ---------------------
// A row carries only its frequent buttons, so a 1,000-leg table stays light.

const rowMenu = document.getElementById("row-menu");
let menuOpener = null;
const menuItems = () => [...rowMenu.querySelectorAll('[role="menuitem"]')];

function openRowMenu(opener, focus = "first") {
  if (menuOpener && menuOpener !== opener) closeRowMenu(false);
  menuOpener = opener;
  for (const item of menuItems()) item.dataset.callControlId = opener.dataset.menu;
  rowMenu.hidden = false;
  placeRowMenu(opener);
  opener.setAttribute("aria-expanded", "true");
  const items = menuItems();
  (focus === "last" ? items.at(-1) : items[0]).focus();
}

// Beside its button, inside the window: never stretched to the window's edge, flipped up near the bottom.
function placeRowMenu(opener) {
  const rect = opener.getBoundingClientRect();
  const { offsetWidth: width, offsetHeight: height } = rowMenu;
  const left = Math.max(8, Math.min(rect.right - width, window.innerWidth - width - 8));
  let top = rect.bottom + 4;
  if (top + height > window.innerHeight - 8) top = Math.max(8, rect.top - height - 4);
  Object.assign(rowMenu.style, { left: `${left}px`, top: `${top}px` });
}

function closeRowMenu(returnFocus = true) {
  if (!rowMenu || rowMenu.hidden) return;
  rowMenu.hidden = true;
  const opener = menuOpener;
  menuOpener = null;
  if (!opener) return;
  opener.setAttribute("aria-expanded", "false");
  if (returnFocus && opener.isConnected) opener.focus();
}

rowMenu?.addEventListener("keydown", (event) => {
  const items = menuItems();
  const at = items.indexOf(document.activeElement);
  const go = (index) => {
    event.preventDefault();
    items[(index + items.length) % items.length].focus();
  };
  switch (event.key) {
    case "ArrowDown":
      return go(at + 1);
    case "ArrowUp":
      return go(at - 1);
    case "Home":
      return go(0);
    case "End":
      return go(items.length - 1);
    case "Escape":
      event.preventDefault();
      event.stopPropagation();
      return closeRowMenu(true);
    case "Tab":
      return closeRowMenu(true); // focus goes back to the button, then Tab moves on from there
  }
});

document.addEventListener("keydown", (event) => {
  const opener = event.target.closest?.("button[data-menu]");
  if (!opener || !["ArrowDown", "ArrowUp"].includes(event.key)) return;
  event.preventDefault();
  openRowMenu(opener, event.key === "ArrowUp" ? "last" : "first");
});

// The menu follows its row through a re-render: it stays open on the new row's button (a talker's row changes
// at every floor change, and it is the row a moderator most wants to act on). A row without the button any more
// (the caller left) closes it: the menu never acts for a caller who is not there.
document.addEventListener("row-replaced", (event) => {
  if (!menuOpener || ![menuOpener.dataset.menu, "*"].includes(event.detail.callControlId)) return; // "*": a snapshot
  const callControlId = menuOpener.dataset.menu;
  const row = document.querySelector(`#participants tr[data-call-control-id="${CSS.escape(callControlId)}"]`);
  const opener = row?.querySelector("button[data-menu]");
  if (opener) {
    menuOpener = opener;
    opener.setAttribute("aria-expanded", "true");
    placeRowMenu(opener);
    return;
  }
  const hadFocus = rowMenu.contains(document.activeElement);
  closeRowMenu(false);
  if (hadFocus) focusHeading(document.getElementById("legs-title"));
});

// --- clicks ----------------------------------------------------------------------------------------

document.addEventListener("click", async (event) => {
  const opener = event.target.closest("button[data-menu]");
  const openFor = menuOpener;
  if (rowMenu && !rowMenu.hidden && !event.target.closest("#row-menu")) closeRowMenu(Boolean(opener));
  if (opener) {
    if (opener !== openFor) openRowMenu(opener); // a second click on its button closes the menu
    return;
  }
  const button = event.target.closest("button[data-action]");
  if (!button || button.closest("#action-dialog") || button.getAttribute("aria-busy") === "true") return;
  if (button.getAttribute("aria-disabled") === "true") {
    toast(button.title, "info"); // a tap on a phone shows no tooltip: say why here
    return;
  }
  if (button.closest("#row-menu")) closeRowMenu(true);
  // In flight: a command sent at once marks its button; one with a dialog marks the dialog's submit instead.
  if (!ACTIONS[button.dataset.action]?.form) button.setAttribute("aria-busy", "true");
  try {
    const result = await perform(button);
    // Done, or done in part: the answer's note says what was not (a full conference admits fewer than asked).
    const label = button.textContent.replace("…", "").trim();
    if (result?.note) toast(`${label}: ${result.note}`, "info");
    else if (result !== null && result !== undefined) toast(`${label}: done`, "success");
  } catch (error) {
    // Telnyx's own refusal says what is wrong, not to what: the toast says which action, for whom.
    toast(error instanceof ApiFailure && error.status < 500 ? `${whatFor(button)} refused. ${error.message}` : error.message, "error");
  } finally {
    button.removeAttribute("aria-busy");
  }
});

function whatFor(button) {
  const what = button.textContent.replace(/[…●]/g, "").trim();
  const row = button.dataset.callControlId && live.rowOf(button.dataset.callControlId);
  const who = row?.querySelector(".name")?.textContent.trim();
  return who ? `${what} (${who})` : what;
}

document.getElementById("select-all")?.addEventListener("change", (event) => {
  // Everyone shown: a search narrows "everyone" to what it found.
  for (const box of document.querySelectorAll("#participants tr.leg:not(.filtered) .leg-select:not(:disabled)")) {
    box.checked = event.target.checked;
  }
  refreshAvailability();
});
document.getElementById("participants")?.addEventListener("change", (event) => {
  if (event.target.matches(".leg-select")) refreshAvailability();
});
document.addEventListener("live-updated", refreshAvailability);

// The conference ended: nothing can be changed any more, an open dialog or menu included.
document.addEventListener("conference-ended", () => {
  closeRowMenu(false);
  if (dialog?.open) {
    settle("resolve", null);
    toast("The conference has ended.", "info");
  }
});

refreshAvailability();
