// Show a booking's time range in the reader's own clock (12 or 24 h) and language, the clock said once.
(function () {
  "use strict";
  document.querySelectorAll("[data-tz][data-start][data-end]").forEach(function (range) {
    try {
      var format = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", timeZone: range.getAttribute("data-tz") });
      range.textContent = format.formatRange(new Date(range.getAttribute("data-start")), new Date(range.getAttribute("data-end")));
    } catch (e) { /* an unknown zone keeps the server's text */ }
  });
})();
