// The dashboard's script (served as a file: the Content-Security-Policy allows no inline script).
// The overview's chart (uPlot) and the live stream: each alert the server announces makes htmx reload the
// overview's live section. Text from articles is only ever set as textContent, never as HTML.
(function () {
  "use strict";
  const LEVEL_COLOURS = ["rgba(45,125,70,0.07)", "rgba(138,122,0,0.08)", "rgba(184,92,0,0.09)",
    "rgba(192,57,43,0.10)", "rgba(123,13,13,0.12)"];

  function bands(thresholds) {
    return function (u) {
      const ctx = u.ctx, left = u.bbox.left, width = u.bbox.width;
      const edges = [0].concat(thresholds, [Infinity]);
      ctx.save();
      for (let i = 0; i < edges.length - 1; i++) {
        const lo = u.valToPos(edges[i], "y", true);
        const hi = u.valToPos(Math.min(edges[i + 1], u.scales.y.max), "y", true);
        if (edges[i] > u.scales.y.max) break;
        ctx.fillStyle = LEVEL_COLOURS[i];
        ctx.fillRect(left, hi, width, lo - hi);
      }
      ctx.restore();
    };
  }

  let plot = null;

  function drawChart(box, data) {
    const c = data.chart, hover = document.getElementById("chart-hover");
    if (plot) { plot.destroy(); plot = null; }
    if (!c.x.length) {
      box.textContent = "No escalation readings stored yet.";
      box.dataset.ready = "empty";
      return;
    }
    const top = Math.max(c.thresholds[c.thresholds.length - 1] * 1.1, Math.max.apply(null, c.index.filter((v) => v != null).concat([0])) * 1.15);
    const opts = {
      width: Math.max(box.clientWidth, 600), height: 300,
      scales: { x: { time: true }, y: { range: [0, top] }, lvl: { range: [0.5, 5.5] } },
      axes: [{}, { label: "index" }, { side: 1, scale: "lvl", label: "level", grid: { show: false }, incrs: [1] }],
      series: [
        {},
        { label: "index", stroke: "#1f5fbf", width: 2, spanGaps: true },
        { label: "level", scale: "lvl", stroke: "#b85c00", width: 1, dash: [4, 4], spanGaps: true, paths: uPlot.paths.stepped({ align: 1 }) },
        { label: "events", stroke: "#a01818", fill: "#a01818", width: 0, paths: () => null, points: { show: true, size: 9, fill: "#a01818" } },
      ],
      hooks: {
        drawClear: [bands(c.thresholds)],
        setCursor: [function (u) {
          const i = u.cursor.idx;
          hover.textContent = i != null && c.labels[i] ? new Date(c.x[i] * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC — " + c.labels[i] : "";
        }],
      },
      legend: { show: true },
    };
    plot = new uPlot(opts, [c.x, c.index, c.level, c.markers], box);
    box.uplot = plot;  // for the browser tests, which hover a marker
    box.dataset.ready = "drawn";
  }

  function chart() {
    const box = document.getElementById("chart");
    if (!box) return;
    fetch(box.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))))
      .then((data) => drawChart(box, data))
      .catch((err) => { box.textContent = "The chart could not be loaded (" + err.message + ")."; box.dataset.ready = "failed"; });
  }

  function live() {
    const state = document.getElementById("live-state");
    if (!state || !window.EventSource) return;
    const source = new EventSource("/stream");
    source.addEventListener("ready", () => { state.textContent = "on"; document.body.dataset.live = "on"; });
    source.addEventListener("alert", () => { htmx.trigger(document.body, "monitor-alert"); chart(); });
    source.onerror = () => { state.textContent = "reconnecting…"; document.body.dataset.live = "off"; };
  }

  document.addEventListener("DOMContentLoaded", () => { chart(); live(); });
})();
