"""Embed interaction complexes with ATOMICA on this machine.

    python manage.py atomica_embed --config CONFIG.json --weights WEIGHTS.pt \
        records.jsonl.gz [more.jsonl.gz | complex.pdb ...] --out OUT.npz

Without --config/--weights the released checkpoint is used (downloaded from
the Hugging Face hub on first use when online). Both official layouts load:
config.json + weights.pt, and pretrain_config.json + pretrain_weights.pt.
Writes `<id>/graph_embedding`, `<id>/block_embedding`, `<id>/atom_embedding`
(one row per block and atom of the record, global ones included, in record
order) and `<id>/is_global_block`, `<id>/is_global_atom`.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from analysis.atomica import outputs as out


class Command(BaseCommand):
    help = "Embed ATOMICA records or structure files; write one .npz."

    def add_arguments(self, parser):
        parser.add_argument("inputs", nargs="+", type=Path,
                            help=".jsonl.gz record files, or PDB/mmCIF files to convert")
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument("--config", type=Path)
        parser.add_argument("--weights", type=Path)
        parser.add_argument("--batch-size", type=int, default=settings.BIOFM_ATOMICA_BATCH_SIZE)
        parser.add_argument("--device", default="auto")
        parser.add_argument("--mode", choices=["default", "atomica"], default="default",
                            help="structure conversion mode (see the README)")

    def handle(self, *args, **opts):
        import torch

        from analysis.atomica.compute.checkpoints import CheckpointError, load_model, load_pretrained
        from analysis.atomica.compute.embed import embed_records
        from analysis.atomica.compute.records import read_records

        if bool(opts["config"]) != bool(opts["weights"]):
            raise CommandError("Give --config and --weights together, or neither for the released checkpoint.")
        try:
            if opts["config"]:
                model = load_model(opts["config"], opts["weights"])
            else:
                model = load_pretrained(settings.BIOFM_ATOMICA_CHECKPOINT_DIR,
                                        download=settings.BIOFM_ATOMICA_ALLOW_DOWNLOAD)
        except (CheckpointError, OSError) as exc:
            raise CommandError(str(exc)) from None
        device = opts["device"]
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = model.to(device)

        records = []
        for path in opts["inputs"]:
            try:
                if path.name.endswith((".jsonl.gz", ".jsonl")):
                    records.extend(read_records(path))
                else:
                    from analysis.atomica.compute import convert
                    from analysis.atomica.inputs import default_side

                    side = default_side(path)
                    self.stderr.write(f"{path.name}: {side['label']}")
                    conversion = convert.convert_structure_report(
                        path, side["chains1"], side["chains2"] or None,
                        ligand_code=side["ligand_code"] or None, mode=opts["mode"])
                    for report in conversion.ligands:
                        self.stderr.write(f"{path.name}: ligand {report.ligand}: bond orders from "
                                          f"{report.bond_orders}")
                    for warning in conversion.warnings:
                        self.stderr.write(f"{path.name}: warning: {warning}")
                    records.extend(conversion.records)
            except (OSError, ValueError) as exc:
                raise CommandError(f"{path}: {exc}") from None
        ids = [r.id for r in records]
        duplicates = {i for i in ids if ids.count(i) > 1}
        if duplicates:
            raise CommandError(f"Record ids repeat across inputs: {', '.join(sorted(duplicates))}")
        started = time.monotonic()
        try:
            embeddings = embed_records(model, records, batch_size=opts["batch_size"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        opts["out"].parent.mkdir(parents=True, exist_ok=True)
        out.write_npz(embeddings, opts["out"])
        self.stdout.write(f"Embedded {len(embeddings)} complexes on {device} in "
                          f"{time.monotonic() - started:.1f} s; wrote {opts['out']}")
