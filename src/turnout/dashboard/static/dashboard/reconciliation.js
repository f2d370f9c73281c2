// "Check against the marketplace": a background check with progress, and remedies through
// preview -> confirm. The page itself shows the last stored check.
(function () {
  "use strict";
  var live = document.getElementById("live-banner") !== null;
  var modalEl = document.getElementById("fix-modal");
  var modal = modalEl && window.bootstrap ? new window.bootstrap.Modal(modalEl) : null;
  var current = null;

  function esc(text) {
    var d = document.createElement("div"); d.textContent = text == null ? "" : String(text); return d.innerHTML;
  }
  function money(v) { return "$" + Number(v).toLocaleString(undefined, {minimumFractionDigits: 2, maximumFractionDigits: 2}); }
  function error(body) { return (body && body.error && body.error.message) || "the request failed"; }

  // --- the check -----------------------------------------------------------------------
  function follow(runId) {
    var wrap = document.getElementById("check-progress-wrap"), bar = document.getElementById("check-progress");
    var text = document.getElementById("check-progress-text");
    wrap.classList.remove("d-none");
    document.getElementById("check-now").disabled = true;
    function tick() {
      turnoutFetch("/api/reconciliation/checks/" + encodeURIComponent(runId), {method: "GET"}).then(function (r) {
        if (r.status !== 200) { text.textContent = error(r.body); return; }
        var c = r.body, total = c.hits_total, done = c.hits_done || 0;
        var pct = total ? Math.round(100 * done / total) : (c.state === "done" ? 100 : 0);
        bar.style.width = pct + "%"; bar.textContent = pct + "%";
        bar.parentElement.setAttribute("aria-valuenow", pct);
        text.textContent = "Checking: " + done.toLocaleString() + " of " + (total == null ? "?" : total.toLocaleString()) + " HITs";
        if (c.state === "running") { setTimeout(tick, 600); return; }
        if (c.state === "done") { window.location.reload(); return; }
        text.innerHTML = '<span class="text-danger">The check did not finish: ' + esc(c.error || c.state) + "</span>";
        document.getElementById("check-now").disabled = false;
      });
    }
    tick();
  }

  var form = document.getElementById("check-form");
  if (form) {
    form.addEventListener("submit", function (evt) {
      evt.preventDefault();
      var codeversion = document.getElementById("check-codeversion").value;
      turnoutFetch("/api/reconciliation/checks", {method: "POST", json: {codeversion: codeversion}}).then(function (r) {
        if (r.status !== 202) { document.getElementById("check-progress-text").textContent = error(r.body); return; }
        follow(r.body.run_id);
      });
    });
  }
  var running = document.getElementById("check-progress-wrap");
  if (running && running.dataset.runId) { follow(running.dataset.runId); }

  // --- remedies ------------------------------------------------------------------------
  function openFix(button) {
    var row = button.closest("tr");
    current = {assignment_id: row.dataset.assignment, remedy: button.dataset.remedy, money: button.dataset.money === "yes"};
    document.getElementById("fix-title").textContent = current.remedy + " · " + current.assignment_id;
    var box = document.getElementById("fix-preview"), confirm = document.getElementById("fix-confirm");
    document.getElementById("fix-result").innerHTML = "";
    var needsReason = current.remedy === "reject" || current.remedy === "pay_bonus";
    document.getElementById("fix-reason-wrap").classList.toggle("d-none", !needsReason);
    document.getElementById("fix-reason").value = current.remedy === "pay_bonus" ? "Bonus for your work on our study." : "";
    confirm.disabled = true;
    box.textContent = "Reading the assignment from the marketplace…";
    if (modal) { modal.show(); }
    turnoutFetch("/api/reconciliation/fix", {method: "POST", json: {assignment_id: current.assignment_id,
      remedy: current.remedy, preview: true}}).then(function (r) {
      if (r.status !== 200) { box.innerHTML = '<div class="alert alert-danger mb-0">' + esc(error(r.body)) + "</div>"; return; }
      var p = r.body;
      var html = "<p>" + esc(p.what) + ".</p>";
      if (p.money && Number(p.total) > 0) {
        html += '<dl class="row mb-0" id="fix-numbers">' +
          '<dt class="col-5">Pays</dt><dd class="col-7" data-preview="amount">' + money(p.amount) + "</dd>" +
          '<dt class="col-5">MTurk fee</dt><dd class="col-7" data-preview="fee">' + money(p.fee) + "</dd>" +
          '<dt class="col-5">Total</dt><dd class="col-7 fw-semibold" data-preview="total">' + money(p.total) + "</dd>" +
          '<dt class="col-5">Marketplace</dt><dd class="col-7"><code>' + esc(p.marketplace) + "</code></dd></dl>";
      } else {
        html += '<p class="mb-0 text-body-secondary" id="fix-no-money">No money moves.</p>';
      }
      if (live && p.money) { html += '<div class="alert alert-danger mt-2 mb-0">LIVE: this acts on real money.</div>'; }
      box.innerHTML = html;
      confirm.textContent = p.money && Number(p.total) > 0 ? "Confirm and pay " + money(p.total) : "Confirm";
      confirm.disabled = false;
      confirm.focus();
    });
  }

  function applyCounts(counts, assignmentId) {
    document.querySelectorAll('tr[data-assignment="' + CSS.escape(assignmentId) + '"]').forEach(function (tr) { tr.remove(); });
    var total = 0;
    document.querySelectorAll("[data-kind-count]").forEach(function (el) {
      var n = counts[el.dataset.kindCount] || 0; total += n;
      el.querySelector("[data-count]").textContent = n;
      el.classList.toggle("btn-warning", n > 0); el.classList.toggle("btn-outline-secondary", n === 0);
      el.classList.toggle("disabled", n === 0);
    });
    document.querySelectorAll("section[data-kind]").forEach(function (sec) {
      var n = counts[sec.dataset.kind] || 0;
      if (!n || !sec.querySelectorAll("tbody tr").length) { sec.remove(); } else { sec.querySelector("[data-group-count]").textContent = n; }
    });
    var shown = document.getElementById("difference-total");
    if (shown) { shown.textContent = total.toLocaleString(); }
    var badge = document.getElementById("reconcile-badge");
    if (badge) { if (total) { badge.firstChild.textContent = total; } else { badge.remove(); } }
  }

  function confirmFix() {
    if (!current) { return; }
    var confirm = document.getElementById("fix-confirm");
    confirm.disabled = true;  // one click, one payment (the ledger also refuses a second)
    var body = {assignment_id: current.assignment_id, remedy: current.remedy, confirm_live: true};
    var reason = document.getElementById("fix-reason").value;
    if (reason) { body.reason = reason; }
    turnoutFetch("/api/reconciliation/fix", {method: "POST", json: body}).then(function (r) {
      var out = document.getElementById("fix-result");
      if (r.status !== 200 || !r.body.ok) {
        out.innerHTML = '<div class="alert alert-danger mb-0">' + esc(r.status === 200 ? r.body.message : error(r.body)) + "</div>";
        return;
      }
      applyCounts(r.body.counts || {}, current.assignment_id);
      var flash = document.getElementById("fix-flash");
      flash.innerHTML = '<div class="alert alert-success alert-dismissible" role="status">' +
        esc(current.remedy + " " + current.assignment_id + ": " + r.body.message) +
        (r.body.paid ? " (paid " + esc(money(r.body.paid)) + ")" : "") +
        '<button type="button" class="btn-close" data-bs-dismiss="alert" aria-label="Close"></button></div>';
      if (modal) { modal.hide(); }
      if (r.body.remaining && r.body.remaining.length) { window.location.reload(); }
    });
  }

  document.addEventListener("click", function (evt) {
    var button = evt.target.closest("button[data-remedy]");
    if (button) { openFix(button); }
  });
  var confirmButton = document.getElementById("fix-confirm");
  if (confirmButton) { confirmButton.addEventListener("click", confirmFix); }
})();
