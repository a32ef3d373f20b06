from __future__ import annotations

from django import forms

from workers.forms import JobForm

from .kind import DEFAULT_MODEL, ESM2_LAYERS, INCLUDE_CHOICES
from analysis.examples import EXAMPLES
from analysis.protparam.forms import AnalysisForm

INCLUDE_LABELS = {
    "mean": "Per-sequence mean embedding",
    "per_tok": "Per-residue embeddings",
    "bos": "BOS-token embedding",
    "contacts": "Contact map (predicted)",
}


class EsmForm(JobForm):
    model = forms.ChoiceField(choices=[(m, m) for m in ESM2_LAYERS], initial=DEFAULT_MODEL,
                              help_text="Published ESM-2 checkpoints (fair-esm); larger is slower.")
    sequences = forms.CharField(label="Paste sequences", required=False,
                                widget=forms.Textarea(attrs={"rows": 8}),
                                help_text="FASTA, or one bare sequence.")
    fasta_file = forms.FileField(label="…or upload a FASTA file", required=False)
    example = forms.ChoiceField(label="…or use an example", required=False,
                                choices=[("", "—")] + [(k, e.title) for k, e in EXAMPLES.items()])
    repr_layers = forms.CharField(initial="-1", help_text="Comma-separated; negative counts from the "
                                  "last layer (-1), 0 is the embedding layer, as in fair-esm.")
    include = forms.MultipleChoiceField(choices=[(i, INCLUDE_LABELS[i]) for i in INCLUDE_CHOICES],
                                        initial=["mean"], widget=forms.CheckboxSelectMultiple)
    long_sequences = forms.ChoiceField(choices=[
        ("truncate", "Truncate at 1022 residues (as fair-esm), with a warning"),
        ("window", "Embed the whole sequence in overlapping windows, stitched"),
    ], initial="truncate", widget=forms.RadioSelect)

    clean_fasta_file = AnalysisForm.clean_fasta_file

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        sources = {"sequences": bool(data.get("sequences", "").strip()),
                   "fasta_file": data.get("fasta_file") is not None,
                   "example": bool(data.get("example"))}
        if sum(sources.values()) != 1:
            raise forms.ValidationError("Give sequences in exactly one way: paste, upload or example.")
        field = next(k for k, on in sources.items() if on)
        params = {"model": data["model"], "repr_layers": data["repr_layers"],
                  "include": data["include"], "long_sequences": data["long_sequences"],
                  # The page analyses the good records and lists the others.
                  "skip_invalid": True}
        if field == "example":
            params["example"] = data["example"]
        else:
            params["fasta"] = data["sequences"] if field == "sequences" else data["fasta_file"]
            params["source"] = "paste" if field == "sequences" else "upload"
        # The input's errors belong to the field it came from.
        self.param_fields = {"fasta": field, "sequences": field, "example": field}
        data["params"] = params
        return data
