"""Benchmark of a metrics scrape's database gauges at scale.

Fills a throwaway embedded PostgreSQL with a job queue as it looks after months in production —
``--finished`` failed/cancelled jobs kept forever (procrastinate deletes only the succeeded ones),
a few thousand waiting and running, a few summaries waiting among ``--summaries`` rows — then
times, in the same run and on the same connection:

- **scrape**: what ``DatabaseCollector`` reads at each scrape (queue depth by queue and status,
  the oldest due job, the finished-jobs estimate, live workers, waiting summaries);
- **baseline**: the obvious query for "jobs by status", ``SELECT status, count(*) FROM
  procrastinate_jobs GROUP BY status``, which counts every row;
- **floor**: ``SELECT 1`` (one round trip: what no query can beat).

    uv run python bench/metrics.py [--finished 1000000] [--active 5000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intellizap.db import migrate
from intellizap.db.embedded import EmbeddedPostgres
from intellizap.observability.database import DatabaseCollector


def fill(url: str, *, finished: int, active: int, summaries: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, attempts)
            SELECT (ARRAY['sending', 'summaries', 'transcription', 'sync'])[1 + n %% 4],
                   'send_text', jsonb_build_object('text', repeat('x', 200), 'n', n),
                   CAST((ARRAY['failed', 'failed', 'failed', 'cancelled'])[1 + n %% 4]
                        AS procrastinate_job_status), 8
            FROM generate_series(1, %(finished)s) AS n
            """,
            {"finished": finished},
        )
        conn.execute(
            """
            INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, scheduled_at)
            SELECT (ARRAY['sending', 'summaries'])[1 + n %% 2], 'send_text', '{}',
                   CAST(CASE WHEN n %% 10 = 0 THEN 'doing' ELSE 'todo' END
                        AS procrastinate_job_status),
                   CASE WHEN n %% 3 = 0 THEN now() + interval '5 minutes' END
            FROM generate_series(1, %(active)s) AS n
            """,
            {"active": active},
        )
        conn.execute("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now())")
        tenant = conn.execute(
            "INSERT INTO usuarios (instancia, \"horaResumo\") VALUES ('bench', '20:00') RETURNING id"
        ).fetchone()
        assert tenant is not None
        group = conn.execute(
            "INSERT INTO grupos (grupo_id_externo, usuario_id, ativo) VALUES"
            " ('120363400000000001@g.us', %s, true) RETURNING id",
            (tenant[0],),
        ).fetchone()
        assert group is not None
        conn.execute(
            """
            INSERT INTO resumos (grupo_id, usuario_id, status, origem, conteudo, created_at)
            SELECT %(g)s, %(t)s,
                   CAST(CASE WHEN n %% 1000 = 0 THEN 'pendente' ELSE 'enviado' END AS status_resumo),
                   'agendado',
                   CASE WHEN n %% 1000 = 0 THEN NULL ELSE repeat('resumo ', 100) END,
                   now() - make_interval(mins => n)
            FROM generate_series(1, %(summaries)s) AS n
            """,
            {"g": group[0], "t": tenant[0], "summaries": summaries},
        )
        conn.execute("VACUUM ANALYZE procrastinate_jobs")
        conn.execute("VACUUM ANALYZE resumos")


def timed(action: Callable[[], object], rounds: int) -> list[float]:
    action()  # warm the cache
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--active", type=int, default=5_000)
    parser.add_argument("--summaries", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="intellizap-metrics-") as workdir:
        embedded = EmbeddedPostgres(Path(workdir))
        url = embedded.start()
        migrate.upgrade(url)
        started = time.perf_counter()
        fill(url, finished=args.finished, active=args.active, summaries=args.summaries)
        print(
            f"filled: {args.finished:,} finished + {args.active:,} active jobs, "
            f"{args.summaries:,} summaries in {time.perf_counter() - started:.0f} s"
        )
        collector = DatabaseCollector(url, worker_timeout=60, min_interval=0)
        snapshot = collector.snapshot()
        assert snapshot is not None
        print(
            f"readings: {snapshot.jobs}, ready {snapshot.ready}, finished estimate "
            f"{ {k: round(v) for k, v in snapshot.finished_estimate.items()} }, "
            f"workers {snapshot.workers}, summaries waiting {snapshot.summaries_waiting}"
        )
        with psycopg.connect(url, autocommit=True) as conn:

            def baseline() -> object:
                return conn.execute(
                    "SELECT status, count(*) FROM procrastinate_jobs GROUP BY status"
                ).fetchall()

            def floor() -> object:
                return conn.execute("SELECT 1").fetchall()

            results = {
                "floor (SELECT 1)": timed(floor, args.rounds),
                "scrape (DatabaseCollector)": timed(collector.snapshot, args.rounds),
                "baseline (GROUP BY status)": timed(baseline, args.rounds),
            }
        collector.close()
        embedded.release()
    medians = {name: statistics.median(values) for name, values in results.items()}
    scrape = medians["scrape (DatabaseCollector)"]
    for name, median in medians.items():
        print(
            f"{name:<28} median {median * 1000:8.2f} ms   "
            f"p95 {sorted(results[name])[int(len(results[name]) * 0.95) - 1] * 1000:8.2f} ms   "
            f"scrape / this = {scrape / median:6.3f}"
        )


if __name__ == "__main__":
    main()
