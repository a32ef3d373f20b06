from __future__ import annotations

from django import forms
from django.conf import settings

from workers.forms import JobForm

from .inputs import GZIP_MAGIC, store_input


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else ([data] if data else [])
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


class AtomicaForm(JobForm):
    records = MultipleFileField(label="ATOMICA records (.jsonl.gz)", required=False,
                                help_text="One or more files of ATOMICA's processed records.")
    urls = forms.CharField(label="…or URLs of .jsonl.gz files", required=False,
                           widget=forms.Textarea(attrs={"rows": 3}),
                           help_text="One http(s) URL per line; fetched by the worker, "
                                     "private and loopback addresses refused.")
    structure = forms.FileField(label="…or a structure (PDB or mmCIF)", required=False,
                                help_text="Converted to an ATOMICA record of the interface.")
    side = forms.CharField(label="Sides of the interface", required=False,
                           widget=forms.Select(choices=[("", "first suggestion from the file")]),
                           help_text="Read from the file once chosen; or type chains below.")
    chains1 = forms.CharField(label="Side 1 chains", required=False, help_text="e.g. A or A,B")
    chains2 = forms.CharField(label="Side 2 chains", required=False)
    ligand_code = forms.CharField(label="Ligand code (side 2)", required=False, max_length=3)
    ligand_smiles = forms.CharField(label="Ligand SMILES", required=False,
                                    help_text="Bond orders for the ligand's fragments; it wins when given. Without it the "
                                              "default mode infers them from the structure.")
    ligand_sdf = forms.FileField(label="…or the ligand as SDF", required=False)
    keep_unfragmented = forms.BooleanField(
        label="Go on with a ligand that cannot be fragmented", required=False,
        help_text="Without bond orders (no SMILES, and none inferred from the structure) a ligand "
                  "stays one block per atom; the result then says so.")
    mode = forms.ChoiceField(choices=[("default", "Default (fixed converter)"),
                                      ("atomica", "ATOMICA-compatible (reproduces ATOMICA's records)")],
                             initial="default", required=False)
    cutoff = forms.FloatField(label="Interface distance (Å)", initial=8.0, min_value=2.0, max_value=20.0,
                              required=False)
    importance = forms.BooleanField(
        label="Per-block interaction importance", required=False,
        help_text="One extra forward pass per block of the first complexes; slower.")

    def __init__(self, *args, user, **kwargs):
        from django.urls import reverse

        super().__init__(*args, user=user, **kwargs)
        # Choosing a file asks the server which sides the structure offers.
        self.fields["structure"].widget.attrs.update({
            "hx-post": reverse("analysis:atomica_sides"), "hx-trigger": "change",
            "hx-target": "#id_side", "hx-swap": "innerHTML", "hx-encoding": "multipart/form-data",
        })

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        items = []
        for upload in data.get("records") or []:
            raw = upload.read()
            if upload.size > settings.BIOFM_UPLOAD_MAX_BYTES:
                self.add_error("records", f"“{upload.name}” is over the {settings.BIOFM_UPLOAD_MAX_BYTES:,}-byte limit.")
                return data
            if not raw.startswith(GZIP_MAGIC):
                self.add_error("records", f"“{upload.name}” is not a gzip file (.jsonl.gz).")
                return data
            items.append(store_input(raw, upload.name, self.user))
        if data.get("structure"):
            item = self._structure_item(data)
            if item is None:
                return data
            items.append(item)
        for line_number, line in enumerate((data.get("urls") or "").splitlines(), start=1):
            if line.strip():
                items.append({"source": "url", "url": line.strip(), "name": f"URL line {line_number}"})
        if not items:
            raise forms.ValidationError("Give at least one .jsonl.gz file, URL or structure.")
        data["params"] = {"items": items, "importance": data["importance"]}
        return data

    def field_for_param(self, param: str) -> str | None:
        # An item's URL came from the URL box; other item errors go above the form.
        if param.startswith("items[") and param.endswith(".url"):
            return "urls"
        return super().field_for_param(param)

    def _structure_item(self, data) -> dict | None:
        """Store the structure and check it converts, so a wrong chain or
        ligand is reported next to its field now rather than by the job."""
        import json
        import tempfile
        from pathlib import Path

        from .compute import convert
        from .inputs import default_side, records_jsonl_gz, safe_name, side_dict  # noqa: F401

        upload = data["structure"]
        raw = upload.read()
        if len(raw) > settings.BIOFM_UPLOAD_MAX_BYTES:
            self.add_error("structure", f"“{upload.name}” is over the {settings.BIOFM_UPLOAD_MAX_BYTES:,}-byte limit.")
            return None
        if data.get("side"):
            try:
                side = json.loads(data["side"])
            except ValueError:
                self.add_error("side", "Choose one of the suggested sides.")
                return None
        elif data.get("chains1"):
            side = {"chains1": data["chains1"], "chains2": data.get("chains2", ""),
                    "ligand_code": data.get("ligand_code", "")}
        else:
            side = None
        sdf_raw = data["ligand_sdf"].read() if data.get("ligand_sdf") else None
        with tempfile.TemporaryDirectory(prefix="biofm-form-") as tmp:
            path = Path(tmp) / safe_name(upload.name)
            path.write_bytes(raw)
            sdf = None
            if sdf_raw:
                sdf = Path(tmp) / "ligand.sdf"
                sdf.write_bytes(sdf_raw)
            try:
                side = side or default_side(path)
                conversion = convert.convert_structure_report(
                    path, side["chains1"], side.get("chains2") or None,
                    ligand_code=side.get("ligand_code") or None,
                    ligand_smiles=data.get("ligand_smiles") or None, ligand_sdf=sdf,
                    mode=data.get("mode") or "default", cutoff=data.get("cutoff") or 8.0)
            except ValueError as exc:
                self.add_error("structure", str(exc).replace(str(path), upload.name))
                return None
        records = conversion.records
        if not records:
            self.add_error("structure", "No interface between the chosen sides within the cutoff.")
            return None
        if conversion.warnings and not data.get("keep_unfragmented"):
            # Said here, before the job, so that a changed answer is never silent.
            for warning in conversion.warnings:
                self.add_error("ligand_smiles", warning)
            self.add_error("keep_unfragmented", "Give the ligand's SMILES above, or tick this to go on "
                                                "with it unfragmented.")
            return None
        stored = store_input(raw, upload.name, self.user, suffix="-" + safe_name(upload.name))
        # The records just made go with the job, so the worker does not convert
        # the file a second time; the structure is kept for the record.
        item = {"source": "structure", "input_id": stored["input_id"], "name": upload.name, "side": side,
                "smiles": data.get("ligand_smiles", ""), "mode": data.get("mode") or "default",
                "cutoff": data.get("cutoff") or 8.0,
                "ligands": [report.as_dict() for report in conversion.ligands]}
        try:
            item["records_input_id"] = store_input(records_jsonl_gz(records), upload.name + ".jsonl.gz",
                                                   self.user)["input_id"]
        except ValueError:
            pass  # over the upload cap: the worker converts the structure again instead
        if sdf_raw:
            item["ligand_sdf_input_id"] = store_input(sdf_raw, "ligand.sdf", self.user, suffix=".sdf")["input_id"]
        return item
