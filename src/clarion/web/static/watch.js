/* Clarion's campaign page: draws the per-minute chart (uPlot) from the JSON the report
   embeds, and again each time htmx brings a fresher report. No build step. */
(function () {
  "use strict";
  var drawn = new WeakMap();

  function draw(el) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source || typeof uPlot === "undefined") return;
    var d = JSON.parse(source.textContent);
    var old = drawn.get(el);
    if (old) old.destroy();
    var width = Math.max(280, el.clientWidth || 600);
    var plot = new uPlot({
      width: width,
      height: 260,
      scales: { x: { time: true } },
      axes: [{}, { label: "per minute" }],
      series: [
        {},
        { label: "Sent", stroke: "#0b5cad", width: 2 },
        { label: "Delivered", stroke: "#1d6b35", width: 2 },
        { label: "Clicks", stroke: "#a4161a", width: 2, dash: [6, 4] }
      ]
    }, [d.t, d.sent, d.delivered, d.clicks], el);
    el.setAttribute("data-drawn", String(d.t.length));
    drawn.set(el, plot);
  }

  function drawAll(root) {
    var charts = (root || document).querySelectorAll("[data-chart]");
    for (var i = 0; i < charts.length; i++) draw(charts[i]);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:load", function (e) { drawAll(e.target); });
})();
