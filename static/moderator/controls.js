// Moderator controls: every button with data-action posts to the actions API. The result shows up
// through the websocket in every tab; here we only show that a command is in flight, and why it failed.

import { live, toast } from "./live.js";

const dialog = document.getElementById("action-dialog");
const fieldsBox = document.getElementById("action-fields");
const LANGUAGES = ["en-US", "en-GB", "en-AU", "de-DE", "es-ES", "es-US", "fr-FR", "fr-CA", "it-IT", "ja-JP", "nl-NL", "pt-BR"];

// What each action asks the moderator for. A field is [name, label, type, options].
const FORMS = {
  hold: { title: "Put on hold", fields: [["audio_url", "Hold music URL (optional)", "url"], ["media_name", "…or a stored media name", "text"]] },
  play: { title: "Play audio", fields: [["audio_url", "Audio URL", "url"], ["media_name", "…or a stored media name", "text"], ["loop", "Repeat", "select", ["1", "2", "3", "infinity"]]] },
  speak: { title: "Speak text", fields: [["payload", "Text (or SSML)", "textarea"], ["voice", "Voice", "select", ["female", "male"]], ["language", "Language", "select", LANGUAGES], ["payload_type", "Format", "select", ["text", "ssml"]]] },
  send_dtmf: { title: "Send DTMF", fields: [["digits", "Digits (0-9, *, #, A-D)", "text"]] },
  gather_using_audio: { title: "Gather digits", fields: [["audio_url", "Prompt audio URL", "url"], ["minimum_digits", "Minimum digits", "number"], ["maximum_digits", "Maximum digits", "number"], ["terminating_digit", "Terminating digit", "text"]] },
  record_start: { title: "Start recording", fields: [["format", "Format", "select", ["mp3", "wav"]], ["channels", "Channels", "select", ["single", "dual"]], ["play_beep", "Play a beep", "checkbox"], ["trim", "Trim silence", "checkbox"]] },
  update: { title: "Supervisor role", fields: [["supervisor_role", "Role", "select", ["none", "whisper", "barge", "monitor"]], ["whisper_call_control_ids", "Whisper to (for whisper)", "legs"]] },
  join: { title: "Add a call to this conference", fields: [["call_control_id", "Call control id of a parked call", "text"], ["mute", "Join muted", "checkbox"], ["supervisor_role", "Role", "select", ["none", "whisper", "barge", "monitor"]]] },
  enqueue: { title: "Move to a queue", fields: [["queue_name", "Queue name", "text"]] },
  create_conference: { title: "Start a new conference with this caller", fields: [["name", "Conference name", "text"]] },
  admit: { title: "Admit caller", fields: [["conference", "Into conference", "conferences"]] },
  end: { title: "End the conference?", confirm: "Everyone still on the call will be disconnected." },
  leave: { title: "Remove from the conference?", confirm: "The caller leaves the conference (the call stays up, parked)." },
  drop: { title: "Drop this caller?", confirm: "The caller is taken out of the queue and hung up." },
};

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

function field([name, label, type, options = []]) {
  const wrap = document.createElement("div");
  wrap.className = type === "checkbox" ? "check" : "field";
  const id = `f-${name}`;
  let input;
  if (type === "select") {
    input = document.createElement("select");
    for (const option of options) input.append(new Option(option, option));
  } else if (type === "textarea") {
    input = document.createElement("textarea");
  } else if (type === "legs" || type === "conferences") {
    input = document.createElement("select");
    if (type === "legs") {
      input.multiple = true;
      for (const row of live.joinedRows()) input.append(new Option(row.querySelector(".name").textContent, row.dataset.callControlId));
    } else {
      for (const card of document.querySelectorAll("#live-conferences .conference-card")) {
        input.append(new Option(card.querySelector("h3").textContent.trim(), card.dataset.conferenceId));
      }
    }
  } else {
    input = document.createElement("input");
    input.type = type;
  }
  input.name = name;
  input.id = id;
  const labelEl = Object.assign(document.createElement("label"), { textContent: label, htmlFor: id });
  type === "checkbox" ? wrap.append(input, " ", labelEl) : wrap.append(labelEl, input);
  return wrap;
}

function formValues(form) {
  const values = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === "checkbox") {
      if (el.checked) values[el.name] = el.name === "trim" ? "trim-silence" : true;
    } else if (el.multiple) {
      const chosen = [...el.selectedOptions].map((o) => o.value);
      if (chosen.length) values[el.name] = chosen;
    } else if (el.value !== "") {
      values[el.name] = el.type === "number" || (el.name === "loop" && el.value !== "infinity") ? Number(el.value) : el.value;
    }
  }
  return values;
}

// Ask for the action's parameters (or a confirmation); resolves to the values, or null if cancelled.
function ask(action, preset = {}) {
  const form = FORMS[action];
  if (!form) return Promise.resolve({});
  document.getElementById("action-dialog-title").textContent = form.title;
  fieldsBox.replaceChildren();
  if (form.confirm) fieldsBox.append(Object.assign(document.createElement("p"), { textContent: form.confirm }));
  for (const spec of form.fields || []) fieldsBox.append(field(spec));
  for (const [name, value] of Object.entries(preset)) {
    const input = fieldsBox.querySelector(`[name="${name}"]`);
    if (input) input.value = value;
  }
  document.getElementById("action-submit").textContent = form.confirm ? form.title.replace("?", "") : "Send";
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
  const action = button.dataset.action;
  const conference = live.conferenceId;
  const callControlId = button.dataset.callControlId;
  if (action === "resync") return post(`/api/conferences/${id(conference)}/resync`, {}).then(() => live.resync());
  const legs = targets(button);
  if (button.dataset.scope === "selected" && !legs.length) throw new Error("Select one or more participants first.");
  const preset = action === "update" ? { supervisor_role: button.dataset.role || "none" } : {};
  // A caller in a room's waiting room is admitted into that room's conference unless the moderator picks another.
  if (action === "admit" && button.dataset.conferenceId) preset.conference = button.dataset.conferenceId;
  const values = await ask(action, preset);
  if (values === null) return null;
  switch (action) {
    case "admit":
      return post(`/api/conferences/${id(values.conference)}/actions/join`, { call_control_id: callControlId });
    case "create_conference":
      return post("/api/conferences", { call_control_id: callControlId, name: values.name });
    case "drop":
      return post(`/api/calls/${id(callControlId)}/actions/hangup`, {});
    case "enqueue":
      return post(`/api/calls/${id(callControlId)}/actions/enqueue`, values);
    case "leave":
    case "update":
    case "gather_using_audio":
      return post(`/api/conferences/${id(conference)}/actions/${action}`, { ...values, call_control_id: callControlId });
    case "join":
    case "end":
    case "record_start":
    case "record_pause":
    case "record_resume":
    case "record_stop":
      return post(`/api/conferences/${id(conference)}/actions/${action}`, values);
    default:
      return post(`/api/conferences/${id(conference)}/actions/${action}`, legs ? { ...values, call_control_ids: legs } : values);
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
