// Live updates replace rows and panels whole. Whoever works by keyboard must not be thrown back to the top of
// the page by one: the control that had the focus is found again in what replaced it — the same control, or the
// one in its place (Mute becomes Unmute, the next caller's Admit when this one was admitted).

const FOCUSABLE = "a[href], button, input, select, textarea, [tabindex]";

function focusables(scope) {
  return [...scope.querySelectorAll(FOCUSABLE)].filter(
    (el) => !el.disabled && el.tabIndex >= 0 && !el.closest("[hidden]") && el.getClientRects().length,
  );
}

// Whether the focus is nowhere a person can see: on the page itself, or still on an element that was just hidden
// (the Send of a dialog that closed: the browser moves it to the page only at its next rendering).
function focusLost() {
  const active = document.activeElement;
  return !active || active === document.body || !active.getClientRects().length;
}

// What makes a control the same control after a re-render: not the element, which is new.
function keyOf(el) {
  if (el.id) return `#${el.id}`;
  const { action, callControlId, menu, queue, ban, role } = el.dataset;
  return [el.tagName, el.getAttribute("href"), el.name, el.value, action, callControlId, menu, queue, ban, role].join("|");
}

// Before a re-render of `scope`: where the focus is in it, if it is.
export function focusIn(scope) {
  const active = document.activeElement;
  if (!scope || !active || active === document.body || !scope.contains(active)) return null;
  return { key: keyOf(active), index: focusables(scope).indexOf(active) };
}

// After it: focus the same control in `scope` (what replaced the old scope, or the old scope refilled), else the
// one at its place, else the first of `fallbacks` that has a control (or is itself focusable).
export function refocus(saved, scope, ...fallbacks) {
  if (!saved) return;
  if (!focusLost()) return; // the focus moved on meanwhile (a dialog, the user)
  const controls = scope?.isConnected ? focusables(scope) : [];
  let target = controls.find((el) => keyOf(el) === saved.key) || controls[Math.min(saved.index, controls.length - 1)];
  for (const fallback of fallbacks) {
    if (target || !fallback?.isConnected) continue;
    target = focusables(fallback)[0] || (fallback.matches(FOCUSABLE) ? fallback : null);
    if (!target && fallback.matches("h1, h2, h3")) {
      focusHeading(fallback);
      return;
    }
  }
  target?.focus({ preventScroll: true });
}

// Where no control is left, the section's heading takes the focus: the reader stays in place.
export function focusHeading(heading) {
  if (!heading) return;
  heading.tabIndex = -1;
  heading.focus();
}

// The way back to a control once a dialog it opened has closed: to the control itself, or — an update replaced it
// while the dialog was open (a row re-rendered by the very action the dialog sent) — to the one in its place in
// the same row, list or panel (found again by their ids), else to the heading of the section it was in.
export function wayBack(control) {
  if (!control || control === document.body) return () => {};
  const key = keyOf(control);
  const places = []; // innermost first: how to find each again
  let index = -1;
  for (let el = control.parentElement; el && el.tagName !== "MAIN" && el !== document.body; el = el.parentElement) {
    const { callControlId, queue } = el.dataset;
    let selector = null;
    if (el.id) selector = `#${CSS.escape(el.id)}`;
    else if (callControlId) selector = `${el.tagName}[data-call-control-id="${CSS.escape(callControlId)}"]`;
    else if (queue) selector = `${el.tagName}[data-queue="${CSS.escape(queue)}"]`;
    if (selector) {
      if (!places.length) index = focusables(el).indexOf(control);
      places.push(() => document.querySelector(selector));
    }
    const heading = el.tagName === "SECTION" && el.querySelector("h1, h2");
    if (heading) places.push(heading.id ? () => document.getElementById(heading.id) : () => heading);
  }
  return () => {
    if (control.isConnected) {
      if (focusLost()) control.focus();
      return;
    }
    const [first, ...rest] = places.map((find) => find());
    refocus({ key, index }, first, ...rest);
  };
}

// Replace `scope`'s content (or `scope` itself: `replace` returns what replaced it) keeping the focus in place.
export function keepingFocus(scope, replace, ...fallbacks) {
  const saved = focusIn(scope);
  const replacement = replace() || scope;
  refocus(saved, replacement, ...fallbacks);
  return replacement;
}
