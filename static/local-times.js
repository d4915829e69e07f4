// Show <time data-tz> in the reader's own clock (12 or 24 h) and language.
(function () {
  "use strict";
  document.querySelectorAll("time[data-tz]").forEach(function (t) {
    try {
      var format = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", timeZone: t.getAttribute("data-tz") });
      t.textContent = format.format(new Date(t.getAttribute("datetime")));
    } catch (e) { /* an unknown zone keeps the server's text */ }
  });
})();
