"""The portal under a production-sized table: listings, the polled status
partial, submissions and a real worker's throughput, each beside its target.

    .venv/bin/python bench/platform_benchmark.py            # 20,000 jobs (the real target)
    .venv/bin/python bench/platform_benchmark.py --quick    # 2,000 jobs, about a minute

It creates a PostgreSQL database of its own on the server of DATABASE_URL
(or --database-url), migrates it, seeds a 10-member lab whose members own the
jobs (most shared with the lab) with JSON bodies of realistic sizes (FASTA
parameters of kilobytes, 1 % of a megabyte; results averaging about 30 kB),
measures, and drops the database. Requests go through Django's test client in
this process (the web side's own cost, without gunicorn or a network); the
worker is a real `celery worker -c 2` on REDIS_URL (or --redis-url), which
should be a Redis database no one else is using.

The named baseline is the job list as it was: `visible_to` joining lab
memberships and DISTINCT over every column, with the JSON not deferred.
Baseline and current pages alternate after a warm-up; the last line is
`ratio X.XX`, the baseline's median time over the current one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AMINO = "ACDEFGHIKLMNPQRSTVWY"
# Its input is generated (seeded jobs of realistic JSON sizes), so no file.
INPUTS: list[str] = []


def parse_args(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2,000 jobs and fewer rounds (about a minute)")
    p.add_argument("--jobs", type=int, help="jobs to seed (default 20,000; 2,000 with --quick)")
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/7"))
    p.add_argument("--keep", action="store_true", help="leave the bench database in place")
    return p.parse_args(argv)


# ---------------------------------------------------------------- setup

def bench_database(url: str) -> tuple[str, str]:
    """(maintenance URL, bench URL) on the same server."""
    parsed = urlparse(url)
    if not parsed.scheme.startswith("postgres"):
        sys.exit("The benchmark needs PostgreSQL: set DATABASE_URL or --database-url.")
    name = f"biofm_bench_{os.getpid()}"
    return urlunparse(parsed._replace(path="/postgres")), urlunparse(parsed._replace(path="/" + name))


def admin_sql(maintenance_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        conn.execute(sql)


def payload_pool(rng: random.Random):
    """A few bodies per kind of job; jobs share them (the table still stores each)."""
    def fasta(records: int, length: int) -> str:
        return "".join(f">p{i} protein {i}\n" + "".join(rng.choices(AMINO, k=length)) + "\n" for i in range(records))

    def floats(n: int) -> list[float]:
        return [round(rng.uniform(-3, 3), 6) for _ in range(n)]

    def protparam():
        return ({"fasta": fasta(10, 300)},
                {"records": [{"id": f"p{i}", "mw": rng.uniform(1e4, 9e4), "hydropathy": floats(60)}
                             for i in range(10)]})

    def esm():
        return ({"fasta": fasta(30, 330), "model": "esm2_t12_35M_UR50D", "repr_layers": [-1]},
                {"pca": {"x": floats(900), "y": floats(900)}, "summary": [{"id": f"p{i}"} for i in range(30)]})

    def design():
        return ({"smiles": ["CCO" * 10] * 80, "objectives": [{"property": "qed"}]},
                {"population": [{"smiles": "c1ccccc1" + "C" * 20, "score": rng.random(),
                                 "properties": {k: rng.random() for k in "abcdefghij"}} for _ in range(250)]})

    def big_esm():
        return ({"fasta": fasta(3000, 330)}, {"pca": {"x": floats(4000), "y": floats(4000)}})

    return {"analysis.protparam": [protparam() for _ in range(4)], "analysis.esm_embeddings": [esm() for _ in range(4)],
            "design.properties": [design() for _ in range(3)], "big": [big_esm() for _ in range(2)]}


def seed(n_jobs: int, n_members: int):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from accounts.models import ApiToken, Lab, Membership
    from workers.models import Job, Status

    User = get_user_model()
    rng = random.Random(7)
    users = []
    for i in range(n_members):
        u = User.objects.create_user(username=f"member{i}@bench.org", email=f"member{i}@bench.org", password=None)
        users.append(u)
    lab = Lab.objects.create(name="Bench lab", slug="bench-lab")
    for i, u in enumerate(users):
        Membership.objects.create(lab=lab, user=u, role="owner" if i == 0 else "member")
    pool = payload_pool(rng)
    kinds = ["analysis.protparam"] * 60 + ["analysis.esm_embeddings"] * 25 + ["design.properties"] * 14 + ["big"]
    statuses = [Status.SUCCEEDED] * 90 + [Status.FAILED] * 6 + [Status.CANCELLED] * 2 + [Status.QUEUED, Status.RUNNING]
    now = timezone.now()
    total_bytes = 0
    batch = []
    for i in range(n_jobs):
        kind = rng.choice(kinds)
        params, result = rng.choice(pool[kind])
        total_bytes += len(json.dumps(params)) + len(json.dumps(result))
        created = now - timezone.timedelta(minutes=n_jobs - i)
        status = rng.choice(statuses)
        batch.append(Job(
            kind="analysis.esm_embeddings" if kind == "big" else kind, owner=users[i % n_members], lab=lab,
            shared=rng.random() < 0.9, title=f"bench job {i}", params=params, result=result,
            queue="gpu" if "esm" in kind or kind == "big" else "cpu", status=status, progress=100.0,
            created_at=created, started_at=created, finished_at=created + timezone.timedelta(seconds=30),
            dispatched_at=created, run_seconds=30.0))
        if len(batch) == 500:
            Job.objects.bulk_create(batch)
            batch = []
    Job.objects.bulk_create(batch)
    # One running ESM job with a megabyte of parameters: what 50 pollers watch.
    params, result = pool["big"][0]
    polled = Job.objects.create(kind="analysis.esm_embeddings", owner=users[0], lab=lab, shared=True,
                                params=params, result=result, queue="gpu", status=Status.RUNNING,
                                progress=40.0, progress_message="batch 4 of 10", started_at=now,
                                dispatched_at=now, claim_token="x", lease_expires_at=now)
    _, raw = ApiToken.issue(users[0], "bench")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return users, lab, polled, raw, total_bytes


# ---------------------------------------------------------------- measuring

def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def p(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def count_queries(fn) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def line(name: str, value: float, unit: str, target: str, ok: bool, extra: str = "") -> None:
    print(f"  {name:<46} {value:10.2f} {unit:<6} target {target:<10} {'met' if ok else 'MISSED'}{extra}")


@contextmanager
def baseline_listing():
    """The job list (and status partial) as they were: a join over lab
    memberships, DISTINCT over every column, and no deferred JSON."""
    from django.db.models import Q

    from accounts.scoping import LabScopedQuerySet
    from workers.models import JobQuerySet

    def old_visible_to(self, user):
        return self.filter(Q(owner=user) | Q(shared=True, lab__memberships__user=user)).distinct()

    def old_for_listing(self):
        return self.select_related("owner")

    def old_only(self, *fields):  # the partial read the whole row
        return self

    saved = LabScopedQuerySet.visible_to, JobQuerySet.for_listing, JobQuerySet.only
    LabScopedQuerySet.visible_to, JobQuerySet.for_listing, JobQuerySet.only = old_visible_to, old_for_listing, old_only
    try:
        yield
    finally:
        LabScopedQuerySet.visible_to, JobQuerySet.for_listing, JobQuerySet.only = saved


def pollers(user, job, n_pollers: int, seconds: float, interval: float) -> list[float]:
    """`n_pollers` threads, each asking for the partial every `interval` s, as htmx does."""
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    url = reverse("job_progress", args=[job.pk]) + "?was=running"
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def poll(offset):
        client = Client()
        client.force_login(user)
        time.sleep(offset)
        mine = []
        while time.monotonic() < stop_at:
            t = time.perf_counter()
            r = client.get(url)
            mine.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200
            time.sleep(max(0.0, interval - mine[-1] / 1000))
        with lock:
            latencies.extend(mine)
        connection.close()

    threads = [threading.Thread(target=poll, args=(i * interval / n_pollers,)) for i in range(n_pollers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def worker_throughput(args, bench_url: str, user, raw_token: str, n_jobs: int) -> tuple[float, list[float]]:
    """Submit `n_jobs` trivial jobs (timing each submission), then let one real
    worker of concurrency 2 run them; jobs/s from its first claim to its last end."""
    from django.db.models import Max, Min
    from django.test import Client

    from workers.models import Job, Status

    profile = user.profile
    profile.max_running_jobs = n_jobs + 10  # every job goes to the broker at once
    profile.save()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    payload = {"kind": "test.sleep", "params": {"seconds": 0, "steps": 1}, "title": "trivial"}
    submit = []
    ids = []
    for _ in range(n_jobs):
        t = time.perf_counter()
        r = client.post("/api/v1/jobs", payload, content_type="application/json")
        submit.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 202, r.content
        ids.append(r.json()["id"])
    env = {**os.environ, "DATABASE_URL": bench_url, "REDIS_URL": args.redis_url, "BIOFM_ENABLE_TEST_KINDS": "1",
           "BIOFM_MEDIA_ROOT": os.environ["BIOFM_MEDIA_ROOT"], "PYTHONUNBUFFERED": "1"}
    log = open(Path(os.environ["BIOFM_MEDIA_ROOT"]) / "worker.log", "w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "biofm_site", "worker", "-Q", "cpu,notify", "-c", "2",
         "--pool", "prefork", "-l", "warning", "-n", f"bench-{uuid.uuid4().hex[:6]}@%h",
         "--without-mingle", "--without-gossip"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        jobs = Job.objects.filter(pk__in=ids)
        while jobs.exclude(status=Status.SUCCEEDED).exists():
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the worker did not finish the jobs; see " + log.name)
            time.sleep(0.2)
        span = jobs.aggregate(first=Min("started_at"), last=Max("finished_at"))
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
    return n_jobs / (span["last"] - span["first"]).total_seconds(), submit


def purge_queues(redis_url: str) -> None:
    """Drop what the bench left in the broker (the email tasks, a submission's message)."""
    import redis

    redis.Redis.from_url(redis_url).delete("cpu", "notify", "gpu")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    n_jobs = args.jobs or (2_000 if args.quick else 20_000)
    rounds = 3 if args.quick else 5
    maintenance_url, bench_url = bench_database(args.database_url)
    name = urlparse(bench_url).path.lstrip("/")
    media = Path("/tmp") / name
    os.environ.update({"DATABASE_URL": bench_url, "REDIS_URL": args.redis_url, "BIOFM_ENABLE_TEST_KINDS": "1",
                       "BIOFM_MEDIA_ROOT": str(media), "DJANGO_SETTINGS_MODULE": "biofm_site.settings",
                       "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"})
    # Production settings (debug off) over plain HTTP, as the test suite runs
    # them: a throwaway key, and no HTTPS redirect for the test client.
    for key, value in (("DJANGO_SECRET_KEY", "bench-only-secret-key-" + uuid.uuid4().hex),
                       ("DJANGO_SECURE_SSL_REDIRECT", "0"), ("DJANGO_SESSION_COOKIE_SECURE", "0"),
                       ("DJANGO_CSRF_COOKIE_SECURE", "0")):
        os.environ.setdefault(key, value)
    media.mkdir(parents=True, exist_ok=True)
    admin_sql(maintenance_url, f'CREATE DATABASE "{name}"')
    try:
        run(args, n_jobs, rounds, bench_url)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            admin_sql(maintenance_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(args, n_jobs: int, rounds: int, bench_url: str) -> None:
    import django

    warnings.filterwarnings("ignore", message="No directory at")  # static files are not collected here
    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from workers.models import Job

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    users, lab, polled, raw, total_bytes = seed(n_jobs, args.members)
    print(f"biofm platform benchmark: {n_jobs:,} jobs ({total_bytes / 1e6:,.0f} MB of JSON), a {args.members}-member "
          f"lab, PostgreSQL {Job.objects.count():,} rows; seeded in {time.perf_counter() - t0:.0f} s")
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; Python {sys.version.split()[0]}")
    user = users[0]
    web = Client()
    web.force_login(user)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    list_url = reverse("job_list")

    def page():
        assert web.get(list_url).status_code == 200

    def api_list():
        assert api.get("/api/v1/jobs?limit=50").status_code == 200

    # Warm-up, then current and baseline pages alternate.
    page()
    with baseline_listing():
        page()
    current, baseline = [], []
    for _ in range(rounds):
        current += timed(page, 3)
        with baseline_listing():
            baseline += timed(page, 1)
    api_list()
    api_times = timed(api_list, 5 * rounds)
    api_bytes = len(api.get("/api/v1/jobs?limit=50").content)
    partial_url = reverse("job_progress", args=[polled.pk])
    partial_single, partial_baseline = [], []
    for _ in range(10):
        partial_single += timed(lambda: web.get(partial_url), 2)
        with baseline_listing():
            partial_baseline += timed(lambda: web.get(partial_url), 2)

    print("\nweb (Django test client, in process)")
    line("job list page p50", statistics.median(current), "ms", "<= 100", statistics.median(current) <= 100,
         f"   ({count_queries(page)} queries)")
    line("API GET /jobs?limit=50 p50", statistics.median(api_times), "ms", "<= 100",
         statistics.median(api_times) <= 100, f"   ({count_queries(api_list)} queries, {api_bytes / 1e3:.1f} kB)")
    n_pollers = 50
    latencies = pollers(user, polled, n_pollers, seconds=8 if args.quick else 30, interval=2.0)
    line(f"status partial p95, {n_pollers} pollers every 2 s", p(latencies, 95), "ms", "<= 25",
         p(latencies, 95) <= 25, f"   ({len(latencies)} requests, p50 {statistics.median(latencies):.1f} ms, "
                                 f"alone p50 {statistics.median(partial_single):.1f} ms, "
                                 f"{count_queries(lambda: web.get(partial_url))} queries)")
    print(f"  {'':<46} baseline (whole row, DISTINCT join) alone p50 {statistics.median(partial_baseline):.1f} ms")

    n_trivial = 300 if args.quick else 2_000
    rate, submit = worker_throughput(args, bench_url, user, raw, n_trivial)
    one = Job.objects.filter(kind="test.sleep").first()
    submit_queries = count_queries(lambda: api.post("/api/v1/jobs", {"kind": "test.sleep", "params": {"seconds": 0}},
                                                    content_type="application/json"))
    Job.objects.filter(kind="test.sleep", status="queued").delete()
    from workers.tasks import run_job

    # One attempt in this process, as the worker runs it, to count its queries.
    job = Job.objects.create(kind="test.sleep", owner=user, lab=lab, params={"seconds": 0, "steps": 1},
                             dispatched_at=timezone.now())
    attempt_queries = count_queries(lambda: run_job.apply(args=[str(job.pk)]))
    purge_queues(args.redis_url)
    line("submission POST /api/v1/jobs p50", statistics.median(submit), "ms", "<= 20",
         statistics.median(submit) <= 20, f"   ({submit_queries} queries)")
    print(f"\nworker (celery -c 2, {n_trivial} trivial jobs of {one.kind})")
    line("trivial jobs per second", rate, "/s", ">= 60", rate >= 60, f"   ({attempt_queries} queries per attempt)")

    base, cur = statistics.median(baseline), statistics.median(current)
    print(f"\nbaseline (join over memberships + DISTINCT, JSON not deferred), job list p50: {base:.1f} ms "
          f"over {len(baseline)} requests; current {cur:.1f} ms over {len(current)}")
    print(f"ratio {base / cur:.2f}")


if __name__ == "__main__":
    main()
