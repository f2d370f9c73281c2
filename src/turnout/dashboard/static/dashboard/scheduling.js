// turnout dashboard: the Campaigns and Tasks pages talk to /api/campaigns/ and /api/tasks/
// (the same calls a script makes), then reload the page to show the stored state.
(function () {
  "use strict";
  function $(id) { return document.getElementById(id); }
  function showError(boxId, answer) {
    var box = $(boxId);
    var message = (answer.body && answer.body.error) ? answer.body.error.message : "request failed (" + answer.status + ")";
    box.textContent = message;
    box.classList.remove("d-none");
  }
  function clearError(boxId) { var box = $(boxId); if (box) { box.classList.add("d-none"); box.textContent = ""; } }
  function text(tag, value, cls) { var el = document.createElement(tag); el.textContent = value; if (cls) { el.className = cls; } return el; }
  function money(v) { return v === null || v === undefined ? "" : "$" + Number(v).toFixed(2); }

  // --- Campaigns: preview -> confirm --------------------------------------------------------
  var form = $("campaign-form");
  var pending = null;
  function campaignBody() {
    var body = {};
    ["goal", "per_round", "interval_minutes", "reward", "duration_hours", "budget", "mode", "codeversion"].forEach(function (name) {
      var value = form.elements[name].value.trim();
      if (value !== "") { body[name] = value; }
    });
    ["goal", "per_round", "interval_minutes"].forEach(function (name) {
      if (/^\d+$/.test(body[name] || "")) { body[name] = parseInt(body[name], 10); }
    });
    return body;
  }
  if (form) {
    form.addEventListener("submit", function (evt) {
      evt.preventDefault();
      clearError("campaign-error");
      var body = campaignBody();
      turnoutFetch("/api/campaigns/", {method: "POST", json: Object.assign({preview: true}, body)}).then(function (answer) {
        if (answer.status !== 200) { $("campaign-panel").classList.add("d-none"); showError("campaign-error", answer); return; }
        pending = body;
        var p = answer.body;
        var out = $("campaign-preview-body");
        out.textContent = "";
        var dl = document.createElement("dl");
        dl.className = "row small mb-0";
        dl.id = "preview-numbers";
        [["Mode / codeversion", p.mode + " / " + p.codeversion],
         ["Already complete", p.completed + " (" + p.remaining + " to go for a goal of " + p.goal + ")"],
         ["First round", "HITs of " + p.first_round_hits.join(" + ") + " assignment(s): " + money(p.first_round_cost) + " with fees"],
         ["Whole goal, if every assignment completes", money(p.full_cost) + " with fees"],
         ["Budget", p.budget ? money(p.budget) : "no limit"]].forEach(function (pair) {
          dl.appendChild(text("dt", pair[0], "col-sm-4 col-lg-3"));
          dl.appendChild(text("dd", pair[1], "col-sm-8 col-lg-9"));
        });
        out.appendChild(dl);
        $("live-confirm-row").classList.toggle("d-none", p.mode !== "live");
        $("confirm-live").checked = false;
        $("campaign-panel").classList.remove("d-none");
      });
    });
    $("campaign-back").addEventListener("click", function () { $("campaign-panel").classList.add("d-none"); pending = null; });
    $("campaign-confirm").addEventListener("click", function () {
      if (!pending) { return; }
      var body = Object.assign({}, pending);
      if (body.mode === "live") {
        if (!$("confirm-live").checked) { showError("campaign-error", {status: 400, body: {error: {message: "tick the LIVE box to start a live campaign"}}}); return; }
        body.confirm_live = true;
      }
      turnoutFetch("/api/campaigns/", {method: "POST", json: body}).then(function (answer) {
        if (answer.status !== 201) { showError("campaign-error", answer); return; }
        window.location.assign(window.location.pathname + "#campaign-" + answer.body.id);
        window.location.reload();
      });
    });
  }
  document.querySelectorAll("[data-goal-form]").forEach(function (f) {
    f.addEventListener("submit", function (evt) {
      evt.preventDefault();
      clearError("campaign-error");
      var goal = f.elements.goal.value.trim();
      turnoutFetch("/api/campaigns/" + f.dataset.goalForm, {method: "PATCH", json: {goal: /^\d+$/.test(goal) ? parseInt(goal, 10) : goal}})
        .then(function (answer) { if (answer.status !== 200) { showError("campaign-error", answer); } else { window.location.reload(); } });
    });
  });
  document.querySelectorAll("[data-cancel-form]").forEach(function (f) {
    f.addEventListener("submit", function (evt) {
      evt.preventDefault();
      clearError("campaign-error");
      if (!window.confirm("Cancel campaign " + f.dataset.cancelForm + "? No further rounds will be posted.")) { return; }
      turnoutFetch("/api/campaigns/" + f.dataset.cancelForm, {method: "PATCH", json: {is_active: false, expire_hits: f.elements.expire_hits.checked}})
        .then(function (answer) {
          if (answer.status !== 200) { showError("campaign-error", answer); return; }
          var failed = (answer.body.expired || []).filter(function (e) { return !e.ok; }).map(function (e) { return e.message; });
          if (answer.body.expire_error) { failed.unshift(answer.body.expire_error); }
          if (failed.length) {  // cancelled, but some HITs were not expired: say so and stay
            showError("campaign-error", {status: 200, body: {error: {message: "Cancelled; not expired: " + failed.join("; ") + " (expire them on the HITs page)"}}});
            return;
          }
          window.location.reload();
        });
    });
  });

  // --- Tasks ----------------------------------------------------------------------------------
  var taskForm = $("task-form");
  if (taskForm) {
    taskForm.addEventListener("submit", function (evt) {
      evt.preventDefault();
      clearError("task-error");
      var interval = taskForm.elements.interval_minutes.value.trim();
      var body = {kind: "approve-all", interval_minutes: /^\d+$/.test(interval) ? parseInt(interval, 10) : interval,
                  mode: taskForm.elements.mode.value, codeversion: taskForm.elements.codeversion.value.trim()};
      if (body.mode === "live") {
        if (!window.confirm("LIVE MTurk, real money: approve all submitted work every " + interval + " minutes without asking?")) { return; }
        body.confirm_live = true;
      }
      turnoutFetch("/api/tasks/", {method: "POST", json: body}).then(function (answer) {
        if (answer.status !== 201) { showError("task-error", answer); } else { window.location.reload(); }
      });
    });
  }
  document.querySelectorAll("[data-delete-task]").forEach(function (button) {
    button.addEventListener("click", function () {
      clearError("task-error");
      if (!window.confirm("Delete task " + button.dataset.deleteTask + "?")) { return; }
      turnoutFetch("/api/tasks/" + button.dataset.deleteTask, {method: "DELETE"}).then(function (answer) {
        if (answer.status !== 200) { showError("task-error", answer); } else { window.location.reload(); }
      });
    });
  });
})();
