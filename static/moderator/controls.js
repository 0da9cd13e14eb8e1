// Moderator controls: every button with data-action posts to the actions API. The result shows up
// through the websocket in every tab; here we only show that a command is in flight, and why it failed.

import { live, toast } from "./live.js";

const dialog = document.getElementById("action-dialog");
const fieldsBox = document.getElementById("action-fields");
// Every action and verb of the page, declared once on the server (moderator/control/registry.py): what it
// posts, which legs it addresses and what its dialog asks for.
const ACTIONS = JSON.parse(document.getElementById("page-actions").textContent);

function csrfToken() {
  return document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] || "";
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(body),
  });
  let payload = {};
  try {
    payload = await response.json();
  } catch {
    payload = { error: { title: `HTTP ${response.status}`, detail: "The server answered without JSON." } };
  }
  if (!response.ok) {
    const error = payload.error || {};
    throw new Error([error.title, error.detail].filter(Boolean).join(": ") || `HTTP ${response.status}`);
  }
  return payload.data;
}

function field({ name, label, kind, options, required }) {
  const wrap = document.createElement("div");
  wrap.className = kind === "checkbox" ? "check" : "field";
  const id = `f-${name}`;
  let input;
  if (kind === "select") {
    input = document.createElement("select");
    for (const [value, text] of options) input.append(new Option(text, value));
  } else if (kind === "textarea") {
    input = document.createElement("textarea");
  } else if (kind === "legs" || kind === "conferences") {
    input = document.createElement("select");
    if (kind === "legs") {
      input.multiple = true;
      for (const row of live.joinedRows()) input.append(new Option(row.querySelector(".name").textContent, row.dataset.callControlId));
    } else {
      for (const card of document.querySelectorAll("#live-conferences .conference-card")) {
        input.append(new Option(card.querySelector("h3").textContent.trim(), card.dataset.conferenceId));
      }
    }
  } else {
    input = document.createElement("input");
    input.type = kind;
    // A checkbox with an option sends that option's value (trim: "trim-silence"), otherwise true.
    if (kind === "checkbox" && options.length) input.value = options[0][0];
  }
  input.name = name;
  input.id = id;
  input.required = required;
  const labelEl = Object.assign(document.createElement("label"), { textContent: label, htmlFor: id });
  kind === "checkbox" ? wrap.append(input, " ", labelEl) : wrap.append(labelEl, input);
  return wrap;
}

function formValues(form) {
  const values = {};
  for (const el of form.elements) {
    if (!el.name) continue;
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

// Ask for the action's parameters (or a confirmation); resolves to the values, or null if cancelled.
function ask(form, preset = {}) {
  if (!form) return Promise.resolve({});
  document.getElementById("action-dialog-title").textContent = form.title;
  fieldsBox.replaceChildren();
  if (form.confirm) fieldsBox.append(Object.assign(document.createElement("p"), { textContent: form.confirm }));
  for (const spec of form.fields || []) fieldsBox.append(field(spec));
  for (const [name, value] of Object.entries(preset)) {
    const input = fieldsBox.querySelector(`[name="${name}"]`);
    if (input) input.value = value;
  }
  const submit = document.getElementById("action-submit");
  submit.textContent = form.confirm ? form.title.replace("?", "") : "Send";
  submit.classList.toggle("danger", form.destructive);
  dialog.showModal();
  fieldsBox.querySelector("input, select, textarea")?.focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok" ? formValues(dialog.querySelector("form")) : null), { once: true });
  });
}

function targets(button) {
  if (button.dataset.callControlId) return [button.dataset.callControlId];
  switch (button.dataset.scope) {
    case "selected":
      return live.selectedIds();
    case "all-but-me": {
      const mine = new Set(live.myCallControlIds());
      if (!mine.size) throw new Error("Save your phone number in your profile so the dashboard knows which leg is yours.");
      return live.joinedRows().map((row) => row.dataset.callControlId).filter((id) => !mine.has(id));
    }
    default:
      return null; // everyone
  }
}

// Telnyx ids go into URL paths encoded: a v2 call_control_id may hold "/", "+" or "=".
const id = encodeURIComponent;

async function perform(button) {
  const spec = ACTIONS[button.dataset.action];
  if (!spec) throw new Error(`This page does not know the action "${button.dataset.action}".`);
  const conference = live.conferenceId;
  const callControlId = button.dataset.callControlId;
  const body = {};
  if (spec.targets === "leg") body.call_control_id = callControlId;
  if (spec.targets === "legs") {
    const legs = targets(button);
    if (button.dataset.scope === "selected" && !legs.length) throw new Error("Select one or more participants first.");
    if (legs) body.call_control_ids = legs;
  }
  const preset = button.dataset.action === "update" ? { supervisor_role: button.dataset.role || "none" } : {};
  // A caller in a room's waiting room is admitted into that room's conference unless the moderator picks another.
  if (button.dataset.conferenceId) preset.conference = button.dataset.conferenceId;
  const values = await ask(spec.form, preset);
  if (values === null) return null;
  const [on, api] = spec.api.split(":");
  switch (on) {
    case "resync":
      return post(`/api/conferences/${id(conference)}/resync`, {}).then(() => live.resync());
    case "create":
      return post("/api/conferences", { ...values, call_control_id: callControlId });
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

// One shared "More" menu for every row: a row carries only its frequent buttons, so a
// 1,000-leg table stays light.
const rowMenu = document.getElementById("row-menu");

function openRowMenu(opener) {
  const rect = opener.getBoundingClientRect();
  for (const item of rowMenu.querySelectorAll("button")) item.dataset.callControlId = opener.dataset.menu;
  Object.assign(rowMenu.style, { position: "fixed", top: `${rect.bottom + 4}px`, left: `${Math.max(8, rect.right - 200)}px` });
  rowMenu.hidden = false;
  rowMenu.querySelector("button").focus();
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && rowMenu && !rowMenu.hidden) rowMenu.hidden = true;
});

document.addEventListener("click", async (event) => {
  const opener = event.target.closest("button[data-menu]");
  if (rowMenu && !rowMenu.hidden && !event.target.closest("#row-menu")) rowMenu.hidden = true;
  if (opener) {
    openRowMenu(opener);
    return;
  }
  const button = event.target.closest("button[data-action]");
  if (!button || button.getAttribute("aria-busy") === "true") return;
  if (rowMenu) rowMenu.hidden = true;
  button.setAttribute("aria-busy", "true");
  try {
    const result = await perform(button);
    if (result !== null && result !== undefined) toast(`${button.textContent.replace("…", "").trim()}: done`, "success");
  } catch (error) {
    toast(error.message, "error");
  } finally {
    button.removeAttribute("aria-busy");
  }
});

document.getElementById("select-all")?.addEventListener("change", (event) => {
  for (const box of document.querySelectorAll("#participants .leg-select:not(:disabled)")) box.checked = event.target.checked;
});
