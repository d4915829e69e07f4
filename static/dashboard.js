// Dashboard enhancements: the Share dialog and its tabs, copy buttons, menus, confirmations.
// Every page works without it: tabs are links, the dialog closes through its × link.
(function () {
  "use strict";

  var dialog = document.getElementById("share-dialog");

  // Share dialog tabs (WAI-ARIA tabs pattern): arrows, Home and End move and show.
  var tabs = dialog ? Array.prototype.slice.call(dialog.querySelectorAll("[role=tab]")) : [];
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

  if (dialog) {
    // A modal: the page behind it is inert, so Tab and screen readers stay inside.
    var node = dialog.closest(".modal-backdrop");
    while (node && node.parentNode && node !== document.body) {
      Array.prototype.forEach.call(node.parentNode.children, function (sibling) {
        if (sibling !== node && sibling.tagName !== "SCRIPT") sibling.inert = true;
      });
      node = node.parentNode;
    }
    var closeUrl = dialog.querySelector(".close").href;
    var current = dialog.querySelector("[role=tab][aria-selected=true]");
    if (current) current.focus();
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && !e.defaultPrevented) location.href = closeUrl;
    });
    dialog.parentNode.addEventListener("click", function (e) {
      if (e.target === dialog.parentNode) location.href = closeUrl;
    });
  }

  // "⋯" menus: one open at a time; a click elsewhere or Escape closes them.
  var menus = Array.prototype.slice.call(document.querySelectorAll("details.menu"));
  menus.forEach(function (menu) {
    menu.addEventListener("toggle", function () {
      if (!menu.open) return;
      menus.forEach(function (other) { if (other !== menu) other.open = false; });
    });
  });
  document.addEventListener("click", function (e) {
    menus.forEach(function (menu) { if (menu.open && !menu.contains(e.target)) menu.open = false; });
  });
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    menus.forEach(function (menu) {
      if (!menu.open) return;
      menu.open = false;
      menu.querySelector("summary").focus();
      e.preventDefault();
    });
  });

  // Copy: the Clipboard API where allowed, else select the text and execCommand;
  // if that fails too, the text stays selected for the owner to copy.
  var timers = {};
  var shortcut = /Mac|iPhone|iPad/.test(navigator.platform || "") ? "⌘C" : "Ctrl+C";
  function feedback(id, text, keep) {
    var el = document.querySelector('[data-feedback-for="' + id + '"]');
    if (!el) return;
    clearTimeout(timers[id]);
    el.textContent = text;
    el.classList.toggle("warn", keep);
    if (!keep) timers[id] = setTimeout(function () { el.textContent = ""; }, 4000);
  }
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-copy]");
    if (!button) return;
    var id = button.getAttribute("data-copy"), field = document.getElementById(id);
    field.focus();
    field.select();
    field.setSelectionRange(0, field.value.length);
    function fallback() {
      var ok = false;
      field.focus();
      field.setSelectionRange(0, field.value.length);
      try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
      if (ok) feedback(id, "Copied!", false);
      else feedback(id, "Selected: press " + shortcut + " to copy.", true);
    }
    if (navigator.clipboard && navigator.clipboard.writeText && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(function () { feedback(id, "Copied!", false); }, fallback);
    } else {
      fallback();
    }
  });

  // A form sent back with errors: focus its first invalid field, whose label
  // and error (aria-describedby) are then read out.
  var invalid = document.querySelector("[aria-invalid=true]");
  if (invalid && !dialog) invalid.focus();

  // Ask before destructive posts.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
    });
  });

  // Slow posts (connecting to a calendar server): say so on the button, and send once.
  document.querySelectorAll("form[data-pending]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (e.defaultPrevented) return;
      var button = form.querySelector("button[type=submit]");
      if (!button) return;
      button.textContent = form.getAttribute("data-pending");
      button.disabled = true;
      form.setAttribute("aria-busy", "true");
    });
  });

  // Long texts: a count against the limit the server enforces (see the field macro).
  document.querySelectorAll("[data-count-limit]").forEach(function (field) {
    var count = document.getElementById(field.id + "-count");
    var limit = Number(field.dataset.countLimit);
    function show() {
      // Characters as the server counts them: code points, one per line break.
      var length = Array.from(field.value).length;
      count.textContent = length + " / " + limit + (length > limit ? ": " + (length - limit) + " too many" : "");
      count.classList.toggle("over", length > limit);
    }
    field.addEventListener("input", show);
    show();
  });
})();
