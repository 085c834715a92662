"""The comparison point for benches/import.sh: dlt's `rest_api` source reading
every customer of a running `ferry sandbox` (offset paging) into JSON lines
files, the way ferry's import does. Prints one JSON line with the figures.

usage: python dlt_rest_api.py BASE_URL PAGE_SIZE OUT_DIR
"""

import json
import os
import sys
import time

import dlt
from dlt.sources.rest_api import rest_api_source


def main() -> None:
    base_url, page_size, out_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    source = rest_api_source(
        {
            "client": {
                "base_url": base_url,
                "paginator": {
                    "type": "offset",
                    "limit": page_size,
                    "offset_param": "offset",
                    "limit_param": "limit",
                    "total_path": "total",
                },
            },
            "resources": [
                {
                    "name": "customers",
                    "endpoint": {"path": "customers", "data_selector": "data"},
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="ferry_bench",
        destination=dlt.destinations.filesystem(bucket_url="file://" + os.path.abspath(out_dir)),
        dataset_name="bench",
        pipelines_dir=os.path.join(out_dir, ".dlt"),
    )
    started = time.monotonic()
    info = pipeline.run(source, loader_file_format="jsonl")
    elapsed = time.monotonic() - started
    rows = pipeline.last_trace.last_normalize_info.row_counts.get("customers", 0)
    print(
        json.dumps(
            {
                "tool": "dlt rest_api " + dlt.__version__,
                "records": rows,
                "elapsedSecs": round(elapsed, 3),
                "recordsPerSec": round(rows / elapsed, 1) if elapsed else None,
                "loads": len(info.loads_ids),
            }
        )
    )


if __name__ == "__main__":
    main()
