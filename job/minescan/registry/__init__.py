"""The model registry: immutable versions, channels that point at them, the evaluation gate.

    store.py    versions (content-named, committed whole with `batch.commit`, verified on
                every read), channel pointers moved by compare-and-swap, their history
    gate.py     the rules file and the gate: candidate and current scored on one pinned set
    follow.py   runs that follow a channel: resolved once per run, pinned in the run

May import the shared facts, `models/` (cards), the commit protocol and run layout of
`batch/` (`batch.commit`, `batch.layout`), `scan.config` (the run config it resolves) and,
in `gate.py` only, `training/` (the evaluation code); never `acquire/` or `cli/`.
`batch/` calls `follow.follow_channel` when a map pod pins its run.
"""
