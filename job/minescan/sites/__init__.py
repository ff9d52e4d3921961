"""Everything after detection: from per-scene detections to the sites an analyst reviews.

    cluster.py    each national cell once across overlapping scenes, single-linkage sites,
                  and scoring sites against planted truth (the demo's report)

May import the shared facts, `scan.geometry` and `outputs/` (for the table contracts);
never `batch/` or `acquire/`: the reduce calls in here and writes what comes out.
"""
