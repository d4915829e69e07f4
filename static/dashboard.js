// Dashboard enhancements: keyboard tabs, copy buttons, confirmations.
(function () {
  "use strict";

  // Share dialog tabs (WAI-ARIA tabs pattern): arrows, Home and End move and show.
  var tabs = Array.prototype.slice.call(document.querySelectorAll("[role=tab]"));
  function select(tab, focus) {
    tabs.forEach(function (t) {
      var on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    });
    if (focus) tab.focus();
    history.replaceState(null, "", tab.href);
  }
  tabs.forEach(function (tab, i) {
    tab.addEventListener("click", function (e) { e.preventDefault(); select(tab, true); });
    tab.addEventListener("keydown", function (e) {
      var next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
      if (next === undefined) return;
      e.preventDefault();
      select(tabs[(next + tabs.length) % tabs.length], true);
    });
  });
  var dialog = document.getElementById("share-dialog");
  if (dialog) {
    var current = dialog.querySelector("[role=tab][aria-selected=true]");
    if (current) current.focus();
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape") location.href = dialog.querySelector(".close").href;
    });
  }

  // Copy: the Clipboard API where allowed, else select the text and execCommand.
  function feedback(id, text) {
    var el = document.querySelector('[data-feedback-for="' + id + '"]');
    if (!el) return;
    el.textContent = text;
    setTimeout(function () { el.textContent = ""; }, 4000);
  }
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-copy]");
    if (!button) return;
    var id = button.getAttribute("data-copy"), field = document.getElementById(id);
    field.focus();
    field.select();
    function fallback() {
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
      feedback(id, ok ? "Copied!" : "Selected: press Ctrl+C (⌘C) to copy.");
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(function () { feedback(id, "Copied!"); }, fallback);
    } else {
      fallback();
    }
  });

  // Ask before destructive posts.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
    });
  });
})();
