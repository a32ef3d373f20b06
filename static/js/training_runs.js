// A training run's curves: the loss and validation-metric charts are drawn from
// the JSON in the live partial (#run-curves-data), and redrawn in place each
// time htmx swaps a fresh partial in, so the curves grow without a reload and
// keep their zoom. The comparison page draws its one chart the same way.
(function () {
  function figure(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  function react(id, fig) {
    var el = document.getElementById(id);
    if (!el || !fig || !window.Plotly) return;
    var layout = Object.assign({}, fig.layout, {uirevision: "keep"});
    window.Plotly.react(el, fig.data, layout, {responsive: true, displaylogo: false});
  }
  function drawCurves() {
    var curves = figure("run-curves-data");
    if (curves) {
      var box = document.getElementById("run-charts");
      if (box && (curves.loss.data.length || curves.metric.data.length)) box.hidden = false;
      react("loss-chart", curves.loss);
      react("metric-chart", curves.metric);
    }
    react("compare-chart", figure("compare-data"));
  }
  document.addEventListener("htmx:afterSettle", function (e) {
    if (e.target && e.target.id === "run-live") drawCurves();
  });
  if (document.readyState === "complete") drawCurves(); else window.addEventListener("load", drawCurves);
})();
