"""Delete the result files (and optionally the rows) of old final jobs.

    python manage.py prune_jobs [--days N] [--delete-rows] [--dry-run]

Defaults come from BIOFM_RESULT_RETENTION_DAYS (0: keep forever) and
BIOFM_RESULT_RETENTION_DELETE_ROWS. Jobs still queued or running are never
touched. The beat schedule runs the same code daily (workers.prune_jobs).
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from workers import retention


class Command(BaseCommand):
    help = "Delete result files of final jobs older than the retention period."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None,
                            help="jobs that ended more than this many days ago "
                                 f"(default BIOFM_RESULT_RETENTION_DAYS, now {settings.BIOFM_RESULT_RETENTION_DAYS})")
        parser.add_argument("--delete-rows", action="store_true", default=None,
                            help="delete the job rows too (default BIOFM_RESULT_RETENTION_DELETE_ROWS)")
        parser.add_argument("--dry-run", action="store_true", help="list what would go; delete nothing")

    def handle(self, *args, days, delete_rows, dry_run, **options):
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1.")
        days = settings.BIOFM_RESULT_RETENTION_DAYS if days is None else days
        if days <= 0:
            self.stdout.write("Retention is off (BIOFM_RESULT_RETENTION_DAYS=0): nothing to prune.")
            return
        report = retention.prune_jobs(days=days, delete_rows=delete_rows, dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        for name in report.files:
            self.stdout.write(f"{verb} {name}")
        rows = f", {report.rows_deleted} job rows" if report.rows_deleted else ""
        self.stdout.write(f"{verb} the files of {report.jobs} jobs that ended over {days} days ago: "
                          f"{len(report.files)} files, {report.bytes:,} bytes{rows}.")
        for error in report.errors:
            self.stderr.write(f"Not deleted: {error}")
        if report.errors:
            raise CommandError(f"{len(report.errors)} files could not be deleted.")
