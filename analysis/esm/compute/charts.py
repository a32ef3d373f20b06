"""Plotly figure specifications for ESM-2 results, as plain dicts (see
analysis/protparam/compute/charts.py for why no plotly package)."""

from __future__ import annotations


def contact_figure(record_id: str, contacts) -> dict:
    """Heatmap of predicted contact probabilities (ESM-2 contact head)."""
    import numpy as np

    matrix = np.asarray(contacts, dtype=float)
    z = [[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in matrix]
    n = matrix.shape[0]
    return {
        "data": [{
            "type": "heatmap", "z": z, "x": list(range(1, n + 1)), "y": list(range(1, n + 1)),
            "colorscale": "Blues", "reversescale": True, "zmin": 0, "zmax": 1,
            "colorbar": {"title": {"text": "P(contact)"}},
            "hovertemplate": "residue %{y} – %{x}<br>P = %{z}<extra></extra>",
        }],
        "layout": {
            "title": {"text": f"{record_id}: contact map (ESM-2 contact head: logistic regression "
                              "on attention maps, APC-corrected)"},
            "xaxis": {"title": {"text": "Residue"}, "constrain": "domain"},
            "yaxis": {"title": {"text": "Residue"}, "autorange": "reversed", "scaleanchor": "x"},
            "height": 560, "margin": {"t": 60},
        },
    }
