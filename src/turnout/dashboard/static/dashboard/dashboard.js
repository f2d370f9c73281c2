// turnout dashboard: CSRF header on every htmx/fetch call, times in the viewer's zone.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute("content") : "";
  document.body.addEventListener("htmx:configRequest", function (evt) {
    evt.detail.headers["X-CSRFToken"] = token;
  });
  window.turnoutFetch = function (url, options) {
    options = options || {};
    options.headers = Object.assign({"X-CSRFToken": token, "Accept": "application/json"},
                                    options.headers || {});
    if (options.json !== undefined) {
      options.body = JSON.stringify(options.json);
      options.headers["Content-Type"] = "application/json";
      delete options.json;
    }
    options.credentials = "same-origin";
    return fetch(url, options).then(function (r) {
      return r.json().then(function (body) { return {status: r.status, body: body}; });
    });
  };
  function localTimes(root) {
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) { el.textContent = d.toLocaleString(); el.title = el.getAttribute("datetime"); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  document.body.addEventListener("htmx:afterSwap", function (evt) { localTimes(evt.target); });
  window.turnoutLocalTimes = localTimes;
})();
