"""The batch job: runs of many scenes, mapped to shards one pod at a time, then reduced.

    grid.py       the global EPSG:4326 scene grid (27-px-aligned origins, overlaps)
    manifest.py   the scene manifest: which scenes a run maps, on which grid
    layout.py     every path of a run and of a shard, spelled once; scene id rules
    commit.py     committing a directory whole or not at all; verified reads
    shard.py      what a scan writes into its shard, and scanning straight into one
    runner.py     map (one index), reduce (national outputs), run-local (pods on a laptop)

May import everything below it (scan, sites, outputs, models, shared facts); never
`acquire/`. The storage module does the I/O; this room decides what goes where.
"""
