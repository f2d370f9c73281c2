// turnout dashboard, Settings -> Accounts: every change goes through /api/accounts/ and
// /api/tokens/ (the calls a script makes); a new password or token is shown once, then
// "Done" reloads the page to show the stored state.
(function () {
  "use strict";
  function $(id) { return document.getElementById(id); }
  function showError(boxId, answer) {
    var box = $(boxId);
    box.textContent = (answer.body && answer.body.error) ? answer.body.error.message : "request failed (" + answer.status + ")";
    box.classList.remove("d-none");
  }
  function clearErrors() { ["account-error", "token-error"].forEach(function (id) { $(id).classList.add("d-none"); }); }
  function showSecret(what, value) {
    $("secret-what").textContent = what;
    $("secret-value").textContent = value;
    $("secret-panel").classList.remove("d-none");
    $("secret-panel").scrollIntoView({block: "nearest"});
    $("secret-done").focus();
  }
  $("secret-done").addEventListener("click", function () { window.location.reload(); });
  $("secret-copy").addEventListener("click", function () {
    if (navigator.clipboard) { navigator.clipboard.writeText($("secret-value").textContent); }
  });
  function enc(name) { return encodeURIComponent(name); }

  $("account-form").addEventListener("submit", function (evt) {
    evt.preventDefault();
    clearErrors();
    var f = evt.target;
    var body = {username: f.elements.username.value.trim(), role: f.elements.role.value};
    if (f.elements.password.value) { body.password = f.elements.password.value; }
    turnoutFetch("/api/accounts/", {method: "POST", json: body}).then(function (answer) {
      if (answer.status !== 201) { showError("account-error", answer); return; }
      f.reset();
      if (answer.body.password) {
        showSecret("Account " + answer.body.username + " (" + answer.body.role + ") added. Its password:", answer.body.password);
      } else { window.location.reload(); }
    });
  });
  document.querySelectorAll("[data-role-of]").forEach(function (select) {
    var before = select.value;
    select.addEventListener("change", function () {
      clearErrors();
      var name = select.getAttribute("data-role-of");
      turnoutFetch("/api/accounts/" + enc(name), {method: "PATCH", json: {role: select.value}}).then(function (answer) {
        if (answer.status !== 200) { select.value = before; showError("account-error", answer); return; }
        window.location.reload();
      });
    });
  });
  document.querySelectorAll("[data-remove-user]").forEach(function (button) {
    button.addEventListener("click", function () {
      var name = button.getAttribute("data-remove-user");
      if (!window.confirm("Remove the account " + name + "? Its sessions end at once.")) { return; }
      clearErrors();
      turnoutFetch("/api/accounts/" + enc(name), {method: "DELETE"}).then(function (answer) {
        if (answer.status !== 200) { showError("account-error", answer); return; }
        window.location.reload();
      });
    });
  });
  $("token-form").addEventListener("submit", function (evt) {
    evt.preventDefault();
    clearErrors();
    var f = evt.target;
    turnoutFetch("/api/tokens/", {method: "POST", json: {name: f.elements.name.value.trim(), role: f.elements.role.value}})
      .then(function (answer) {
        if (answer.status !== 201) { showError("token-error", answer); return; }
        f.reset();
        showSecret("Token " + answer.body.name + " (" + answer.body.role + ", id " + answer.body.id + ") created:", answer.body.token);
      });
  });
  document.querySelectorAll("[data-revoke-token]").forEach(function (button) {
    button.addEventListener("click", function () {
      var id = button.getAttribute("data-revoke-token");
      if (!window.confirm("Revoke the token " + button.getAttribute("data-name") + "? Scripts using it stop working.")) { return; }
      clearErrors();
      turnoutFetch("/api/tokens/" + enc(id), {method: "DELETE"}).then(function (answer) {
        if (answer.status !== 200) { showError("token-error", answer); return; }
        window.location.reload();
      });
    });
  });
})();
