"""Everything after detection: from per-scene detections to the sites an analyst reviews.

    national.py    the one entry point: `load_inputs` (registers, layers, reviews: checked
                   before any work) and `build_national` (pure: detections → NationalSites)
    cluster.py     each national cell once across overlapping scenes, single linkage on the
                   ellipsoid, and scoring sites against planted truth (the demo's report)
    geodesy.py     3-D chords, ellipsoidal areas and point-to-footprint geodesics
    footprints.py  the scenes' cell grids and each site's footprint polygon
    outline.py     dissolving lattice cells into polygons, vectorised
    ids.py         stable, place-derived site ids
    registers.py   official registers (the ANM dam register as published, point and
                   polygon layers) and matching them against sites
    layers.py      reading and repairing user polygon layers (protected land, regions)
    overlay.py     hectares of sites inside protected areas and regions, per-area totals
    reviews.py     analyst verdicts carried between runs
    diff.py        what changed between the sites of two runs

May import the shared facts, `scan.geometry`, `batch.grid` and `outputs/` (for the table
contracts); never `batch/` (but its grid contract), `acquire/` or `synth/`: the reduce
calls in here and writes what comes out. docs/SITES.md says what a site is.
"""
