// The admin's inline tables (attendance, recordings) scroll sideways on a phone: a keyboard must reach them too.
document.addEventListener("DOMContentLoaded", () => {
  for (const group of document.querySelectorAll(".inline-group")) {
    group.tabIndex = 0;
    group.setAttribute("role", "region");
    group.setAttribute("aria-label", group.querySelector("h2")?.textContent.trim() || "Related records");
  }
});
