// 3Dmol.js molecular viewers, built from a JSON spec (Django's json_script):
//   <div class="mol-viewer" data-spec="ID of the json_script element"></div>
// The spec:
//   structure: {url | data, format}   the protein, as cartoon with hetero groups as sticks
//   ligands:   [{url | data, format}] extra molecules shown as sticks (a ligand SDF)
//   sites:     [{name, residues: [{chain, resi}], center: [x,y,z], size: [x,y,z]}]
//              residues highlighted as sticks, the box drawn as a wireframe
//   poses:     {url, format: "sdf"}   docked poses, one shown at a time, with a picker
//   importance:{title, blocks: [{label, value, atoms: [[x,y,z], ...]}]}
//              each block's atoms painted on a colour scale, with its legend;
//              a residue block paints its whole residue
// Once drawn, the element carries `viewer` (the 3Dmol viewer), `biofm` (what
// was loaded and shown) and data-ready="1"; a failure is written in the page.
(function () {
  var SITE_COLOURS = ["#e6007e", "#009e73", "#0072b2", "#e69f00", "#56b4e9", "#d55e00"];
  var SCALE = ["#ffffcc", "#fd8d3c", "#800026"];
  var HIDDEN_HETERO = ["HOH", "WAT", "DOD"];

  function load(part) {
    if (part.data !== undefined) return Promise.resolve(part.data);
    return fetch(part.url, {credentials: "same-origin"}).then(function (r) {
      if (!r.ok) throw new Error(part.url + ": HTTP " + r.status);
      return r.text();
    });
  }

  function note(el, text, cls) {
    var p = document.createElement("p");
    p.className = cls || "help";
    p.textContent = text;
    el.parentNode.insertBefore(p, el.nextSibling);
    return p;
  }

  function hex(n) { return "#" + ("000000" + n.toString(16)).slice(-6); }

  function sdfRecords(text) {
    return text.split(/\$\$\$\$\r?\n?/).filter(function (r) { return r.trim(); }).map(function (r) {
      return r + "$$$$\n";
    });
  }

  // SDF records as {title, score}: the picker's labels (the molecules themselves are 3Dmol's).
  function sdfTitles(text) {
    return sdfRecords(text).map(function (r) {
      var score = /> *<VINA_SCORE>[^\n]*\n\s*(\S+)/.exec(r);
      return {title: r.split(/\r?\n/)[0].trim(), score: score ? Number(score[1]) : null};
    });
  }

  function inBox(a, site) {
    return ["x", "y", "z"].every(function (k, i) { return Math.abs(a[k] - site.center[i]) <= site.size[i] / 2; });
  }

  function drawSites(viewer, el, sites) {
    var legend = document.createElement("ul");
    legend.className = "viewer-legend";
    sites.forEach(function (site, n) {
      var colour = SITE_COLOURS[n % SITE_COLOURS.length];
      site.colour = colour;
      var sel = {or: site.residues.map(function (r) { return {chain: r.chain, resi: r.resi}; })};
      if (site.residues.length) {
        viewer.setStyle(sel, {cartoon: {color: colour}, stick: {colorscheme: {prop: "elem", map: {C: colour}}, radius: 0.2}});
      }
      site.atoms = site.residues.length ? viewer.selectedAtoms(sel).length : 0;
      if (site.center && site.size) {
        viewer.addBox({center: {x: site.center[0], y: site.center[1], z: site.center[2]},
                       dimensions: {w: site.size[0], h: site.size[1], d: site.size[2]},
                       color: colour, wireframe: true});
      }
      var li = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "link";
      button.textContent = site.name;
      button.style.color = colour;
      button.addEventListener("click", function () {
        if (site.residues.length) viewer.zoomTo(sel, 500);
        else if (site.center) viewer.zoomTo({predicate: function (a) { return inBox(a, site); }}, 500);
      });
      li.appendChild(button);
      li.appendChild(document.createTextNode(" (" + site.residues.length + " residues, box " +
                                             (site.size || []).join(" × ") + " Å)"));
      legend.appendChild(li);
    });
    el.parentNode.insertBefore(legend, el.nextSibling);
  }

  function drawPoses(viewer, el, text, format, state) {
    // One model per record, so that the picker's entries and the models line up.
    var records = sdfRecords(text);
    var models = records.map(function (r) { return viewer.addModel(r, format); });
    var titles = sdfTitles(text);
    state.poses = models.map(function (m, i) { return {model: m, title: (titles[i] || {}).title || "pose " + (i + 1),
                                                        score: (titles[i] || {}).score}; });
    if (!models.length) { note(el, "No pose to show.", "error"); return; }
    var label = document.createElement("label");
    label.textContent = "Pose ";
    var picker = document.createElement("select");
    picker.className = "pose-picker";
    state.poses.forEach(function (p, i) {
      var o = document.createElement("option");
      o.value = String(i);
      o.textContent = p.title + (p.score == null ? "" : " (" + p.score.toFixed(2) + " kcal/mol)");
      picker.appendChild(o);
    });
    label.appendChild(picker);
    el.parentNode.insertBefore(label, el);
    state.showPose = function (i) {
      state.poses.forEach(function (p, n) {
        viewer.setStyle({model: p.model}, n === i ? {stick: {colorscheme: "greenCarbon", radius: 0.25}} : {});
      });
      state.shownPose = i;
      picker.value = String(i);
      viewer.render();
    };
    picker.addEventListener("change", function () { state.showPose(Number(picker.value)); });
    state.showPose(0);
  }

  // Atoms by rounded coordinates, so a block's atoms (from the job's record) are found in the structure.
  function atomIndex(viewer) {
    var index = {};
    viewer.selectedAtoms({}).forEach(function (a) {
      index[[a.x.toFixed(1), a.y.toFixed(1), a.z.toFixed(1)].join(",")] = a;
    });
    return function (xyz) {
      var key = xyz.map(function (v) { return Number(v).toFixed(1); }).join(",");
      var a = index[key];
      return a && Math.abs(a.x - xyz[0]) + Math.abs(a.y - xyz[1]) + Math.abs(a.z - xyz[2]) < 0.05 ? a : null;
    };
  }

  function drawImportance(viewer, el, importance, state) {
    var values = importance.blocks.map(function (b) { return b.value; });
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    if (hi <= lo) hi = lo + 1e-9;
    var gradient = new $3Dmol.Gradient.CustomLinear(lo, hi, SCALE);
    var find = atomIndex(viewer);
    var painted = 0;
    state.blocks = importance.blocks.map(function (block) {
      var colour = hex(gradient.valueToHex(block.value));
      var atoms = block.atoms.map(find).filter(Boolean);
      var sels = [];
      var residues = {};
      atoms.forEach(function (a) {
        // A polymer residue is painted whole; a ligand fragment atom by atom.
        if (!a.hetflag) residues[a.model + "/" + a.chain + "/" + a.resi] = {model: a.model, chain: a.chain, resi: a.resi};
        else sels.push({model: a.model, index: a.index});
      });
      Object.keys(residues).forEach(function (k) { sels.push(residues[k]); });
      sels.forEach(function (sel) {
        var m = viewer.getModel(sel.model);
        var s = {chain: sel.chain, resi: sel.resi, index: sel.index};
        Object.keys(s).forEach(function (k) { if (s[k] === undefined) delete s[k]; });
        m.setStyle(s, {cartoon: {color: colour}, stick: {color: colour, radius: 0.25}});
      });
      if (atoms.length) painted += 1;
      return {label: block.label, value: block.value, colour: colour, found: atoms.length, given: block.atoms.length};
    });
    state.painted = painted;
    var legend = document.createElement("div");
    legend.className = "viewer-scale";
    var bar = document.createElement("span");
    bar.className = "viewer-scale-bar";
    bar.style.background = "linear-gradient(to right, " + SCALE.join(", ") + ")";
    legend.appendChild(document.createTextNode((importance.title || "value") + ": " + lo.toPrecision(3) + " "));
    legend.appendChild(bar);
    legend.appendChild(document.createTextNode(" " + hi.toPrecision(3)));
    el.parentNode.insertBefore(legend, el.nextSibling);
    if (painted < importance.blocks.length) {
      note(legend, (importance.blocks.length - painted) + " of " + importance.blocks.length +
                   " blocks were not found in the structure and are not painted.");
    }
  }

  function build(el) {
    if (el.dataset.started) return;
    el.dataset.started = "1";
    var source = document.getElementById(el.dataset.spec);
    if (!source || !window.$3Dmol) return;
    var spec = JSON.parse(source.textContent);
    var parts = [spec.structure].concat(spec.ligands || [], spec.poses ? [spec.poses] : []).filter(Boolean);
    Promise.all(parts.map(load)).then(function (texts) {
      var viewer = $3Dmol.createViewer(el, {backgroundColor: "white"});
      var state = {models: 0};
      var n = 0;
      if (spec.structure) {
        viewer.addModel(texts[n++], spec.structure.format || "pdb");
        viewer.setStyle({}, {cartoon: {color: "#c8c8c8"}});
        viewer.setStyle({hetflag: true, not: {resn: HIDDEN_HETERO}}, {stick: {radius: 0.2}});
      }
      (spec.ligands || []).forEach(function (lig) {
        var m = viewer.addModel(texts[n++], lig.format || "sdf");
        m.setStyle({}, {stick: {radius: 0.2}});
      });
      if (spec.sites) drawSites(viewer, el, spec.sites);
      if (spec.poses) drawPoses(viewer, el, texts[n++], spec.poses.format || "sdf", state);
      if (spec.importance) drawImportance(viewer, el, spec.importance, state);
      state.atoms = viewer.selectedAtoms({}).length;
      state.sites = spec.sites || [];
      el.viewer = viewer;
      el.biofm = state;
      // The pocket in view: the first site's residues (around the pose), else the pose, else everything.
      if (spec.sites && spec.sites.length && spec.sites[0].residues.length) {
        viewer.zoomTo({or: spec.sites[0].residues});
      } else if (state.poses && state.poses.length) viewer.zoomTo({model: state.poses[0].model});
      else viewer.zoomTo();
      viewer.render();
      el.dataset.ready = "1";
      el.dispatchEvent(new CustomEvent("viewer:ready", {bubbles: true}));
    }).catch(function (err) {
      note(el, "The 3D view could not be drawn: " + err.message, "error");
      el.dataset.error = err.message;
    });
  }

  // ESM-2 contact maps: a structure the user picks is read here (never
  // uploaded), its chain that best matches the sequence (ungapped, at the
  // best offset) is found, and the map's hovered or clicked pair is shown on it.
  var ONE_LETTER = {ALA: "A", ARG: "R", ASN: "N", ASP: "D", CYS: "C", GLN: "Q", GLU: "E", GLY: "G", HIS: "H",
                    ILE: "I", LEU: "L", LYS: "K", MET: "M", PHE: "F", PRO: "P", SER: "S", THR: "T", TRP: "W",
                    TYR: "Y", VAL: "V", MSE: "M", SEC: "U"};

  function bestChain(viewer, sequence) {
    var chains = {};
    viewer.selectedAtoms({atom: "CA", hetflag: false}).forEach(function (a) {
      (chains[a.chain] = chains[a.chain] || []).push(a);
    });
    var best = null;
    Object.keys(chains).forEach(function (chain) {
      var residues = chains[chain];
      for (var offset = -residues.length + 1; offset < sequence.length; offset++) {
        var same = 0, overlap = 0;
        for (var k = 0; k < residues.length; k++) {
          var i = k + offset;
          if (i < 0 || i >= sequence.length) continue;
          overlap++;
          if (ONE_LETTER[residues[k].resn] === sequence[i]) same++;
        }
        if (!best || same > best.same) best = {chain: chain, residues: residues, offset: offset, same: same, overlap: overlap};
      }
    });
    return best;
  }

  function contactStructure(box) {
    var input = box.querySelector(".contact-structure-file");
    var el = box.querySelector(".mol-viewer");
    var noteEl = box.querySelector(".contact-structure-note");
    var sequence = box.dataset.sequence || "";
    input.addEventListener("change", function () {
      var file = input.files[0];
      if (!file) return;
      file.text().then(function (text) {
        el.hidden = false;
        el.innerHTML = "";
        var viewer = $3Dmol.createViewer(el, {backgroundColor: "white"});
        viewer.addModel(text, /\.(cif|mmcif)$/i.test(file.name) ? "cif" : "pdb");
        viewer.setStyle({}, {cartoon: {color: "#c8c8c8"}});
        var match = sequence ? bestChain(viewer, sequence) : null;
        var state = {atoms: viewer.selectedAtoms({}).length, match: match && {chain: match.chain, offset: match.offset,
                     same: match.same, overlap: match.overlap}, pair: null};
        if (!match || !match.same) {
          noteEl.textContent = "No chain of " + file.name + " matches the sequence; pairs cannot be shown.";
        } else {
          noteEl.textContent = "Chain " + match.chain + ": " + match.same + " of " + match.overlap +
            " aligned residues identical (map residue i is the chain's residue i − " + match.offset +
            " in file order, no gaps).";
          viewer.setStyle({chain: match.chain}, {cartoon: {color: "spectrum"}});
        }
        // Map residue n (1-based) to the chain's residue in the file, or null.
        function residueAt(n) {
          var k = n - 1 - match.offset;
          return match && k >= 0 && k < match.residues.length ? match.residues[k] : null;
        }
        state.showPair = function (i, j) {
          if (!match || !match.same) return;
          viewer.removeAllShapes();
          viewer.removeAllLabels();
          viewer.setStyle({chain: match.chain}, {cartoon: {color: "spectrum"}});
          var a = residueAt(i), b = residueAt(j);
          state.pair = a && b ? [{chain: a.chain, resi: a.resi, resn: a.resn}, {chain: b.chain, resi: b.resi, resn: b.resn}] : null;
          if (!state.pair) { viewer.render(); return; }
          [a, b].forEach(function (r) {
            viewer.addStyle({chain: r.chain, resi: r.resi}, {stick: {colorscheme: "orangeCarbon", radius: 0.25}});
            viewer.addLabel(r.resn + " " + r.resi, {fontSize: 11, backgroundOpacity: 0.6}, {chain: r.chain, resi: r.resi, atom: "CA"});
          });
          viewer.addCylinder({start: {x: a.x, y: a.y, z: a.z}, end: {x: b.x, y: b.y, z: b.z}, radius: 0.15,
                              dashed: true, color: "#d55e00"});
          viewer.render();
        };
        var chart = document.getElementById(box.dataset.chart);
        if (chart && chart.on && match && match.same) {
          var pick = function (e) { var p = e.points && e.points[0]; if (p) state.showPair(Number(p.x), Number(p.y)); };
          chart.removeAllListeners("plotly_hover");
          chart.removeAllListeners("plotly_click");
          chart.on("plotly_hover", pick);
          chart.on("plotly_click", pick);
        }
        el.viewer = viewer;
        el.biofm = state;
        viewer.zoomTo();
        viewer.render();
        el.dataset.ready = "1";
      }).catch(function (err) {
        noteEl.textContent = "The structure could not be shown: " + err.message;
        el.dataset.error = err.message;
      });
    });
  }

  function buildAll(root) {
    root.querySelectorAll(".mol-viewer[data-spec]").forEach(build);
    root.querySelectorAll(".contact-structure").forEach(function (box) {
      if (box.dataset.started || !window.$3Dmol) return;
      box.dataset.started = "1";
      contactStructure(box);
    });
  }
  window.biofmViewer = {build: build, sdfTitles: sdfTitles};
  document.addEventListener("DOMContentLoaded", function () { buildAll(document); });
  document.addEventListener("htmx:afterSettle", function (e) { buildAll(e.target); });
  if (document.readyState !== "loading") buildAll(document);
})();
