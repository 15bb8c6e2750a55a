/* The audit page's live tail: polls /web/api/audit with the page's filters and the last seq
   shown (after=), and puts new records on top. */
"use strict";

(function () {
  const S = window.Sealflow;
  const body = document.getElementById("audit-body");
  const empty = document.getElementById("audit-empty");
  const live = document.getElementById("live-status");
  const toggle = document.getElementById("live-tail");
  let lastSeq = Number(body.dataset.lastSeq);
  const EVERY_MS = 3000;
  const params = new URLSearchParams(window.location.search);
  for (const [key, value] of Array.from(params.entries())) {
    if (!value) { params.delete(key); }
  }
  params.delete("limit");
  params.set("limit", "200");

  function cell(label, content, className) {
    const td = document.createElement("td");
    td.dataset.label = label;
    if (className) { td.className = className; }
    td.append(content);
    return td;
  }

  function code(text) {
    const c = document.createElement("code");
    c.textContent = text;
    return c;
  }

  function row(record) {
    const event = record.event;
    const tr = document.createElement("tr");
    tr.className = "changed";
    const outcome = document.createElement("span");
    outcome.className = "outcome outcome-" + event.outcome;
    outcome.textContent = event.outcome;
    let job = document.createTextNode("–");
    if (event.job) {
      job = document.createElement("a");
      job.href = "/jobs/" + encodeURIComponent(event.job);
      job.append(code(event.job.slice(0, 8) + "…"));
    }
    const detail = [event.reason, event.detail].filter(Boolean).join(" — ");
    tr.append(
      cell("#", String(record.seq)),
      cell("When", S.timeElement(event.ts)),
      cell("Type", code(event.type)),
      cell("Outcome", outcome),
      cell("Actor", event.actor || "–"),
      cell("Source", event.source),
      cell("Job", job),
      cell("Detail", detail, "detail")
    );
    return tr;
  }

  function poll() {
    if (!toggle.checked) {
      live.textContent = "Live tail paused.";
      window.setTimeout(poll, EVERY_MS);
      return;
    }
    if (Number.isInteger(lastSeq) && lastSeq >= 0) { params.set("after", String(lastSeq)); }
    fetch("/web/api/audit?" + params.toString(), { credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401) {
          S.sessionExpired(live, window.location.pathname + window.location.search);
          return null;
        }
        if (!response.ok) {
          live.textContent = "The audit log cannot be read right now.";
          return null;
        }
        return response.json();
      })
      .then(function (answer) {
        if (!answer) { return; }
        let added = 0;
        answer.records.forEach(function (record) {
          if (record.seq > lastSeq) {
            body.prepend(row(record));
            lastSeq = record.seq;
            added += 1;
          }
        });
        if (added) { empty.hidden = true; }
        live.textContent = "Live tail: updated " + S.formatWhen(new Date().toISOString()) +
          (added ? " (" + added + " new)" : "");
        window.setTimeout(poll, EVERY_MS);
      })
      .catch(function () {
        live.textContent = "Offline; retrying…";
        window.setTimeout(poll, EVERY_MS * 2);
      });
  }

  window.setTimeout(poll, 500);
})();
