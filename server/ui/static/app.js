// quantdesk dashboard: CSRF header on every htmx request, the event bus as DOM events, uPlot charts.
(function () {
  "use strict";

  const csrf = document.querySelector('meta[name="csrf-token"]');
  document.addEventListener("htmx:configRequest", (event) => {
    if (csrf) event.detail.headers["X-CSRF-Token"] = csrf.content;
  });

  // One EventSource per page: each bus event becomes a `qd-<topic>` event on <body>, which the panels
  // that show that topic listen for (hx-trigger="qd-fill from:body"), so nothing polls.
  function followBus() {
    if (document.body.dataset.live !== "on" || !window.EventSource) return;
    const status = document.getElementById("live-status");
    const source = new EventSource("/ui/events");
    source.onopen = () => { status.textContent = "live"; status.dataset.state = "on"; };
    source.onerror = () => { status.textContent = "reconnecting…"; status.dataset.state = "off"; };
    source.onmessage = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch (_) { return; }
      document.body.dataset.lastSeq = String(event.seq);
      document.body.dispatchEvent(new CustomEvent("qd-" + event.topic, { detail: event }));
      document.body.dispatchEvent(new CustomEvent("qd-any", { detail: event }));
    };
  }

  const PALETTE = ["#1f6feb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2"];
  const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 6 });

  function formatValue(value, unit) {
    if (value == null || Number.isNaN(value)) return "–";
    if (unit === "USD") return "$" + new Intl.NumberFormat(undefined, { maximumFractionDigits: 2, minimumFractionDigits: 2 }).format(value);
    if (unit === "%") return number.format(value) + " %";
    return number.format(value) + (unit ? " " + unit : "");
  }

  function drawChart(figure) {
    if (figure.dataset.drawn) return;
    figure.dataset.drawn = "1";
    const spec = JSON.parse(figure.dataset.chart);
    if (!spec.x.length) {
      figure.insertAdjacentHTML("beforeend", '<p class="muted">No data yet.</p>');
      return;
    }
    const scales = [];
    const series = [{ label: spec.xLabel || (spec.time ? "time (UTC)" : "x") }];
    spec.series.forEach((s, i) => {
      const scale = s.scale || s.unit || "y";
      if (!scales.includes(scale)) scales.push(scale);
      const one = { label: s.label + (s.unit ? " (" + s.unit + ")" : ""), scale: scale,
                    stroke: s.color || PALETTE[i % PALETTE.length], width: 1.5,
                    value: (u, v) => formatValue(v, s.unit) };
      if (s.kind === "bars") { one.paths = uPlot.paths.bars({ size: [0.8, 8] }); one.fill = one.stroke + "66"; }
      if (s.kind === "points") { one.paths = () => null; one.points = { show: true, size: 7, fill: one.stroke }; }
      if (s.fill) one.fill = one.stroke + "22";
      series.push(one);
    });
    // iterations and window numbers are whole: no 1.5 ticks between them
    const wholeX = !spec.time && spec.x.every(Number.isInteger);
    const axes = [wholeX ? { label: spec.xLabel || undefined, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500] }
                         : { label: spec.xLabel || undefined }];
    scales.forEach((scale, i) => {
      const unit = (spec.series.find((s) => (s.scale || s.unit || "y") === scale) || {}).unit || "";
      axes.push({ scale: scale, side: i === 0 ? 3 : 1, label: unit || undefined, size: 70,
                  grid: { show: i === 0 }, values: (u, ticks) => ticks.map((t) => number.format(t)) });
    });
    const opts = { width: Math.max(figure.clientWidth, 240), height: spec.height || 220, series: series, axes: axes,
                   scales: { x: { time: !!spec.time } }, legend: { live: true } };
    const plot = new uPlot(opts, [spec.x, ...spec.series.map((s) => s.values)], figure);
    new ResizeObserver(() => plot.setSize({ width: Math.max(figure.clientWidth, 240), height: opts.height })).observe(figure);
  }

  function drawCharts(root) {
    if (!window.uPlot) return;
    (root.matches && root.matches("figure.chart[data-chart]") ? [root] : [])
      .concat(Array.from(root.querySelectorAll ? root.querySelectorAll("figure.chart[data-chart]") : []))
      .forEach(drawChart);
  }

  // A search box with data-filter hides the items that do not contain what is typed.
  document.addEventListener("input", (event) => {
    const box = event.target;
    if (!box.matches || !box.matches("input[data-filter]")) return;
    const words = box.value.toLowerCase().trim();
    document.querySelectorAll(box.dataset.filter).forEach((item) => {
      item.hidden = words !== "" && !(item.dataset.search || item.textContent).toLowerCase().includes(words);
    });
  });

  document.addEventListener("DOMContentLoaded", () => {
    drawCharts(document);
    document.body.addEventListener("htmx:load", (event) => drawCharts(event.detail.elt));
    followBus();
  });
})();
