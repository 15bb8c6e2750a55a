/* Sealflow pages: small shared helpers (no dependencies, no inline script: the CSP forbids it). */
"use strict";

window.Sealflow = (function () {
  const STATE_ICONS = { queued: "○", processing: "◐", done: "✓", failed: "✕" };

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function formatWhen(iso) {
    if (!iso) { return "–"; }
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) { return "–"; }
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) +
      " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + " UTC";
  }

  function timeElement(iso) {
    if (!iso) { return document.createTextNode("–"); }
    const t = document.createElement("time");
    t.dateTime = iso;
    t.textContent = formatWhen(iso);
    return t;
  }

  function fileSize(size) {
    if (size === null || size === undefined) { return "–"; }
    let value = size;
    const units = ["B", "KB", "MB", "GB"];
    for (let i = 0; i < units.length; i += 1) {
      if (value < 1024 || i === units.length - 1) {
        return i === 0 ? Math.floor(value) + " B" : value.toFixed(1) + " " + units[i];
      }
      value /= 1024;
    }
    return size + " B";
  }

  function stateBadge(state) {
    const badge = document.createElement("span");
    badge.className = "state state-" + state;
    badge.dataset.state = state;
    const icon = document.createElement("span");
    icon.className = "state-icon";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = STATE_ICONS[state] || "•";
    badge.append(icon, " " + state);
    return badge;
  }

  function sessionExpired(statusElement, next) {
    statusElement.textContent = "";
    statusElement.classList.add("expired");
    statusElement.append("Your session has expired. ");
    const link = document.createElement("a");
    link.href = "/login?next=" + encodeURIComponent(next || window.location.pathname);
    link.textContent = "Sign in again";
    statusElement.append(link);
  }

  return { csrfToken, formatWhen, timeElement, fileSize, stateBadge, sessionExpired };
})();
