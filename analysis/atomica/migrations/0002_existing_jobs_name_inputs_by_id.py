"""Jobs submitted before stored inputs were rows named their files by path:
give each such file a StoredInput owned by the job's owner, and name it by id
in the job's parameters, so those jobs still rerun and prune keeps their files."""

import uuid

from django.db import migrations

PATH_KEYS = {"path": "input_id", "records_path": "records_input_id", "ligand_sdf_path": "ligand_sdf_input_id"}


def forwards(apps, schema_editor):
    from django.core.files.storage import default_storage

    Job = apps.get_model("workers", "Job")
    StoredInput = apps.get_model("analysis_atomica", "StoredInput")
    by_path = {}
    for job in Job.objects.filter(kind="analysis.atomica_embeddings").iterator():
        items = (job.params or {}).get("items") or []
        changed = False
        for item in items:
            if not isinstance(item, dict):
                continue
            for old, new in PATH_KEYS.items():
                path = item.get(old)
                if not isinstance(path, str) or not path.startswith("atomica_inputs/"):
                    continue
                row = by_path.get(path)
                if row is None:
                    try:
                        size = default_storage.size(path)
                    except Exception:  # the file is gone; the row records that it was used
                        size = 0
                    row = StoredInput.objects.create(id=uuid.uuid4(), owner_id=job.owner_id, file=path,
                                                     name=str(item.get("name") or path.rsplit("/", 1)[-1])[:255],
                                                     size=size)
                    by_path[path] = row
                row.jobs.add(job)
                item[new] = str(row.pk)
                del item[old]
                changed = True
        if changed:
            job.save(update_fields=["params"])


class Migration(migrations.Migration):
    dependencies = [
        ("analysis_atomica", "0001_stored_inputs"),
        ("workers", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
