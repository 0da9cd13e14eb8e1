// Live updates replace rows and panels whole. Whoever works by keyboard must not be thrown back to the top of
// the page by one: the control that had the focus is found again in what replaced it — the same control, or the
// one in its place (Mute becomes Unmute, the next caller's Admit when this one was admitted).

const FOCUSABLE = "a[href], button, input, select, textarea, [tabindex]";

function focusables(scope) {
  return [...scope.querySelectorAll(FOCUSABLE)].filter(
    (el) => !el.disabled && el.tabIndex >= 0 && !el.closest("[hidden]") && el.getClientRects().length,
  );
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
  const active = document.activeElement;
  if (active && active !== document.body) return; // the focus moved on meanwhile (a dialog, the user)
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

// Replace `scope`'s content (or `scope` itself: `replace` returns what replaced it) keeping the focus in place.
export function keepingFocus(scope, replace, ...fallbacks) {
  const saved = focusIn(scope);
  const replacement = replace() || scope;
  refocus(saved, replacement, ...fallbacks);
  return replacement;
}
