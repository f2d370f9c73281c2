// The overview's completions plot (uPlot), redrawn after each htmx refresh: per hour while
// the completions span at most three days (the server sends "hourly" then), else per day,
// with the running total beside it.
(function () {
  "use strict";
  var plot = null;
  function series(data) {
    var hourly = data.hourly && data.hourly.length;
    var rows = hourly ? data.hourly : (data.daily || []);
    var step = (hourly ? 3600 : 86400) * 1000;
    var at = function (r) { return Date.parse(hourly ? r.hour + "Z" : r.day + "T00:00:00Z"); };
    var points = [], seen = {};
    rows.forEach(function (r) { seen[at(r)] = r.count; });
    if (!rows.length) { return null; }
    // Every step from one before the first to one after the last, empty ones as 0, so the
    // line does not jump across quiet hours and one point alone still shows.
    for (var t = at(rows[0]) - step; t <= at(rows[rows.length - 1]) + step; t += step) {
      points.push([t / 1000, seen[t] || 0]);
    }
    return {unit: hourly ? "per hour" : "per day", points: points};
  }
  function draw() {
    var holder = document.getElementById("completions-chart");
    var source = document.getElementById("completions-data");
    if (!holder || !source || typeof uPlot === "undefined") { return; }
    var s = series(JSON.parse(source.textContent || "{}"));
    if (plot) { plot.destroy(); plot = null; }
    holder.innerHTML = "";
    if (!s) { return; }
    var xs = [], each = [], total = [], sum = 0;
    s.points.forEach(function (p) { xs.push(p[0]); each.push(p[1]); sum += p[1]; total.push(sum); });
    plot = new uPlot({
      width: Math.max(holder.clientWidth, 300), height: 220,
      series: [{}, {label: s.unit, stroke: "#0d6efd", fill: "rgba(13,110,253,0.15)", width: 2,
                    paths: uPlot.paths.bars({size: [0.8, 40], align: 1}), points: {show: false}},
               {label: "in all", stroke: "#6c757d", width: 2, dash: [4, 4], scale: "total",
                paths: uPlot.paths.stepped({align: 1}), points: {show: false}}],
      scales: {total: {}},
      axes: [{}, {label: s.unit}, {side: 1, scale: "total", label: "in all", grid: {show: false}}]
    }, [xs, each, total], holder);
  }
  document.addEventListener("DOMContentLoaded", draw);
  document.body.addEventListener("htmx:afterSwap", draw);
})();
