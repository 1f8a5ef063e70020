/* The trader dashboard's only script: what htmx cannot do. It closes the drawer, and draws the
   charts (Chart.js, served from static/vendor) from the account's charts.json, refreshed while
   the page is open. No inline script or style anywhere: the CSP forbids both. */
(function () {
  "use strict";

  var REFRESH_MS = 5000;

  function closeDrawer() {
    var drawer = document.getElementById("drawer");
    if (drawer) drawer.innerHTML = "";
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-dismiss='drawer']")) closeDrawer();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closeDrawer();
  });

  var COLORS = { text: "#8b96a5", grid: "#2a3441", ratio: "#f0b90b", mark: "#6cb6ff",
                 liquidation: "#f6465d", warning: "#f0b90b", margin_call: "#ff8f3f" };

  function timeLabel(ms) {
    var d = new Date(ms);
    return d.toISOString().substring(11, 19);
  }

  function baseOptions(yTitle, percent) {
    return {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      plugins: { legend: { labels: { color: COLORS.text, boxWidth: 12 } },
                 tooltip: { callbacks: { title: function (items) {
                   return items.length ? timeLabel(items[0].parsed.x) + " UTC" : ""; } } } },
      scales: {
        x: { type: "linear", ticks: { color: COLORS.text, maxTicksLimit: 6, callback: timeLabel },
             grid: { color: COLORS.grid } },
        y: { title: { display: true, text: yTitle, color: COLORS.text },
             ticks: { color: COLORS.text, callback: percent
               ? function (v) { return +(v * 100).toPrecision(3) + "%"; } : undefined },
             grid: { color: COLORS.grid } }
      }
    };
  }

  function points(t, v) {
    var out = [];
    for (var i = 0; i < t.length; i++) if (v[i] !== null) out.push({ x: t[i], y: v[i] });
    return out;
  }

  function flat(t, y) {
    return t.length ? [{ x: t[0], y: y }, { x: t[t.length - 1], y: y }] : [];
  }

  // A threshold is drawn once the ratio comes within reach of it: drawn always, it would
  // squash a healthy 1% ratio flat against the axis.
  var THRESHOLD_REACH = 1.5;

  function ratioDatasets(data) {
    var t = data.ratio.t, th = data.thresholds;
    var top = Math.max.apply(null, data.ratio.v.filter(function (v) { return v !== null; })
                                               .concat([0]));
    var sets = [{ label: "Margin ratio", data: points(t, data.ratio.v),
                  borderColor: COLORS.ratio, pointRadius: 0, borderWidth: 2 }];
    [["Warning", th.warning, COLORS.warning], ["Margin call", th.margin_call, COLORS.margin_call],
     ["Liquidation", th.liquidation, COLORS.liquidation]].forEach(function (line) {
      if (line[1] <= top * THRESHOLD_REACH) {
        sets.push({ label: line[0], data: flat(t, line[1]), borderColor: line[2],
                    borderDash: [4, 4], pointRadius: 0, borderWidth: 1 });
      }
    });
    return sets;
  }

  function positionDatasets(series) {
    return [
      { label: series.symbol + " mark", data: points(series.t, series.mark),
        borderColor: COLORS.mark, pointRadius: 0, borderWidth: 2 },
      { label: "Liquidation price", data: points(series.t, series.liquidation),
        borderColor: COLORS.liquidation, borderDash: [5, 3], pointRadius: 0, borderWidth: 1.5 }
    ];
  }

  function drawOrUpdate(charts, key, canvas, datasets, options) {
    if (charts[key]) {
      charts[key].data.datasets = datasets;
      charts[key].update("none");
    } else {
      charts[key] = new window.Chart(canvas, { type: "line", data: { datasets: datasets },
                                               options: options });
    }
  }

  function positionCanvas(holder, symbol) {
    var box = holder.querySelector("[data-symbol='" + symbol + "']");
    if (!box) {
      box = document.createElement("div");
      box.className = "chart-box";
      box.setAttribute("data-symbol", symbol);
      box.appendChild(document.createElement("canvas"));
      holder.appendChild(box);
    }
    return box.querySelector("canvas");
  }

  function startCharts(section) {
    if (!window.Chart) return;
    var url = section.getAttribute("data-chart-url");
    var ratioCanvas = section.querySelector("[data-chart='ratio']");
    var holder = section.querySelector("[data-chart='positions']");
    var charts = {};
    function refresh() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) return;
          drawOrUpdate(charts, "ratio", ratioCanvas, ratioDatasets(data),
                       baseOptions("Margin ratio", true));
          var shown = {};
          data.positions.forEach(function (series) {
            shown[series.symbol] = true;
            drawOrUpdate(charts, series.symbol, positionCanvas(holder, series.symbol),
                         positionDatasets(series), baseOptions(series.symbol + " (USD)", false));
          });
          Object.keys(charts).forEach(function (key) {
            if (key !== "ratio" && !shown[key]) {
              charts[key].destroy();
              delete charts[key];
              var box = holder.querySelector("[data-symbol='" + key + "']");
              if (box) box.remove();
            }
          });
          section.setAttribute("data-loaded", "true");
        })
        .catch(function () { /* the next refresh tries again */ });
    }
    refresh();
    setInterval(refresh, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart-url]").forEach(startCharts);
  });
})();
