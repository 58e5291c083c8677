// Progressive enhancement for Mailroom's webmail. Every page works without
// this script; it adds live updates, select-all and confirmations.
"use strict";

(function () {
  // Buttons that destroy something ask first.
  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-confirm]");
    if (b && !window.confirm(b.getAttribute("data-confirm"))) e.preventDefault();
  });

  // "Select all" in a message list.
  document.addEventListener("change", function (e) {
    if (e.target.id !== "all") return;
    document.querySelectorAll('#messages input[name="uid"]').forEach(function (box) {
      box.checked = e.target.checked;
    });
  });

  // Live updates: when any of the user's folders changes (new mail, or a
  // flag or move made by another client), refetch this page and swap in
  // the folder list and the message list, keeping ticked boxes ticked.
  if (!document.body.hasAttribute("data-folder") || !window.EventSource) return;
  var pending = null;
  function refresh() {
    pending = null;
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var ticked = {};
        document.querySelectorAll('#messages input[name="uid"]:checked').forEach(function (b) { ticked[b.value] = true; });
        ["#folders", "#rows", "nav.pages"].forEach(function (sel) {
          var now = document.querySelector(sel), next = doc.querySelector(sel);
          if (now && next) now.replaceWith(next);
        });
        document.querySelectorAll('#messages input[name="uid"]').forEach(function (b) { if (ticked[b.value]) b.checked = true; });
      })
      .catch(function () {});
  }
  var events = new EventSource("/events");
  events.addEventListener("mailbox", function () {
    if (pending === null) pending = window.setTimeout(refresh, 250);
  });
})();
