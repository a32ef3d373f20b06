"""Plotly figure specifications as plain dicts, drawn in the browser by plotly.js.

The plotly Python package is deliberately not used: the figures are plain
JSON, so the worker needs no extra dependency.

Composition chart: up to MAX_BAR_PANELS records get one bar panel each
(small multiples on a shared percent scale), with bars coloured by residue
class and a legend naming the classes. Grouped bars were rejected because
colour cannot show both the record and the residue class. Beyond that a
heatmap (records x residues) stays readable; there the column labels carry
the class colours and the class names sit above the column groups.
"""

from __future__ import annotations

from .protparam import HYDROPATHY_WINDOW

MAX_BAR_PANELS = 12
MAX_HEATMAP_ROWS = 500
# With the record picker one profile is drawn at a time, so many records stay readable.
MAX_HYDROPATHY_TRACES = 100
TRANSMEMBRANE_THRESHOLD = 1.6

# Okabe-Ito colours, which stay distinguishable with colour-vision deficiency.
# (legend name, short name for the narrow heatmap headers, letters, colour)
RESIDUE_CLASSES: list[tuple[str, str, str, str]] = [
    ("Hydrophobic", "Hydrophobic", "AVILM", "#E69F00"),
    ("Aromatic", "Aromatic", "FWY", "#CC79A7"),
    ("Positively charged", "+", "KRH", "#0072B2"),
    ("Negatively charged", "−", "DE", "#D55E00"),
    ("Polar", "Polar", "STNQ", "#009E73"),
    ("Special", "Special", "GPC", "#7F7F7F"),
]
RESIDUE_ORDER = [c for _, _, letters, _ in RESIDUE_CLASSES for c in letters]

_COMPOSITION_TITLE = "Amino-acid composition, % of residues (Biopython ProtParam)"

# The gap leaves room for each panel's own x-axis title.
_PANEL_PX, _GAP_PX, _TOP_PX, _BOTTOM_PX = 140, 80, 90, 50


def composition_figure(results: list[dict]) -> dict:
    """Composition of each analysed record; see the module docstring for the layout."""
    if not results:
        return _empty_figure(_COMPOSITION_TITLE)
    if len(results) <= MAX_BAR_PANELS:
        return _composition_panels(results)
    return _composition_heatmap(results)


def hydropathy_figure(rows: list[dict], window: int | None = None) -> dict:
    """Kyte-Doolittle profile per record.

    Each row needs "id" and "profile" (from protparam.hydropathy_profile)
    and may carry the "window" it was computed with; all rows must share one
    window, which defaults to the first row's. Value i is plotted at the
    1-based position of the window centre, i + window // 2 + 1.
    """
    if window is None:
        window = rows[0].get("window", HYDROPATHY_WINDOW) if rows else HYDROPATHY_WINDOW
    title = f"Hydropathy profile: Kyte & Doolittle 1982, {window}-residue window"
    shown = rows[:MAX_HYDROPATHY_TRACES]
    if len(rows) > len(shown):
        title += f" (first {len(shown)} of {len(rows)} records)"
    offset = window // 2 + 1
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": _escape(row["id"]),
            "x": [i + offset for i in range(len(row["profile"]))],
            "y": row["profile"],
            "connectgaps": False,
            "hovertemplate": "%{fullData.name}<br>residue %{x}: %{y:.2f}<extra></extra>",
            "visible": k == 0,
        }
        for k, row in enumerate(shown)
    ]
    layout = {
        "title": {"text": title},
        "xaxis": {"title": {"text": f"Residue position (centre of the {window}-residue window)"}},
        "yaxis": {
            "title": {"text": f"Hydropathy (Kyte & Doolittle), mean over {window} residues"},
            "zeroline": False,
        },
        "shapes": [
            _hline(0, "#7F7F7F"),
            _hline(TRANSMEMBRANE_THRESHOLD, "#D55E00"),
        ],
        "annotations": [
            {
                "xref": "paper",
                "x": 1,
                "xanchor": "right",
                "yref": "y",
                "y": TRANSMEMBRANE_THRESHOLD,
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"color": "#D55E00"},
                "bgcolor": "rgba(255, 255, 255, 0.8)",
                # Kyte & Doolittle set 1.6 for a 19-residue window; with a
                # shorter window peaks cross it more easily.
                "text": f"{TRANSMEMBRANE_THRESHOLD}: transmembrane threshold "
                "(Kyte & Doolittle, for a 19-residue window)",
            }
        ],
        "hovermode": "closest",
        "legend": {"title": {"text": "Record"}},
        "showlegend": True,
    }
    if len(shown) > 1:
        layout["updatemenus"] = [_record_picker([row["id"] for row in shown])]
        layout["margin"] = {"t": 110}
    return {"data": data, "layout": layout}


def _record_picker(ids: list[str]) -> dict:
    """A dropdown that shows one record's trace (or all of them)."""
    n = len(ids)
    buttons = [{"label": _escape(record_id), "method": "restyle",
                "args": [{"visible": [i == k for i in range(n)]}]} for k, record_id in enumerate(ids)]
    buttons.append({"label": f"All {n} records", "method": "restyle", "args": [{"visible": [True] * n}]})
    return {"type": "dropdown", "buttons": buttons, "active": 0, "showactive": True,
            "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom", "pad": {"t": 4},
            "name": "record-picker"}


def _composition_panels(results: list[dict]) -> dict:
    n = len(results)
    area = n * _PANEL_PX + (n - 1) * _GAP_PX
    # One percent scale for all panels, so bar heights compare across records.
    top_value = max(max(r["composition"].values(), default=0) for r in results)
    y_range = [0, max(top_value * 1.1, 1)]

    data, layout = [], {}
    annotations = []
    for k, result in enumerate(results, start=1):
        suffix = "" if k == 1 else str(k)
        for name, _, letters, colour in RESIDUE_CLASSES:
            data.append(
                {
                    "type": "bar",
                    "name": f"{name} ({' '.join(letters)})",
                    "legendgroup": name,
                    "showlegend": k == 1,
                    "x": list(letters),
                    "y": [result["composition"][c] for c in letters],
                    "marker": {"color": colour},
                    "xaxis": f"x{suffix}",
                    "yaxis": f"y{suffix}",
                    "customdata": [_escape(result["id"])] * len(letters),
                    "hovertemplate": "%{customdata}<br>%{x}: %{y:.2f}%<extra></extra>",
                }
            )
        top = 1 - (k - 1) * (_PANEL_PX + _GAP_PX) / area
        bottom = top - _PANEL_PX / area
        layout[f"xaxis{suffix}"] = {
            "anchor": f"y{suffix}",
            "categoryorder": "array",
            "categoryarray": RESIDUE_ORDER,
            "title": {"text": "Amino acid", "standoff": 2},
        }
        layout[f"yaxis{suffix}"] = {
            "anchor": f"x{suffix}",
            "domain": [max(bottom, 0), min(top, 1)],
            "range": y_range,
            "title": {"text": "% of residues"},
        }
        annotations.append(
            {
                "xref": "paper",
                "x": 0,
                "xanchor": "left",
                "yref": "paper",
                "y": min(top, 1),
                "yanchor": "bottom",
                "showarrow": False,
                "text": f"<b>{_escape(result['id'])}</b>",
            }
        )
    layout.update(
        {
            "title": {"text": _COMPOSITION_TITLE},
            "barmode": "group",
            "bargap": 0.15,
            "height": _TOP_PX + _BOTTOM_PX + area,
            "margin": {"t": _TOP_PX, "b": _BOTTOM_PX},
            "legend": {"title": {"text": "Residue class"}},
            "annotations": annotations,
        }
    )
    return {"data": data, "layout": layout}


def _composition_heatmap(results: list[dict]) -> dict:
    shown = results[:MAX_HEATMAP_ROWS]
    title = f"{_COMPOSITION_TITLE}, {len(results)} records"
    if len(shown) < len(results):
        title += f" (first {len(shown)} shown)"
    colour_of = {c: colour for _, _, letters, colour in RESIDUE_CLASSES for c in letters}
    data = [
        {
            "type": "heatmap",
            "x": RESIDUE_ORDER,
            "y": [_escape(r["id"]) for r in shown],
            "z": [[r["composition"][c] for c in RESIDUE_ORDER] for r in shown],
            "colorscale": "Viridis",
            "colorbar": {"title": {"text": "% of residues"}},
            "hovertemplate": "%{y}<br>%{x}: %{z:.2f}%<extra></extra>",
        }
    ]
    annotations = []
    for _, short, letters, colour in RESIDUE_CLASSES:
        middle = RESIDUE_ORDER.index(letters[0]) + (len(letters) - 1) / 2
        annotations.append(
            {
                "xref": "x",
                "x": middle,
                "yref": "paper",
                "y": 1,
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"color": colour},
                "text": f"<b>{short}</b>",
            }
        )
    layout = {
        "title": {"text": title},
        "xaxis": {
            "title": {"text": "Amino acid, grouped by residue class (+/− charged)"},
            "tickmode": "array",
            "tickvals": RESIDUE_ORDER,
            "ticktext": [
                f"<span style='color:{colour_of[c]}'><b>{c}</b></span>" for c in RESIDUE_ORDER
            ],
            "side": "bottom",
        },
        "yaxis": {
            "title": {"text": "Record"},
            "autorange": "reversed",
            "type": "category",
            "automargin": True,
        },
        "height": min(250 + 14 * len(shown), 2000),
        "annotations": annotations,
    }
    return {"data": data, "layout": layout}


def _hline(y: float, colour: str) -> dict:
    return {
        "type": "line",
        "xref": "paper",
        "x0": 0,
        "x1": 1,
        "yref": "y",
        "y0": y,
        "y1": y,
        "line": {"dash": "dash", "color": colour, "width": 1},
    }


def _empty_figure(title: str) -> dict:
    return {
        "data": [],
        "layout": {
            "title": {"text": title},
            # Nothing is plotted, so no axes (and none to title).
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "annotations": [
                {
                    "text": "No records to show",
                    "showarrow": False,
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0.5,
                    "y": 0.5,
                }
            ],
        },
    }


def _escape(text: str) -> str:
    # Plotly renders a subset of HTML in labels and decodes these entities;
    # ids come from user-supplied FASTA headers.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
