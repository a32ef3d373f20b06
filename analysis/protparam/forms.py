from __future__ import annotations

from django import forms
from django.conf import settings

from workers.forms import JobForm

from analysis.examples import EXAMPLES
from analysis.fasta import MAX_LENGTH, MIN_LENGTH
from .kind import WINDOWS


class AnalysisForm(JobForm):
    sequences = forms.CharField(
        label="Paste sequences", required=False,
        widget=forms.Textarea(attrs={"rows": 10, "placeholder": ">my_protein\nMKTAYIAKQRQISFVKSHFSRQ..."}),
        help_text=f"FASTA, or one bare sequence. {MIN_LENGTH:,} to {MAX_LENGTH:,} residues per protein; "
                  "records outside that are reported as rejected and the others analysed.")
    fasta_file = forms.FileField(label="…or upload a FASTA file", required=False)
    example = forms.ChoiceField(label="…or use an example", required=False,
                                choices=[("", "—")] + [(k, e.title) for k, e in EXAMPLES.items()],
                                help_text=" ".join(f"{e.title}: {e.description}" for e in EXAMPLES.values()))
    window = forms.TypedChoiceField(
        label="Hydropathy window", coerce=int, initial=9,
        choices=[(w, f"{w} residues") for w in WINDOWS],
        help_text="Kyte-Doolittle sliding-window length; 19 suits transmembrane helices.")

    def clean_fasta_file(self):
        upload = self.cleaned_data.get("fasta_file")
        if upload is None:
            return None
        cap = settings.BIOFM_UPLOAD_MAX_BYTES
        if upload.size > cap:
            raise forms.ValidationError(
                f"“{upload.name}” is {upload.size / 1e6:.1f} MB; the limit is {cap / 1e6:.1f} MB.")
        raw = upload.read()
        if b"\x00" in raw:
            raise forms.ValidationError(f"“{upload.name}” is a binary file, not FASTA text.")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError(f"“{upload.name}” is not UTF-8 text, so not FASTA.") from None

    def clean(self):
        data = super().clean()
        given = {
            "sequences": bool(data.get("sequences", "").strip()),
            "fasta_file": data.get("fasta_file") is not None,
            "example": bool(data.get("example")),
        }
        if self.errors:
            return data
        if sum(given.values()) != 1:
            raise forms.ValidationError("Give sequences in exactly one way: paste, upload or example.")
        if given["example"]:
            params = {"example": data["example"]}
        else:
            text = data["sequences"] if given["sequences"] else data["fasta_file"]
            params = {"fasta": text, "source": "paste" if given["sequences"] else "upload"}
        params["window"] = data["window"]
        field = next(name for name, on in given.items() if on)
        # The input's errors belong to the field it came from.
        self.param_fields = {"fasta": field, "sequences": field, "example": field}
        data["params"] = params
        return data
