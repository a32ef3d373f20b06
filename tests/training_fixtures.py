"""Tiny training datasets for the tests: the first rows of the built-in ESOL
and BBBP files (training/data, with their sources), stored as Dataset rows the
way an upload is."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from django.conf import settings

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
    """The dataset as an upload stores it (h4's parse_and_store)."""
    from training.models.datasets import parse_and_store

    return parse_and_store(owner=owner, name=name, data=data, filename=f"{name}.csv", smiles_column="smiles",
                           targets=targets, keep_columns=keep).dataset
