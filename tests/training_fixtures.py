"""Tiny training datasets for the tests: the first rows of the built-in ESOL
and BBBP files (training/data, with their sources), stored as Dataset rows the
way an upload is."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile

DATA = Path(settings.BASE_DIR) / "training" / "data"
FOREST = {"n_estimators": 20, "descriptors": False}
TINY_DMPNN = {"message_hidden_dim": 100, "ffn_hidden_dim": 100, "batch_size": 16}


def esol_csv(n: int = 60) -> bytes:
    """smiles, logS (measured), mw, set (8 train : 1 val : 1 test) of ESOL's first rows."""
    with open(DATA / "delaney-processed.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[:n]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["smiles", "logS", "mw", "set"])
    for i, r in enumerate(rows):
        writer.writerow([r["smiles"].strip(), r["measured log solubility in mols per litre"],
                         r["Molecular Weight"], "val" if i % 10 == 8 else "test" if i % 10 == 9 else "train"])
    return out.getvalue().encode()


def bbbp_csv(n: int = 80) -> bytes:
    with open(DATA / "BBBP.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[:n]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["smiles", "p_np"])
    for r in rows:
        writer.writerow([r["smiles"], r["p_np"]])
    return out.getvalue().encode()


def make_dataset(owner, data: bytes, targets: dict, name: str = "esol-mini", keep=()):
    from training.compute.datasets import parse_dataset, table_to_csv
    from training.models import Dataset

    table = parse_dataset(data, f"{name}.csv", "smiles", targets, keep_columns=keep)
    dataset = Dataset(owner=owner, name=name, content_hash=hashlib.sha256(data).hexdigest(),
                      smiles_column="smiles", source_name=f"{name}.csv",
                      targets=[{"name": t, "task": k} for t, k in zip(table.targets, table.tasks)],
                      columns=list(keep), n_rows=len(table), n_source_rows=data.count(b"\n") - 1)
    dataset.source.save(f"{name}.csv", ContentFile(data), save=False)
    dataset.table.save("table.csv", ContentFile(table_to_csv(table).encode()), save=False)
    dataset.save()
    return dataset
