/* OnceCal embed loader (PRODUCT.md "Embed"). No dependencies. Trusts messages
   only from a frame's own window and origin. */
(function (w, d) {
  "use strict";
  if (w.OnceCal) return;
  var handlers = {}, frames = [];

  function frameFor(el, url) {
    var u = new URL(url, d.baseURI), f = d.createElement("iframe");
    u.searchParams.set("embed", "1");
    u.searchParams.set("host", location.origin);
    // The invitee's zone spares the frame a reload.
    if (!u.searchParams.has("tz")) u.searchParams.set("tz", Intl.DateTimeFormat().resolvedOptions().timeZone);
    [["name", "prefillName"], ["email", "prefillEmail"], ["theme", "theme"]].forEach(function (p) {
      if (el.dataset[p[1]]) u.searchParams.set(p[0], el.dataset[p[1]]);
    });
    f.src = u.href;
    f.title = el.getAttribute("aria-label") || "Book a time";
    f.setAttribute("scrolling", "no");
    // A color-scheme unlike the frame's makes it opaque.
    var t = el.dataset.theme;
    f.style.cssText = "display:block;width:100%;height:560px;border:0;color-scheme:" +
      (/^(light|dark)$/.test(t) ? t : "light dark");
    frames.push({ frame: f, origin: u.origin, el: el, n: 0 });
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
        if (msg.type === "escape") return x.close && x.close();
        // A new page (the confirmation) shows from its top.
        var p = x.frame.parentNode;
        if (msg.type === "ready" && x.n++ && p.getBoundingClientRect().top < 0) p.scrollIntoView();
        return emit(x.el, msg);
      }
    }
  });

  function openPopup(button) {
    var overlay = d.createElement("div"), box = d.createElement("div"), close = d.createElement("button"),
      end = d.createElement("span"), root = d.documentElement, scrolled = [scrollX, scrollY], overflow = root.style.overflow;
    overlay.style.cssText = "position:fixed;inset:0;z-index:2147483647;background:rgba(15,18,30,.6);display:flex;align-items:flex-start;justify-content:center;overflow:auto;overscroll-behavior:contain;padding:4vh 12px";
    var dark = button.dataset.theme === "dark";
    box.style.cssText = "position:relative;width:100%;max-width:960px;border-radius:12px;padding:44px 8px 8px;background:" +
      (dark ? "#11141b" : "#fff");
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "true");
    box.setAttribute("aria-label", button.getAttribute("aria-label") || button.textContent.trim() || "Book a time");
    close.type = "button";
    close.textContent = "\u00d7";
    close.setAttribute("aria-label", "Close");
    // Fixed, so it stays in view while a phone scrolls the booking page under it.
    close.style.cssText = "position:fixed;top:8px;right:8px;z-index:1;width:40px;height:40px;font:28px/1 sans-serif;border:0;border-radius:50%;cursor:pointer;background:rgba(15,18,30,.75);color:#fff";
    // Tab past the frame's last field lands here and goes round to the close button.
    end.tabIndex = 0;
    end.onfocus = function () { close.focus(); };
    var frame = frameFor(button, button.dataset.oncecalPopup);
    frames[frames.length - 1].close = shut;
    box.append(close, frame, end);
    overlay.appendChild(box);

    function shut() {
      d.removeEventListener("keydown", onKey, true);
      overlay.remove();
      root.style.overflow = overflow;
      scrollTo(scrolled[0], scrolled[1]);
      frames = frames.filter(function (x) { return x.frame !== frame; });
      button.focus();
    }
    function onKey(e) {
      if (e.key === "Escape") shut();
      // Back from the close button: into the frame, not the page behind the overlay.
      if (e.key === "Tab" && e.shiftKey && d.activeElement === close) { e.preventDefault(); frame.focus(); }
    }
    close.onclick = shut;
    overlay.onclick = function (e) { if (e.target === overlay) shut(); };
    d.addEventListener("keydown", onKey, true);
    root.style.overflow = "hidden";
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
