"""The comparison point for benches/postgres.sh: dlt loading the same JSON
lines file into PostgreSQL (its `postgres` destination, psycopg2), the way
`ferry import --from jsonl:FILE --to postgres://…` does. Prints one JSON
line with the figures.

usage: python dlt_postgres.py FILE POSTGRES_URL WORK_DIR
"""

import json
import os
import sys
import time

import dlt


def records(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def main() -> None:
    path, url, work = sys.argv[1], sys.argv[2], sys.argv[3]
    pipeline = dlt.pipeline(
        pipeline_name="ferry_bench",
        destination=dlt.destinations.postgres(credentials=url),
        dataset_name="dlt_bench",
        pipelines_dir=os.path.join(work, ".dlt"),
    )
    started = time.monotonic()
    pipeline.run(
        dlt.resource(records(path), name="customers", primary_key="id", write_disposition="merge")
    )
    elapsed = time.monotonic() - started
    rows = pipeline.last_trace.last_normalize_info.row_counts.get("customers", 0)
    print(
        json.dumps(
            {
                "tool": f"dlt {dlt.__version__} postgres",
                "records": rows,
                "elapsedSecs": round(elapsed, 3),
                "recordsPerSec": round(rows / elapsed, 1) if elapsed else None,
            }
        )
    )


if __name__ == "__main__":
    main()
