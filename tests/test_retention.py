"""Retention: `prune_jobs` deletes the result files (optionally the rows) of
final jobs past BIOFM_RESULT_RETENTION_DAYS, `prune_files` deletes stored
files no row refers to, both with a dry run, both as beat-scheduled tasks.
Files are real files in the test's media storage."""

from __future__ import annotations

import io
import os
import time
import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from analysis.atomica.inputs import store_input
from analysis.atomica.models import StoredInput
from biofm_site.celery import app as celery_app
from workers import retention
from workers.models import Job, JobFile, Status

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def make_job(owner, status=Status.SUCCEEDED, ended_days_ago: float | None = 40, **fields) -> Job:
    finished = timezone.now() - ended_days_ago * DAY if ended_days_ago is not None else None
    defaults = {"kind": "test.sleep", "queue": "cpu", "params": {"seconds": 0, "steps": 1}}
    return Job.objects.create(**{**defaults, **fields}, owner=owner, status=status, finished_at=finished)


def add_file(job, name="result.txt", content=b"data", token="tok") -> JobFile:
    jf = JobFile(job=job, name=name, attempt_token=token)
    jf.file.save(name, ContentFile(content), save=False)
    jf.size = len(content)
    jf.save()
    return jf


def stored(path: str, content: bytes = b"x", age_hours: float = 48) -> str:
    """A file in storage, last modified `age_hours` ago."""
    path = default_storage.save(path, ContentFile(content))
    age(path, age_hours)
    return path


def age(path: str, hours: float) -> None:
    when = time.time() - hours * 3600
    os.utime(default_storage.path(path), (when, when))


def exists(path: str) -> bool:
    return default_storage.exists(path)


# --- prune_jobs ---------------------------------------------------------------

def test_prune_jobs_deletes_old_results_and_keeps_the_rest(user, settings, client):
    settings.BIOFM_RESULT_RETENTION_DAYS = 30
    old = make_job(user)
    old_file = add_file(old, content=b"12345").file.name
    recent = make_job(user, ended_days_ago=5)
    recent_file = add_file(recent).file.name
    # Not final: a requeued job keeps its files whatever its age.
    running = make_job(user, Status.RUNNING, ended_days_ago=None, created_at=timezone.now() - 90 * DAY)
    running_file = add_file(running).file.name

    dry = retention.prune_jobs(dry_run=True)
    assert dry.files == [old_file] and dry.jobs == 1 and dry.bytes == 5
    assert exists(old_file) and JobFile.objects.filter(job=old).exists()
    assert Job.objects.get(pk=old.pk).files_pruned_at is None

    report = retention.prune_jobs()
    assert report.files == [old_file] and report.jobs == 1 and report.rows_deleted == 0
    assert not exists(old_file) and not JobFile.objects.filter(job=old).exists()
    assert exists(recent_file) and exists(running_file)
    old.refresh_from_db()
    assert old.files_pruned_at is not None and old.status == Status.SUCCEEDED
    # Done once: the next run has nothing left to do.
    assert retention.prune_jobs().jobs == 0

    client.force_login(user)
    page = client.get(reverse("job_detail", args=[old.pk])).content.decode()
    assert 'id="files-pruned"' in page and "result.txt" not in page


def test_prune_jobs_can_delete_the_rows(user, settings):
    settings.BIOFM_RESULT_RETENTION_DAYS = 30
    old = make_job(user, Status.FAILED)
    name = add_file(old).file.name
    kept = make_job(user, Status.CANCELLED, ended_days_ago=29)

    report = retention.prune_jobs(delete_rows=True)

    assert report.rows_deleted == 1 and report.files == [name]
    assert not Job.objects.filter(pk=old.pk).exists() and not exists(name)
    assert Job.objects.filter(pk=kept.pk).exists()


def test_retention_zero_keeps_everything(user, settings):
    settings.BIOFM_RESULT_RETENTION_DAYS = 0
    old = make_job(user, ended_days_ago=3650)
    name = add_file(old).file.name
    assert retention.prune_jobs().summary()["jobs"] == 0
    out = io.StringIO()
    call_command("prune_jobs", stdout=out)
    assert "Retention is off" in out.getvalue()
    assert exists(name)


def test_prune_jobs_command_dry_run_lists_and_keeps(user, settings):
    settings.BIOFM_RESULT_RETENTION_DAYS = 0  # the option overrides it
    old = make_job(user)
    name = add_file(old).file.name
    out = io.StringIO()
    call_command("prune_jobs", "--days", "30", "--dry-run", stdout=out)
    assert f"Would delete {name}" in out.getvalue()
    assert "1 jobs" in out.getvalue() and exists(name)

    call_command("prune_jobs", "--days", "30", stdout=io.StringIO())
    assert not exists(name)


# --- prune_files --------------------------------------------------------------

@pytest.fixture
def storage_tree(user):
    """Files of every kind the portal writes, referenced or not."""
    from design.models import Target

    final = make_job(user, ended_days_ago=1)
    running = make_job(user, Status.RUNNING, ended_days_ago=None)
    pruned = make_job(user, ended_days_ago=100, files_pruned_at=timezone.now(),
                      kind="analysis.atomica_embeddings")
    result = add_file(final).file.name
    age(result, 48)
    used = store_input(b"\x1f\x8b records", "a.jsonl.gz", user)
    used_sdf_item = store_input(b"sdf", "l.sdf", user, suffix=".sdf")
    atomica = make_job(user, ended_days_ago=1, kind="analysis.atomica_embeddings", params={
        "items": [{"source": "stored", "input_id": used["input_id"],
                   "ligand_sdf_input_id": used_sdf_item["input_id"]}]})
    old = store_input(b"\x1f\x8b old", "b.jsonl.gz", user)
    pruned.params = {"items": [old]}
    pruned.save()
    StoredInput.objects.get(pk=old["input_id"]).jobs.add(pruned)
    used_input, used_sdf, input_of_pruned = (StoredInput.objects.get(pk=item["input_id"]).file.name
                                             for item in (used, used_sdf_item, old))
    target_file = stored(f"design/targets/{uuid.uuid4()}/1abc.pdb")
    Target.objects.create(owner=user, name="t", structure=target_file, format="pdb")
    for path in (used_input, used_sdf, input_of_pruned):
        age(path, 48)
    tree = {
        "kept": [
            result, used_input, used_sdf, target_file,
            # an attempt still running stores its files before their rows exist
            stored(f"jobs/{running.pk}/tok/partial.npz"),
            # an upload moments before its job row: inside the grace period
            stored(f"atomica_inputs/{uuid.uuid4().hex}.jsonl.gz", age_hours=1),
            # not a folder the portal manages
            stored("elsewhere/notes.txt"),
            # a running job's saved state, for its next attempt (workers/checkpoints.py)
            stored(f"checkpoints/{running.pk}/state-1.zip"),
        ],
        "orphans": [
            stored(f"jobs/{uuid.uuid4()}/tok/result.txt"),  # the job row was deleted
            stored(f"jobs/{final.pk}/losing-attempt/result.txt"),  # a losing attempt's leftovers
            stored(f"atomica_inputs/{uuid.uuid4().hex}.jsonl.gz"),  # its submission was refused
            input_of_pruned,
            stored(f"design/targets/{uuid.uuid4()}/gone.pdb"),  # its target was deleted
            stored(f"checkpoints/{final.pk}/state-1.zip"),  # its job ended without deleting it
        ],
    }
    return tree, atomica


def test_orphans_are_listed_by_a_dry_run_and_deleted_by_a_run(storage_tree):
    tree, _ = storage_tree

    dry = retention.prune_files(dry_run=True)
    assert sorted(dry.files) == sorted(tree["orphans"])
    assert all(exists(p) for p in tree["orphans"] + tree["kept"])

    report = retention.prune_files()
    assert sorted(report.files) == sorted(tree["orphans"]) and not report.errors
    # The pruned job's input goes with its row; the used ones keep theirs.
    assert StoredInput.objects.count() == 2
    assert not any(exists(p) for p in tree["orphans"])
    assert all(exists(p) for p in tree["kept"])
    # The folders the deletions emptied are gone too; the managed folders stay.
    root = default_storage.path("")
    deleted_job_dir = os.path.join(root, *tree["orphans"][0].split("/")[:2])
    assert not os.path.exists(deleted_job_dir) and os.path.isdir(os.path.join(root, "jobs"))
    assert retention.prune_files().files == []


def test_grace_period_is_the_operators(storage_tree, settings):
    tree, _ = storage_tree
    fresh = tree["kept"][5]
    age(fresh, 3)
    settings.BIOFM_ORPHAN_GRACE_HOURS = 24
    assert fresh not in retention.prune_files(dry_run=True).files
    out = io.StringIO()
    call_command("prune_files", "--grace-hours", "2", "--dry-run", stdout=out)
    assert f"Would delete {fresh}" in out.getvalue() and exists(fresh)


def test_inputs_of_a_job_whose_files_get_pruned_become_orphans(storage_tree, settings):
    tree, atomica = storage_tree
    settings.BIOFM_RESULT_RETENTION_DAYS = 1
    Job.objects.filter(pk=atomica.pk).update(finished_at=timezone.now() - 2 * DAY)
    used = [p for p in tree["kept"] if p.startswith("atomica_inputs/")][:2]
    assert not set(used) & set(retention.prune_files(dry_run=True).files)

    retention.prune_jobs()

    assert set(used) <= set(retention.prune_files().files)
    assert not any(exists(p) for p in used)


def test_a_rerun_keeps_the_stored_inputs_of_a_pruned_job(storage_tree, user):
    tree, atomica = storage_tree
    Job.objects.filter(pk=atomica.pk).update(files_pruned_at=timezone.now())
    make_job(user, Status.QUEUED, ended_days_ago=None, kind=atomica.kind, params=atomica.params)
    used = [p for p in tree["kept"] if p.startswith("atomica_inputs/")][:2]
    assert not set(used) & set(retention.prune_files().files)


# --- The tasks and their schedule -----------------------------------------------

def test_beat_schedule_runs_both_prunes_on_registered_tasks(settings):
    celery_app.loader.import_default_modules()  # what a worker does at start: autodiscovery
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert {schedule["prune-jobs"]["task"], schedule["prune-files"]["task"]} == {
        "workers.prune_jobs", "workers.prune_files"}
    for entry in ("prune-jobs", "prune-files"):
        assert schedule[entry]["task"] in celery_app.tasks
        assert schedule[entry]["options"]["queue"] == "notify"


def test_tasks_run_the_same_code(user, settings):
    from workers.tasks import prune_files, prune_jobs

    settings.BIOFM_RESULT_RETENTION_DAYS = 30
    name = add_file(make_job(user)).file.name
    orphan = stored(f"jobs/{uuid.uuid4()}/tok/x.txt")

    assert prune_jobs.apply().get()["files"] == 1
    assert prune_files.apply().get()["files"] == 1
    assert not exists(name) and not exists(orphan)
