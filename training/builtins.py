"""The built-in public datasets (training/compute/builtin.py's catalogue) as
Dataset rows that everyone sees. They belong to one inactive account that
cannot log in, so every Dataset keeps an owner (versions are numbered per
owner and name, as uploads are). Loading again is free when nothing changed:
a file's content hash is known before it is parsed."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from .models import Dataset
from .models.datasets import Stored, content_hash, store_dataset

BUILTIN_USERNAME = "biofm-builtin"


def builtin_owner():
    User = get_user_model()
    user, created = User.objects.get_or_create(username=BUILTIN_USERNAME,
                                               defaults={"is_active": False, "email": ""})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def load_builtin_datasets() -> list[tuple[str, Stored]]:
    """Creates the rows of the catalogue's datasets that are missing (or whose
    file or columns changed: that is a new version); answers each one."""
    from training.compute.builtin import BUILTIN_DATASETS

    owner = builtin_owner()
    done = []
    for entry in BUILTIN_DATASETS:
        data = entry.read_bytes()
        digest = content_hash(data, entry.smiles_column, dict(entry.targets), [entry.name_column])
        existing = Dataset.objects.filter(owner=owner, name=entry.name, content_hash=digest).first()
        if existing is not None:
            done.append((entry.name, Stored(existing, False)))
            continue
        table = entry.load()
        done.append((entry.name, store_dataset(
            owner=owner, name=entry.name, data=data, filename=entry.file, table=table,
            smiles_column=entry.smiles_column, description=f"{entry.title}. {entry.description}",
            builtin=True, citation=entry.citation)))
    return done
