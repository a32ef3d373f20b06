// The PCA scatter of mean embeddings, re-coloured by a header field the user
// picks, and the contact-map picker (which asks the server for one map).
(function () {
  var palette = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];

  function drawPca() {
    var source = document.getElementById("pca-data");
    var el = document.getElementById("pca-chart");
    if (!source || !el || !window.Plotly) return;
    var pca = JSON.parse(source.textContent);
    var field = document.getElementById("pca-colour").value;
    var traces = [];
    var hover = pca.ids.map(function (id, i) { return id + " (" + pca.lengths[i] + " aa)"; });
    if (field === "__length__") {
      traces.push({type: "scattergl", mode: "markers", x: pca.x, y: pca.y, text: hover,
                   hoverinfo: "text", marker: {color: pca.lengths, colorscale: "Viridis", showscale: true,
                   colorbar: {title: {text: "length"}}}});
    } else if (field) {
      var values = pca.fields[field], groups = {};
      values.forEach(function (v, i) { (groups[v || "(none)"] = groups[v || "(none)"] || []).push(i); });
      Object.keys(groups).sort().forEach(function (key, n) {
        var idx = groups[key];
        traces.push({type: "scattergl", mode: "markers", name: key,
                     x: idx.map(function (i) { return pca.x[i]; }), y: idx.map(function (i) { return pca.y[i]; }),
                     text: idx.map(function (i) { return hover[i]; }), hoverinfo: "text+name",
                     marker: {color: palette[n % palette.length]}});
      });
    } else {
      traces.push({type: "scattergl", mode: "markers", x: pca.x, y: pca.y, text: hover, hoverinfo: "text"});
    }
    window.Plotly.react(el, traces, {
      title: {text: pca.method},
      xaxis: {title: {text: "PC1 (" + (100 * pca.explained[0]).toFixed(1) + "%)"}},
      yaxis: {title: {text: "PC2 (" + (100 * pca.explained[1]).toFixed(1) + "%)"}},
      height: 480, showlegend: field !== "" && field !== "__length__"
    }, {responsive: true, displaylogo: false});
  }

  function init() {
    var colour = document.getElementById("pca-colour");
    if (colour) { colour.addEventListener("change", drawPca); drawPca(); }
    var seq = document.getElementById("contact-seq");
    if (seq) {
      // htmx reads hx-get when the request is made: point it at the chosen sequence.
      seq.addEventListener("htmx:configRequest", function (e) {
        e.detail.path = seq.dataset.base.replace(/\/0\/$/, "/" + seq.value + "/");
        delete e.detail.parameters.index;
      });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
