/* OnceCal embed loader: PRODUCT.md "Embed"; why each part is so: widget/README.md. */
(function (w, d) {
  "use strict";
  if (w.OnceCal) return;
  var handlers = {}, frames = [];
  function frameFor(el, url, height) {
    var u = new URL(url, d.baseURI), f = d.createElement("iframe"), t = el.dataset.theme;
    u.searchParams.set("embed", "1");
    u.searchParams.set("host", location.origin);
    if (!u.searchParams.has("tz")) u.searchParams.set("tz", Intl.DateTimeFormat().resolvedOptions().timeZone);
    [["name", "prefillName"], ["email", "prefillEmail"], ["theme", "theme"]].forEach(function (p) {
      if (el.dataset[p[1]]) u.searchParams.set(p[0], el.dataset[p[1]]);
    });
    f.src = u.href;
    f.title = el.ariaLabel || "Book a time";
    f.setAttribute("scrolling", "no");
    f.style.cssText = "display:block;width:100%;border:0;height:" + height +
      "px;background:repeating-linear-gradient(#8881 0 32px,#0000 0 44px);color-scheme:" + (/^(light|dark)$/.test(t) ? t : "light dark");
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
      var x = frames[i], s = x.frame.style;
      if (x.frame.contentWindow === e.source && x.origin === e.origin) {
        if (msg.type === "resize" && msg.height > 0) s.height = Math.ceil(msg.height) + "px";
        if (msg.type === "escape") return x.close && x.close();
        if (msg.type === "ready") s.background = "none";
        var p = x.frame.parentNode;
        if (msg.type === "ready" && x.n++ && p.getBoundingClientRect().top < 0) p.scrollIntoView();
        return emit(x.el, msg);
      }
    }
  });

  function openPopup(button) {
    var overlay = d.createElement("div"), box = d.createElement("div"), close = d.createElement("button"),
      end = d.createElement("span"), root = d.documentElement.style, overflow = root.overflow;
    overlay.style.cssText = "position:fixed;inset:0;z-index:2147483647;background:#0f121e99;overflow:auto;overscroll-behavior:contain;padding:4vh 12px";
    box.style.cssText = "margin:auto;max-width:960px;border-radius:12px;padding:44px 8px 8px;background:#" +
      (button.dataset.theme === "dark" ? "11141b" : "fff");
    box.role = "dialog";
    box.ariaModal = "true";
    box.ariaLabel = button.ariaLabel || button.textContent.trim() || "Book a time";
    close.type = "button";
    close.textContent = "\u00d7";
    close.ariaLabel = "Close";
    close.style.cssText = "position:fixed;top:8px;right:8px;width:40px;height:40px;font:28px/1 sans-serif;border:0;border-radius:50%;background:#0f121ebf;color:#fff";
    end.tabIndex = 0;
    end.onfocus = function () { close.focus(); };
    var frame = frameFor(button, button.dataset.oncecalPopup, 560);
    frames[frames.length - 1].close = shut;
    box.append(close, frame, end);
    overlay.appendChild(box);

    function shut() {
      d.removeEventListener("keydown", onKey, true);
      overlay.remove();
      root.overflow = overflow;
      frames = frames.filter(function (x) { return x.frame !== frame; });
      button.focus();
    }
    function onKey(e) {
      if (e.key === "Escape") shut();
      if (e.key === "Tab" && e.shiftKey && d.activeElement === close) { e.preventDefault(); frame.focus(); }
    }
    close.onclick = shut;
    overlay.onclick = function (e) { if (e.target === overlay) shut(); };
    d.addEventListener("keydown", onKey, true);
    root.overflow = "hidden";
    d.body.appendChild(overlay);
    close.focus();
  }

  function each(root, selector, fn) {
    root.querySelectorAll(selector).forEach(function (el) {
      if (!el.dataset.oncecalReady) fn(el, el.dataset.oncecalReady = "1");
    });
  }
  function scan(root) {
    if (!root.querySelectorAll) return;
    each(root, ".oncecal-inline[data-url]", function (el) {
      el.appendChild(frameFor(el, el.dataset.url, el.clientHeight || 560));
    });
    each(root, "[data-oncecal-popup]", function (el) {
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
