"""The run layout: one place spells every path, and no id or path part can leave its root.

Property-based (hypothesis): whatever a manifest or a user passes as scene id or path part,
either it is refused as bad input, or every file touched lies inside the run root.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from minescan import storage
from minescan.batch import commit
from minescan.batch.layout import RunLayout, check_scene_id, scene_id_from_name
from minescan.batch.manifest import read_manifest
from minescan.errors import InputError

#: text that looks like what attackers and accidents put in ids: separators, dots, unicode
_NASTY = st.text(
    alphabet=st.sampled_from(list("ab.-_/\\ ~$%:?#\x00é\n")), min_size=0, max_size=40
)
_IDS = st.one_of(_NASTY, st.text(max_size=300), st.sampled_from(["..", ".", "../x", "/etc", "a/b", "x" * 129]))
_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _inside(path: str, root: str) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base + os.sep)


@_FUZZ
@given(_IDS)
def test_a_scene_id_is_refused_or_names_one_directory_inside_scenes(scene_id: str) -> None:
    run = "/srv/runs/r1"
    try:
        shard = RunLayout(run).shard(scene_id)
    except InputError:
        return
    assert Path(shard.root).parent == Path(run, "scenes")
    assert Path(shard.root).name == scene_id


@_FUZZ
@given(st.lists(_IDS, max_size=4))
def test_joined_parts_never_leave_their_base(parts: list[str]) -> None:
    for base in ("/srv/run", "gs://bucket/run"):
        try:
            joined = storage.join(base, *parts)
        except InputError:
            continue
        if storage.is_remote(base):
            assert joined == base or joined.startswith(base + "/")
            assert "/../" not in joined + "/"
        else:
            assert _inside(joined, base)


@_FUZZ
@given(st.text(max_size=200))
def test_ids_derived_from_any_file_name_are_valid(name: str) -> None:
    assert check_scene_id(scene_id_from_name(name))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_IDS, min_size=1, max_size=3, unique=True))
def test_a_manifest_of_any_ids_touches_nothing_outside_the_run(ids: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp)
        (top / "victim").mkdir()
        (top / "victim" / "keep.txt").write_text("precious")
        (top / "runs" / "r1" / "scenes").mkdir(parents=True)
        (top / "runs" / "sibling").mkdir()
        run = top / "runs" / "r1"

        def outside() -> dict[str, int]:
            return {str(p): p.stat().st_size for p in top.rglob("*") if not _inside(str(p), str(run))}

        before = outside()
        text = json.dumps({"scenes": [{"id": i, "uri": f"/data/{k}.tif"} for k, i in enumerate(ids)]})
        try:
            manifest = read_manifest(text)
        except InputError:
            assert outside() == before
            return
        for entry in manifest.scenes:  # what a map pod does around its scan: clean, commit, read
            shard = RunLayout(str(run)).shard(entry.id)
            commit.clean_uncommitted(shard.root)
            assert commit.publish(shard.root, lambda d: (d.joinpath("x").write_text("1"), {})[1])
            assert commit.read_committed(shard.root) is not None
        assert outside() == before


def test_the_documented_pattern_is_what_is_checked() -> None:
    for good in ("r0001c0002", "S2_2019-01.v3", "a" * 128, "0"):
        assert check_scene_id(good) == good
    for bad in ("", ".", "..", ".hidden", "-x", "a/b", "a b", "a" * 129, "é"):
        with pytest.raises(InputError, match="is not allowed"):
            check_scene_id(bad)
