"""Embed a FASTA file with ESM-2 on this machine, like fair-esm's extract.py.

    python manage.py esm_embed esm2_t33_650M_UR50D proteins.fasta out/ \
        --repr-layers -1 --include mean per_tok

MODEL is a published checkpoint name or the path of a local .pt (with its
-contact-regression.pt beside it). Writes one <id>.pt per sequence in
extract.py's layout, plus embeddings.npz and summary.csv.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from analysis.esm import outputs as out
from analysis.esm.kind import esm_problems
from analysis.fasta import InputTooLarge, NotFasta, parse_fasta


class Command(BaseCommand):
    help = "Embed sequences with ESM-2 (outputs as fair-esm extract.py, plus .npz)."

    def add_arguments(self, parser):
        parser.add_argument("model", help="checkpoint name (esm2_t33_650M_UR50D) or path to a .pt")
        parser.add_argument("fasta", type=Path)
        parser.add_argument("output_dir", type=Path)
        parser.add_argument("--repr-layers", type=int, nargs="+", default=[-1])
        parser.add_argument("--include", nargs="+", default=["mean"],
                            choices=["mean", "per_tok", "bos", "contacts"])
        parser.add_argument("--long-sequences", choices=["truncate", "window"], default="truncate")
        parser.add_argument("--toks-per-batch", type=int, default=None)
        parser.add_argument("--device", default=settings.BIOFM_ESM_DEVICE)
        parser.add_argument("--dtype", default=None, choices=["auto", "float32", "bfloat16", "float16"])
        parser.add_argument("--skip-invalid", action="store_true",
                            help="embed the valid records and report the others")

    def handle(self, *args, **opts):
        from analysis.esm.compute.checkpoints import WeightsMissing, load_checkpoint
        from analysis.esm.compute.engine import EmbedOptions, Engine
        from analysis.esm.jobs import resolve_device

        try:
            records, errors = parse_fasta(opts["fasta"].read_bytes(), max_bytes=10**10,
                                          max_records=10**8, min_length=1, max_length=10**7)
        except (OSError, InputTooLarge, NotFasta) as exc:
            raise CommandError(f"{opts['fasta']}: {exc}") from None
        problems = esm_problems(records)
        messages = [e.message for e in errors] + [p["message"] for p in problems]
        bad = {p["index"] for p in problems}
        good = [r for r in records if r.index not in bad]
        if messages and not opts["skip_invalid"]:
            raise CommandError("Invalid records (use --skip-invalid to embed the others):\n  "
                               + "\n  ".join(messages[:20]))
        for message in messages:
            self.stderr.write(f"skipped: {message}")
        weights_dir = Path(settings.BIOFM_ESM_WEIGHTS_DIR) if settings.BIOFM_ESM_WEIGHTS_DIR else None
        try:
            checkpoint = load_checkpoint(opts["model"], weights_dir=weights_dir,
                                         allow_download=settings.BIOFM_ESM_ALLOW_DOWNLOAD)
        except WeightsMissing as exc:
            raise CommandError(str(exc)) from None
        device = resolve_device(opts["device"])
        engine = Engine(checkpoint, device=device, dtype=opts["dtype"] or settings.BIOFM_ESM_DTYPE)
        include = frozenset(opts["include"])
        options = EmbedOptions(repr_layers=opts["repr_layers"], include=include,
                               long_sequences=opts["long_sequences"])
        if opts["toks_per_batch"]:
            options.toks_per_batch = opts["toks_per_batch"]
        started = time.monotonic()
        results = engine.embed([(r.id, r.sequence) for r in good], options,
                               progress=lambda done, total: self.stderr.write(f"\r{done}/{total}", ending=""))
        self.stderr.write("")
        out_dir = opts["output_dir"]
        out.write_extract_pt_dir(results, include, out_dir)
        out.write_npz(results, include, out_dir / "embeddings.npz")
        rows = out.summary_rows(results, {r.id: r.description for r in good})
        (out_dir / "summary.csv").write_text(out.summary_csv(rows))
        for r in results:
            for warning in r.warnings:
                self.stderr.write(f"warning: {r.id}: {warning}")
        self.stdout.write(f"Embedded {len(results)} sequences on {device} in "
                          f"{time.monotonic() - started:.1f} s; wrote {out_dir}")
