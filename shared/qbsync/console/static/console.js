// qbsync console: the few behaviours that need script. No inline script anywhere (the CSP allows 'self' only).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // The "Opening QuickBooks" page: go on to Intuit's consent screen (the link stays for a browser without script).
  var next = document.querySelector("a[data-redirect]");
  if (next) {
    window.location.assign(next.href);
    return;
  }
  // Pages showing work in progress (a sync run, a connection being made) reload themselves, a bounded number of
  // times, until it is finished.
  var live = document.querySelector("[data-autorefresh]");
  if (live) {
    var seconds = Math.max(1, Math.min(60, parseInt(live.getAttribute("data-autorefresh"), 10) || 3));
    var key = "qbsync-refreshes:" + window.location.pathname + window.location.search;
    var count = parseInt(window.sessionStorage.getItem(key) || "0", 10);
    if (count < 300) {
      window.sessionStorage.setItem(key, String(count + 1));
      window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
    }
  }
  // Destructive buttons ask first.
  document.querySelectorAll("button.danger").forEach(function (button) {
    button.form.addEventListener("submit", function (event) {
      if (!window.confirm(button.textContent.trim() + "?")) { event.preventDefault(); }
    });
  });
});
