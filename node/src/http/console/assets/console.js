// ArtStore console: the little that needs a script. Copy buttons, uploads with progress, and the
// dashboard's live charts. Every page works for reading without it.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  setupCopy();
  setupUpload();
  setupCharts();
});

function setupCopy() {
  document.querySelectorAll("button.copy[data-copy-target]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () {
      var el = document.getElementById(b.dataset.copyTarget);
      if (!el || !navigator.clipboard) return;
      navigator.clipboard.writeText(el.textContent).then(function () {
        b.textContent = b.dataset.copied || "Copied";
      });
    });
  });
}

// Each chosen file goes up as its own request (the raw body streams; the name and metadata ride
// in the query), so one failure does not undo the others and each has its own progress bar.
function setupUpload() {
  var form = document.getElementById("upload");
  if (!form) return;
  var list = document.getElementById("upload-progress");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var files = document.getElementById("upload-files").files;
    var csrf = form.querySelector("input[name=csrf]").value;
    var params = {
      tags: document.getElementById("upload-tags").value,
      description: document.getElementById("upload-description").value,
      retention_policy: document.getElementById("upload-policy").value,
    };
    for (var i = 0; i < files.length; i++) send(files[i], params, csrf, list);
  });
}

function send(file, params, csrf, list) {
  var li = document.createElement("li");
  li.className = "upload";
  li.dataset.state = "uploading";
  var name = document.createElement("span");
  name.textContent = file.name;
  var bar = document.createElement("progress");
  bar.max = file.size || 1;
  bar.value = 0;
  var status = document.createElement("span");
  status.setAttribute("role", "status");
  li.append(name, bar, status);
  list.append(li);
  var q = new URLSearchParams({ name: file.name });
  Object.keys(params).forEach(function (k) { if (params[k]) q.set(k, params[k]); });
  var xhr = new XMLHttpRequest();
  xhr.open("POST", "/console/files/upload?" + q.toString());
  xhr.setRequestHeader("X-CSRF-Token", csrf);
  xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
  xhr.upload.addEventListener("progress", function (e) { if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; } });
  xhr.addEventListener("load", function () {
    var body = null;
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
    if (xhr.status >= 200 && xhr.status < 300 && body && body.id) {
      li.dataset.state = "done";
      bar.value = bar.max;
      var a = document.createElement("a");
      a.className = "uploaded-link";
      a.href = "/console/files/" + encodeURIComponent(body.id);
      a.textContent = body.name;
      status.textContent = "";
      status.append(a);
    } else {
      li.dataset.state = "failed";
      status.textContent = (body && body.error) ? body.error.code + ": " + body.error.message : "HTTP " + xhr.status;
    }
  });
  xhr.addEventListener("error", function () { li.dataset.state = "failed"; status.textContent = "network error"; });
  xhr.send(file);
}

// The dashboard's charts: the node keeps the last minutes of samples, so the page shows history
// at once and refreshes it every few seconds.
function setupCharts() {
  var req = document.getElementById("chart-requests");
  var cap = document.getElementById("chart-capacity");
  if (!req || !cap) return;
  var keep = 120;
  function tick() {
    fetch("/console/live.json", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body || !body.samples) return;
        var samples = body.samples;
        var rates = [[], [], []];
        for (var i = 1; i < samples.length; i++) {
          var dt = Math.max((samples[i].at_ms - samples[i - 1].at_ms) / 1000, 0.001);
          rates[0].push(Math.max(samples[i].uploads - samples[i - 1].uploads, 0) / dt);
          rates[1].push(Math.max(samples[i].downloads - samples[i - 1].downloads, 0) / dt);
          rates[2].push(Math.max(samples[i].errors - samples[i - 1].errors, 0) / dt);
        }
        // The x axis spans at least two minutes and at most what the node keeps.
        var width = Math.min(Math.max(rates[0].length, 24), keep);
        draw(req, rates, width);
        var used = samples.map(function (x) { return x.capacity_bytes ? x.used_bytes / x.capacity_bytes : 0; });
        // Scaled to what is used (an archive's disks fill over months, not minutes).
        var top = Math.max.apply(null, used.concat([1e-6])) * 1.25;
        draw(cap, [used], Math.min(Math.max(used.length, 25), keep + 1), top);
        var capLabel = document.getElementById("chart-capacity-now");
        if (capLabel && used.length) {
          capLabel.textContent = (100 * used[used.length - 1]).toFixed(used[used.length - 1] < 0.01 ? 4 : 1) + " %";
        }
        var label = document.getElementById("chart-requests-now");
        if (label && rates[0].length) {
          label.textContent = rates.map(function (r) { return r[r.length - 1].toFixed(1); }).join(" / ") + " /s";
        }
      })
      .catch(function () {});
  }
  tick();
  setInterval(tick, 5000);
}

function draw(svg, series, keep, fixedMax) {
  var max = fixedMax || 1;
  series.forEach(function (s) { s.forEach(function (v) { if (v > max) max = v; }); });
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  series.forEach(function (s, k) {
    var pts = s.slice(-keep).map(function (v, i, shown) {
      var x = (100 * (keep - shown.length + i)) / Math.max(keep - 1, 1);
      var y = 100 - (95 * v) / max;
      return x.toFixed(2) + "," + y.toFixed(2);
    });
    var line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("class", "s" + k);
    line.setAttribute("points", pts.join(" "));
    svg.append(line);
  });
}
