"""What each GPU worker has told the portal about its ESM-2 checkpoints.

The web process and the workers may be on different machines, so the web
process cannot look at a worker's disk: each worker writes its row here
(analysis/esm/inventory.py) and the form and clean_esm_params read the fresh
rows of the workers serving the kind's queue. Operators see the rows, with
the paths, in the admin.
"""

from __future__ import annotations

from django.db import models


class WorkerInventory(models.Model):
    # Celery's node name (gpu@host), as the health page and attempts name workers.
    worker = models.CharField(max_length=255, unique=True)
    queues = models.JSONField(default=list)
    # name -> {"path", "bytes", "contacts"}: the published checkpoints on its disk.
    checkpoints = models.JSONField(default=dict)
    may_download = models.BooleanField(default=False)
    # Where it looked, in order (BIOFM_ESM_WEIGHTS_DIR, then torch hub's cache).
    search_dirs = models.JSONField(default=list)
    reported_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "ESM-2 models on a worker"
        verbose_name_plural = "ESM-2 models on workers"
        ordering = ["worker"]

    def __str__(self) -> str:
        return self.worker
