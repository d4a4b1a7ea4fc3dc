// Longshore's dashboard: a little JavaScript of our own. The pages work
// without it; it adds confirmations and a live refresh of what is shown.
"use strict";

// Forms that change something a person should think twice about say so
// in `data-confirm`; a typed confirmation (`data-confirm-type`) asks for a
// word to be typed back.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const typed = form.dataset.confirmType;
  if (typed) {
    const answer = window.prompt(form.dataset.confirm || "Type to confirm", "");
    if (answer !== typed) {
      event.preventDefault();
    }
    return;
  }
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// Live refresh: a page whose <main> has `data-refresh` (seconds) fetches
// itself again that often, while the tab is visible and no form field has
// the focus, and swaps in its live regions (the elements with an id and
// `data-live`): what the page shows changes, the forms a person may be
// filling in do not.
(() => {
  const main = document.querySelector("main[data-refresh]");
  if (!main) {
    return;
  }
  const seconds = Math.max(2, Number(main.dataset.refresh) || 5);
  // Busy: a field has the focus, or rows of a live list are ticked (a
  // refresh would untick them).
  const busy = () => {
    const active = document.activeElement;
    return (active && ["INPUT", "SELECT", "TEXTAREA"].includes(active.tagName)) ||
      document.querySelector("[data-live] input[type=checkbox]:checked") !== null;
  };
  const refresh = async () => {
    if (document.hidden || busy()) {
      return;
    }
    try {
      const response = await fetch(window.location.href, { headers: { "X-Longshore-Refresh": "1" } });
      if (!response.ok || response.redirected) {
        return;
      }
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const region of document.querySelectorAll("[data-live][id]")) {
        const fresh = page.getElementById(region.id);
        if (fresh) {
          region.innerHTML = fresh.innerHTML;
        }
      }
    } catch (_) {
      // The server is away for a moment: the next tick tries again.
    }
  };
  window.setInterval(refresh, seconds * 1000);
})();
