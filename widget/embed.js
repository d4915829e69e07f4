/* OnceCal embed loader: turns .oncecal-inline[data-url] into an inline booking
   frame and [data-oncecal-popup] into a button that opens one in an overlay.
   No dependencies, no build step. Messages are trusted only from the frame's
   own window and origin. */
(function (w, d) {
  "use strict";
  if (w.OnceCal) return;
  var handlers = {}, frames = [];

  function frameFor(el, url) {
    var u = new URL(url, d.baseURI), f = d.createElement("iframe");
    u.searchParams.set("embed", "1");
    u.searchParams.set("host", location.origin);
    // Passing the invitee's zone spares the frame a reload to detect it.
    if (!u.searchParams.has("tz") && w.Intl) u.searchParams.set("tz", Intl.DateTimeFormat().resolvedOptions().timeZone);
    [["name", "prefillName"], ["email", "prefillEmail"], ["theme", "theme"]].forEach(function (p) {
      if (el.dataset[p[1]]) u.searchParams.set(p[0], el.dataset[p[1]]);
    });
    f.src = u.href;
    f.title = el.getAttribute("aria-label") || "Book a time";
    f.setAttribute("scrolling", "no");
    f.style.cssText = "display:block;width:100%;height:560px;border:0;overflow:hidden;background:transparent";
    frames.push({ frame: f, origin: u.origin, el: el });
    return f;
  }

  function emit(el, msg) {
    el.dispatchEvent(new CustomEvent("oncecal:" + msg.type, { bubbles: true, detail: msg }));
    (handlers[msg.type] || []).forEach(function (fn) { fn(msg, el); });
  }

  w.addEventListener("message", function (e) {
    var msg = e.data;
    if (!msg || msg.source !== "oncecal" || typeof msg.type !== "string") return;
    for (var i = 0; i < frames.length; i++) {
      var x = frames[i];
      if (x.frame.contentWindow === e.source && x.origin === e.origin) {
        if (msg.type === "resize" && msg.height > 0) x.frame.style.height = Math.ceil(msg.height) + "px";
        return emit(x.el, msg);
      }
    }
  });

  function openPopup(button) {
    var overlay = d.createElement("div"), box = d.createElement("div"), close = d.createElement("button");
    overlay.style.cssText = "position:fixed;inset:0;z-index:2147483647;background:rgba(15,18,30,.6);display:flex;align-items:flex-start;justify-content:center;overflow:auto;padding:4vh 12px";
    box.style.cssText = "position:relative;width:100%;max-width:960px;border-radius:12px;padding:36px 8px 8px;background:" +
      (button.dataset.theme === "dark" ? "#11141b" : "#fff");
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "true");
    box.setAttribute("aria-label", button.getAttribute("aria-label") || button.textContent.trim() || "Book a time");
    close.type = "button";
    close.textContent = "\u00d7";
    close.setAttribute("aria-label", "Close");
    close.style.cssText = "position:absolute;top:4px;right:8px;font:28px/1 sans-serif;background:none;border:0;cursor:pointer;padding:4px 8px;color:" +
      (button.dataset.theme === "dark" ? "#eee" : "#333");
    var frame = frameFor(button, button.getAttribute("data-oncecal-popup"));
    box.appendChild(close);
    box.appendChild(frame);
    overlay.appendChild(box);

    function shut() {
      d.removeEventListener("keydown", onKey, true);
      overlay.remove();
      frames = frames.filter(function (x) { return x.frame !== frame; });
      button.focus();
    }
    function onKey(e) { if (e.key === "Escape") shut(); }
    close.onclick = shut;
    overlay.onclick = function (e) { if (e.target === overlay) shut(); };
    d.addEventListener("keydown", onKey, true);
    d.body.appendChild(overlay);
    close.focus();
  }

  function scan(root) {
    if (!root.querySelectorAll) return;
    root.querySelectorAll(".oncecal-inline[data-url]").forEach(function (el) {
      if (el.dataset.oncecalReady) return;
      el.dataset.oncecalReady = "1";
      el.appendChild(frameFor(el, el.dataset.url));
    });
    root.querySelectorAll("[data-oncecal-popup]").forEach(function (el) {
      if (el.dataset.oncecalReady) return;
      el.dataset.oncecalReady = "1";
      el.addEventListener("click", function (e) { e.preventDefault(); openPopup(el); });
    });
  }

  w.OnceCal = {
    on: function (type, fn) { (handlers[type] = handlers[type] || []).push(fn); },
    scan: function () { scan(d); }
  };
  function start() {
    scan(d);
    new MutationObserver(function (list) {
      list.forEach(function (m) { m.addedNodes.forEach(function (n) { if (n.nodeType === 1) scan(n.parentNode || n); }); });
    }).observe(d.documentElement, { childList: true, subtree: true });
  }
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", start); else start();
})(window, document);
