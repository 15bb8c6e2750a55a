/* The jobs page: the table follows /web/api/events live; uploads go one file per request so
   each file gets its own progress bar (XMLHttpRequest upload progress). */
"use strict";

(function () {
  const S = window.Sealflow;
  const body = document.getElementById("jobs-body");
  const wrap = document.getElementById("jobs-wrap");
  const empty = document.getElementById("jobs-empty");
  const live = document.getElementById("live-status");
  const FINAL = new Set(["done", "failed"]);

  function cell(label, content, className) {
    const td = document.createElement("td");
    td.dataset.label = label;
    if (className) { td.className = className; }
    if (content !== undefined && content !== null) { td.append(content); }
    return td;
  }

  function renderRow(job) {
    const tr = document.createElement("tr");
    tr.dataset.jobId = job.job_id;
    const link = document.createElement("a");
    link.href = "/jobs/" + encodeURIComponent(job.job_id);
    link.textContent = job.filename;
    const type = document.createElement("code");
    type.textContent = job.content_type;
    tr.append(
      cell("Name", link, "name"),
      cell("Size", S.fileSize(job.size)),
      cell("Type", type),
      cell("State", S.stateBadge(job.state), "state-cell"),
      cell("Submitted", S.timeElement(job.created_at)),
      cell("Finished", S.timeElement(job.finished_at), "finished")
    );
    if (job.error_reason) { tr.title = job.error_reason + (job.error_detail ? ": " + job.error_detail : ""); }
    return tr;
  }

  function showJob(job) {
    const existing = body.querySelector('tr[data-job-id="' + CSS.escape(job.job_id) + '"]');
    const row = renderRow(job);
    if (existing) {
      const before = existing.querySelector(".state").dataset.state;
      existing.replaceWith(row);
      if (before !== job.state) {
        row.classList.add("changed");
        live.textContent = job.filename + " is " + job.state + ".";
      }
    } else {
      body.prepend(row);
      row.classList.add("changed");
    }
    wrap.hidden = false;
    empty.hidden = true;
  }

  function connect() {
    const source = new EventSource("/web/api/events");
    source.addEventListener("open", function () {
      live.classList.remove("expired");
      live.textContent = "Live: states update as they change.";
    });
    source.addEventListener("job", function (event) {
      try { showJob(JSON.parse(event.data)); } catch (error) { /* a malformed event is skipped */ }
    });
    source.addEventListener("error", function () {
      source.close();
      fetch("/web/api/jobs?limit=1", { credentials: "same-origin" }).then(function (response) {
        if (response.status === 401) {
          S.sessionExpired(live, "/");
          return;
        }
        live.textContent = "Reconnecting…";
        window.setTimeout(connect, 2000);
      }, function () {
        live.textContent = "Offline; retrying…";
        window.setTimeout(connect, 5000);
      });
    });
  }

  connect();

  /* -- uploads ------------------------------------------------------------------------- */
  const form = document.getElementById("upload-form");
  if (!form) { return; }
  const input = document.getElementById("file-input");
  const zone = document.getElementById("dropzone");
  const list = document.getElementById("upload-list");
  const status = document.getElementById("upload-status");
  const maxBytes = Number(form.dataset.maxBytes);
  const maxTextBytes = Number(form.dataset.maxTextBytes);
  const TEXT_FILE = /\.(txt|text|md|markdown|csv|json|html?)$/i;
  function limitFor(file) {
    const text = TEXT_FILE.test(file.name) || /^text\/|^application\/json$/.test(file.type);
    return text ? Math.min(maxBytes, maxTextBytes) : maxBytes;
  }
  const maxFiles = Number(form.dataset.maxFiles);
  const queue = [];
  let running = 0;
  const PARALLEL = 2;

  function uploadItem(file) {
    const li = document.createElement("li");
    li.className = "upload-item";
    const name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name;
    const size = document.createElement("span");
    size.className = "upload-size muted";
    size.textContent = S.fileSize(file.size);
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + file.name);
    const state = document.createElement("span");
    state.className = "upload-state";
    state.textContent = "waiting";
    li.append(name, size, bar, state);
    list.append(li);
    return { li, bar, state };
  }

  function finish(item, ok, text) {
    item.li.classList.add(ok ? "ok" : "failed");
    item.state.textContent = (ok ? "✓ " : "✕ ") + text;
    item.bar.value = ok ? 100 : item.bar.value;
  }

  function send(file, item) {
    running += 1;
    const data = new FormData();
    data.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/web/api/jobs");
    xhr.setRequestHeader("X-CSRF-Token", S.csrfToken());
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) {
        item.bar.value = Math.round((event.loaded / event.total) * 100);
        item.state.textContent = item.bar.value + "%";
      }
    });
    xhr.addEventListener("load", function () {
      const answer = xhr.response || {};
      if (xhr.status === 202 && answer.jobs && answer.jobs.length) {
        const job = answer.jobs[0];
        finish(item, true, "uploaded");
        showJob({
          job_id: job.job_id, filename: job.filename, size: file.size,
          content_type: file.type || "detected by the gateway", state: job.state,
          created_at: new Date().toISOString(), finished_at: null
        });
      } else if (xhr.status === 401) {
        finish(item, false, "session expired");
        S.sessionExpired(status, "/");
      } else {
        finish(item, false, answer.detail || ("refused (HTTP " + xhr.status + ")"));
      }
    });
    xhr.addEventListener("error", function () { finish(item, false, "network error"); });
    xhr.addEventListener("loadend", function () { running -= 1; pump(); });
    item.state.textContent = "0%";
    xhr.send(data);
  }

  function pump() {
    while (running < PARALLEL && queue.length) {
      const next = queue.shift();
      send(next.file, next.item);
    }
    if (!running && !queue.length) { status.textContent = "All uploads finished."; }
  }

  function add(files) {
    const chosen = Array.from(files);
    if (chosen.length > maxFiles) {
      status.textContent = "Only the first " + maxFiles + " files are uploaded.";
    } else {
      status.textContent = "Uploading " + chosen.length + " file" + (chosen.length === 1 ? "" : "s") + "…";
    }
    chosen.slice(0, maxFiles).forEach(function (file) {
      const item = uploadItem(file);
      if (file.size > limitFor(file)) {
        finish(item, false, "larger than " + S.fileSize(limitFor(file)));
        return;
      }
      queue.push({ file, item });
    });
    pump();
  }

  input.addEventListener("change", function () {
    if (input.files && input.files.length) { add(input.files); }
    input.value = "";
  });
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.remove("dragging");
    });
  });
  zone.addEventListener("drop", function (event) {
    if (event.dataTransfer && event.dataTransfer.files.length) { add(event.dataTransfer.files); }
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); });
})();
