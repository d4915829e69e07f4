// Progressive enhancement of the booking page; the page works without it.
(function () {
  "use strict";
  var select = document.getElementById("tz");
  if (!select) return;
  var url = new URL(location.href);
  var browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

  // Show times in the invitee's own zone unless they picked one.
  if (!url.searchParams.has("tz") && browserZone && browserZone !== select.dataset.current &&
      document.querySelector("[data-oncecal-state=form]") && !document.querySelector(".field-error, .alert")) {
    url.searchParams.set("tz", browserZone);
    location.replace(url.toString());
    return;
  }

  // A form sent back with a problem: move focus to the message, so it is read out
  // first, and let its links put focus in the field they name.
  var summary = document.querySelector(".alert[role=alert]");
  if (summary) {
    summary.tabIndex = -1;
    summary.focus();
    summary.addEventListener("click", function (e) {
      var link = e.target.closest("a[href^='#']");
      var target = link && document.getElementById(link.getAttribute("href").slice(1));
      if (!target) return;
      if (target.tagName === "FIELDSET") target = target.querySelector("input:checked, input[type=radio]") || target;
      e.preventDefault();
      target.focus();
    });
  }

  // Offer the browser's full zone list; the server sends a short one.
  if (Intl.supportedValuesOf) {
    var current = select.value;
    var zones = Intl.supportedValuesOf("timeZone");
    if (zones.indexOf(current) < 0) zones.push(current);
    select.textContent = "";
    zones.forEach(function (z) {
      var option = new Option(z.replace(/_/g, " "), z, false, z === current);
      select.add(option);
    });
  }
  // The zone changes on an explicit action only (the button, or Enter), never on an
  // arrow key that merely moves the choice (WCAG 3.2.2); after the reload the picker
  // has the focus again.
  select.addEventListener("keydown", function (e) {
    if (e.key === "Enter") { e.preventDefault(); select.form.requestSubmit(); }
  });
  if (location.hash === "#tz") select.focus({ preventScroll: true });

  // Times in the invitee's own clock (12 or 24 h) and language.
  var format = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", timeZone: select.value });
  var spoken = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short", timeZone: select.value });
  document.querySelectorAll(".slot[data-start] time").forEach(function (t) {
    var when = new Date(t.getAttribute("datetime"));
    t.textContent = format.format(when);
    var input = document.getElementById(t.parentNode.getAttribute("for"));
    if (input) input.setAttribute("aria-label", spoken.format(when));
  });

  // One click books once; the server also answers a repeated post with the same booking.
  var form = document.querySelector(".booking-form");
  if (form) form.addEventListener("submit", function () {
    var button = form.querySelector("button[type=submit]");
    setTimeout(function () { button.disabled = true; button.textContent = "Booking…"; }, 0);
  });
})();
