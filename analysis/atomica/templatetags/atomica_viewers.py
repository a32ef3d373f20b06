"""The 3D viewer's spec (static/js/viewer.js) for an ATOMICA complex made
from a structure file: the file (and its ligand SDF), with each block's
importance painted on its atoms."""

from django import template
from django.urls import reverse

register = template.Library()

FORMATS = {".pdb": "pdb", ".ent": "pdb", ".cif": "cif", ".mmcif": "cif"}


@register.simple_tag
def atomica_viewer_spec(job, chart, n):
    """{id, spec_id, spec} for chart `n` of the job, or None without a structure file."""
    items = (job.params or {}).get("items") or []
    index = chart.get("item")
    if not chart.get("blocks") or not isinstance(index, int) or not 0 <= index < len(items):
        return None
    item = items[index]
    if not isinstance(item, dict) or item.get("source") != "structure" or not item.get("input_id"):
        return None
    name = str(item.get("name", "")).lower()
    suffix = name[name.rfind("."):] if "." in name else ""
    spec = {"structure": {"url": reverse("analysis:atomica_input", args=[item["input_id"]]),
                          "format": FORMATS.get(suffix, "pdb")},
            "importance": {"title": "ATOMICA block importance", "blocks": chart["blocks"]}}
    if item.get("ligand_sdf_input_id"):
        spec["ligands"] = [{"url": reverse("analysis:atomica_input", args=[item["ligand_sdf_input_id"]]),
                            "format": "sdf"}]
    return {"id": f"atomica-viewer-{n}", "spec_id": f"atomica-viewer-{n}-spec", "spec": spec}
