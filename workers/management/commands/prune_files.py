"""Delete stored files that no row refers to any more.

    python manage.py prune_files [--grace-hours H] [--dry-run]

Looks in the folders the portal writes (job results, stored ATOMICA inputs,
design targets; see workers/retention.py). A file newer than the grace
period (BIOFM_ORPHAN_GRACE_HOURS, 24) is kept: an upload is stored just
before its job row exists. Files of jobs still queued or running are kept.
The beat schedule runs the same code daily (workers.prune_files).
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from workers import retention


class Command(BaseCommand):
    help = "Delete stored files no row refers to (older than a grace period)."

    def add_arguments(self, parser):
        parser.add_argument("--grace-hours", type=int, default=None,
                            help="keep files newer than this "
                                 f"(default BIOFM_ORPHAN_GRACE_HOURS, now {settings.BIOFM_ORPHAN_GRACE_HOURS})")
        parser.add_argument("--dry-run", action="store_true", help="list what would go; delete nothing")

    def handle(self, *args, grace_hours, dry_run, **options):
        if grace_hours is not None and grace_hours < 1:
            raise CommandError("--grace-hours must be at least 1.")
        report = retention.prune_files(grace_hours=grace_hours, dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        for name in report.files:
            self.stdout.write(f"{verb} {name}")
        self.stdout.write(f"{verb} {len(report.files)} orphaned files, {report.bytes:,} bytes.")
        for error in report.errors:
            self.stderr.write(f"Not deleted: {error}")
        if report.errors:
            raise CommandError(f"{len(report.errors)} files could not be deleted.")
