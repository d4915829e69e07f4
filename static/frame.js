// Inside the embed iframe: tell the host page what happens, and only the host
// page: messages go to the `host` origin the loader passed, never to "*".
(function () {
  "use strict";
  var host = document.documentElement.getAttribute("data-host");
  if (!host || window.parent === window) return;
  function post(type, extra) {
    var msg = { source: "oncecal", type: type };
    for (var k in extra) msg[k] = extra[k];
    window.parent.postMessage(msg, host);
  }

  // Report the content's own height: the document never gets shorter than
  // the frame, so measuring it would never let the frame shrink.
  var content = document.body, last = 0;
  function resize() {
    var height = Math.ceil(content.getBoundingClientRect().height);
    if (height !== last) { last = height; post("resize", { height: height }); }
  }
  new ResizeObserver(resize).observe(content);

  var state = document.querySelector("[data-oncecal-state]");
  post("ready", {});
  resize();
  var kind = state && state.getAttribute("data-oncecal-state");
  if (kind === "booked") {
    post("booked", { booking: {
      ref: state.getAttribute("data-booking-ref"),
      start: state.getAttribute("data-booking-start"),
      end: state.getAttribute("data-booking-end"),
      timezone: state.getAttribute("data-booking-timezone")
    } });
  } else if (kind === "expired") {
    post("expired", {});
  }
  document.addEventListener("change", function (e) {
    if (e.target && e.target.name === "slot") post("slot_selected", { start: e.target.value });
  });
  // Keys pressed in the frame never reach the host page: a popup closes on Esc.
  // On its release, so the frame is not removed while the key is still down,
  // and only if its press was ours (not closing an open <select>, say).
  var escape = false;
  document.addEventListener("keydown", function (e) { escape = e.key === "Escape" && !e.defaultPrevented; });
  document.addEventListener("keyup", function (e) {
    if (e.key === "Escape" && escape) post("escape", {});
    escape = false;
  });
})();
