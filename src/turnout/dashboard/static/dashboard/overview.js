// The overview's completions plot (uPlot), redrawn after each htmx refresh.
(function () {
  "use strict";
  var plot = null;
  function draw() {
    var holder = document.getElementById("completions-chart");
    var source = document.getElementById("completions-data");
    if (!holder || !source || typeof uPlot === "undefined") { return; }
    var rows = JSON.parse(source.textContent || "[]");
    if (plot) { plot.destroy(); plot = null; }
    holder.innerHTML = "";
    if (!rows.length) { return; }
    var xs = [], daily = [], total = [], sum = 0;
    // Days without completions around the data, so one day alone does not stretch the axis.
    var day = 86400 * 1000, first = Date.parse(rows[0].day + "T00:00:00Z");
    var last = Date.parse(rows[rows.length - 1].day + "T00:00:00Z");
    rows = [{day: new Date(first - day).toISOString().slice(0, 10), count: 0}].concat(rows,
      [{day: new Date(last + day).toISOString().slice(0, 10), count: 0}]);
    rows.forEach(function (r) {
      xs.push(Date.parse(r.day + "T00:00:00Z") / 1000);
      daily.push(r.count); sum += r.count; total.push(sum);
    });
    plot = new uPlot({
      width: Math.max(holder.clientWidth, 300), height: 220,
      series: [{}, {label: "per day", stroke: "#0d6efd", width: 2, points: {show: true}},
               {label: "cumulative", stroke: "#6c757d", dash: [4, 4]}],
      axes: [{}, {label: "completions"}]
    }, [xs, daily, total], holder);
  }
  document.addEventListener("DOMContentLoaded", draw);
  document.body.addEventListener("htmx:afterSwap", draw);
})();
