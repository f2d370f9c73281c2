// Workers and HITs pages: batch preview -> confirm -> progress -> report, and row actions.
(function () {
  "use strict";
  var mode = (document.querySelector(".navbar .badge") || {}).textContent || "";
  var live = mode.trim() === "live";
  var panel = document.getElementById("batch-panel");
  var current = null;

  function esc(text) {
    var d = document.createElement("div"); d.textContent = text == null ? "" : String(text); return d.innerHTML;
  }
  function money(v) { return "$" + Number(v).toLocaleString(undefined, {minimumFractionDigits: 2, maximumFractionDigits: 2}); }
  function show(el, on) { if (el) { el.classList.toggle("d-none", !on); } }
  function error(body) { return (body && body.error && body.error.message) || "the request failed"; }

  function reasonFor(key) {
    var input = document.getElementById("reason-" + key);
    return input ? input.value : undefined;
  }

  function preview(button) {
    var body = {preview: true};
    var reason = reasonFor(button.dataset.key);
    if (reason !== undefined) { body.reason = reason; }
    current = {url: button.dataset.batch, key: button.dataset.key, reason: reason};
    show(panel, true);
    document.getElementById("batch-title").textContent = button.dataset.label;
    document.getElementById("batch-report").innerHTML = "";
    show(document.getElementById("batch-progress-wrap"), false);
    var box = document.getElementById("batch-preview");
    box.textContent = "Counting…";
    turnoutFetch(current.url, {method: "POST", json: body}).then(function (r) {
      if (r.status !== 200) { box.innerHTML = '<div class="alert alert-danger">' + esc(error(r.body)) + "</div>"; show(document.getElementById("batch-confirm-row"), false); return; }
      var p = r.body;
      box.innerHTML = '<dl class="row mb-0" id="preview-numbers">' +
        '<dt class="col-5">How many</dt><dd class="col-7" data-preview="count">' + esc(p.count) + "</dd>" +
        '<dt class="col-5">Rewards or bonuses</dt><dd class="col-7" data-preview="reward">' + money(p.reward) + "</dd>" +
        '<dt class="col-5">MTurk fees</dt><dd class="col-7" data-preview="fees">' + money(p.fees) + "</dd>" +
        '<dt class="col-5">Total</dt><dd class="col-7 fw-semibold" data-preview="total">' + money(p.total) + "</dd>" +
        '<dt class="col-5">Marketplace</dt><dd class="col-7"><code>' + esc(p.marketplace) + "</code></dd></dl>" +
        (live ? '<div class="alert alert-danger mt-2 mb-0">LIVE: this spends real money.</div>' : "");
      show(document.getElementById("batch-confirm-row"), true);
      document.getElementById("batch-confirm").focus();
    });
  }

  function poll(batchId, label) {
    show(panel, true);
    show(document.getElementById("batch-confirm-row"), false);
    if (label) { document.getElementById("batch-title").textContent = label; }
    var wrap = document.getElementById("batch-progress-wrap"), bar = document.getElementById("batch-progress");
    show(wrap, true);
    function tick() {
      turnoutFetch("/api/batches/" + encodeURIComponent(batchId), {method: "GET"}).then(function (r) {
        if (r.status !== 200) { document.getElementById("batch-report").textContent = error(r.body); return; }
        var b = r.body, finished = b.done + b.skipped + b.failed;
        var pct = b.total ? Math.round(100 * finished / b.total) : 100;
        bar.style.width = pct + "%"; bar.textContent = pct + "%"; wrap.setAttribute("aria-valuenow", pct);
        if (b.state !== "done") { setTimeout(tick, 700); return; }
        var rows = b.items.map(function (i) {
          return '<tr data-state="' + esc(i.state) + '"><td>' + esc(i.target) + "</td><td>" + esc(i.state) +
            "</td><td>" + esc(i.amount ? money(i.amount) : "") + "</td><td>" + esc(i.message) + "</td></tr>";
        }).join("");
        document.getElementById("batch-report").innerHTML =
          '<p id="batch-summary"><strong>Done:</strong> <span data-count="done">' + b.done + '</span> · <strong>skipped:</strong> <span data-count="skipped">' +
          b.skipped + '</span> · <strong>failed:</strong> <span data-count="failed">' + b.failed + "</span> of " + b.total +
          ' · <a href="">reload to see the new statuses</a></p>' +
          (rows ? '<table class="table table-sm small" id="batch-items"><thead><tr><th>target</th><th>result</th><th>amount</th><th>why</th></tr></thead><tbody>' + rows + "</tbody></table>" : "");
      });
    }
    tick();
  }

  function confirmRun() {
    if (!current) { return; }
    var body = {confirm_live: true};
    if (current.reason !== undefined) { body.reason = current.reason; }
    document.getElementById("batch-confirm").disabled = true;  // one click, one batch
    turnoutFetch(current.url, {method: "POST", json: body}).then(function (r) {
      document.getElementById("batch-confirm").disabled = false;
      if (r.status !== 202) { document.getElementById("batch-report").innerHTML = '<div class="alert alert-danger">' + esc(error(r.body)) + "</div>"; return; }
      poll(r.body.batch_id);
    });
  }

  // Delegated: the participants table (and its batch buttons) is replaced as its filter changes.
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-batch]");
    if (b) { preview(b); }
  });
  var confirmButton = document.getElementById("batch-confirm");
  if (confirmButton) { confirmButton.addEventListener("click", confirmRun); }
  var cancel = document.getElementById("batch-cancel");
  if (cancel) { cancel.addEventListener("click", function () { show(panel, false); current = null; }); }
  var running = document.getElementById("running-batch");
  if (running) { poll(running.dataset.batchId, running.dataset.label + " (running)"); }

  // Row actions (inline, through the same ledger).
  document.querySelectorAll("[data-op]").forEach(function (button) {
    button.addEventListener("click", function () {
      var op = button.dataset.op, id = button.closest("tr").dataset.assignment, body = {confirm_live: true};
      if (op === "reject") { var fb = window.prompt("Feedback to the worker (why the work is rejected):"); if (fb === null) { return; } body.feedback = fb; }
      if (op === "bonus") {
        var amount = window.prompt('Bonus in dollars (or "auto" for the bonus column):', "auto"); if (amount === null) { return; }
        var reason = window.prompt("Reason (shown to the worker):", "Thank you for your work."); if (reason === null) { return; }
        body.amount = amount; body.reason = reason;
      }
      if (live && !window.confirm("LIVE: " + op + " " + id + " with real money?")) { return; }
      button.disabled = true;
      turnoutFetch("/api/assignments/" + encodeURIComponent(id) + "/" + op, {method: "POST", json: body}).then(function (r) {
        var item = r.body.items && r.body.items[0];
        window.alert(r.status === 200 ? (item ? item.outcome + ": " + item.message : "done") : error(r.body));
        location.reload();
      });
    });
  });
  document.querySelectorAll("[data-hit-op]").forEach(function (button) {
    button.addEventListener("click", function () {
      var op = button.dataset.hitOp, id = button.closest("tr").dataset.hit, body = {confirm_live: true};
      if (op === "extend") {
        var n = window.prompt("Assignments to add (blank for none):", ""); if (n === null) { return; }
        var m = window.prompt("Minutes to add (blank for none):", "60"); if (m === null) { return; }
        body.assignments = n; body.minutes = m;
      } else if (!window.confirm(op.replace("_", " ") + " HIT " + id + "?")) { return; }
      button.disabled = true;
      turnoutFetch("/api/hits/" + encodeURIComponent(id) + "/" + op, {method: "POST", json: body}).then(function (r) {
        window.alert(r.status === 200 ? (r.body.message || "done") : error(r.body));
        location.reload();
      });
    });
  });
})();
