"""Issue 8's campaign, kept: bad inputs and faults through the CLI never lose or hide a
user's data, and each gets a one-line error with a documented exit code.

Every case here failed on 20a34bd (the commit before the fix): paths escaped the run, user
directories were emptied, the committed shard or national set was destroyed before its
replacement was whole, tampered shards reduced to wrong results, and faults exited 1.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from minescan import storage
from minescan.bands import PIXEL_DEG as PX
from minescan.batch import commit
from minescan.errors import (
    EXIT_BAD_INPUT,
    EXIT_BAD_MODEL,
    EXIT_CANT_WRITE,
    EXIT_CONFLICT,
    EXIT_NO_SPACE,
)

from tests.helpers import random_scene, run_cli, write_scene


def _models(tiny_models) -> list[str]:
    return ["--discovery-model", str(tiny_models / "discovery"), "--impact-model", str(tiny_models / "impact")]


def _tree(root: Path) -> dict[str, str]:
    """Every file under `root` (hidden ones too) with its SHA-256: what 'untouched' means."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def _error_line(capsys) -> str:
    """The one error line (text on a terminal, a JSON object's message when stderr is not
    one, as under pytest), checked to carry no traceback."""
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "no error line"
    last = json.loads(err[-1])["message"] if err[-1].startswith("{") else err[-1]
    assert last.startswith("minescan: error: "), err
    assert not any("Traceback" in line for line in err), err
    return last


@pytest.fixture()
def scene(tmp_path) -> Path:
    return write_scene(tmp_path / "s0.tif", random_scene(np.random.default_rng(0), 230, 240))


@pytest.fixture()
def run_with_national(tmp_path, scene, tiny_models) -> tuple[Path, Path]:
    """A run whose two scenes are mapped and reduced once: a committed national set."""
    other = write_scene(tmp_path / "s1.tif", random_scene(np.random.default_rng(1), 230, 240),
                        transform=Affine(PX, 0, -44.0 + 27 * 8 * PX, 0, -PX, -20.0))
    manifest = tmp_path / "scenes.txt"
    manifest.write_text(f"{scene}\n{other}\n")
    run = tmp_path / "run"
    for index in (0, 1):
        assert run_cli(["map", "--manifest", manifest, "--run", run, "--index", index, *_models(tiny_models)]) == 0
    assert run_cli(["reduce", "--run", run]) == 0
    return run, manifest


# ---------------------------------------------------------------- 1. scene ids cannot escape the run


@pytest.mark.parametrize("bad_id", ["../../victim", "../scenes", "..", "/abs/path", "a/b/c", "x" * 300, ""])
def test_a_manifest_scene_id_that_is_not_a_plain_name_is_refused_before_any_work(
    tmp_path, scene, tiny_models, capsys, bad_id
):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    run = tmp_path / "runs" / "r1"
    (run / "scenes" / "earlier").mkdir(parents=True)
    (run / "scenes" / "earlier" / "note.txt").write_text("an earlier shard's note")
    before = _tree(tmp_path)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"scenes": [{"id": "ok", "uri": str(scene)}, {"id": bad_id, "uri": str(scene)}]}))
    code = run_cli(["map", "--manifest", manifest, "--run", run, "--index", 1, *_models(tiny_models)])
    assert code == EXIT_BAD_INPUT
    assert "scene id" in _error_line(capsys) or "manifest is malformed" in capsys.readouterr().err
    after = _tree(tmp_path)
    after.pop("manifest.json")
    before.pop("manifest.json", None)
    assert after == before  # nothing renamed, deleted or created: not even run.json


def test_scan_scene_id_with_a_slash_is_refused_before_the_scan(tmp_path, scene, tiny_models, capsys):
    code = run_cli(["scan", scene, "--out", tmp_path / "out", "--scene-id", "a/b", *_models(tiny_models)])
    assert code == EXIT_BAD_INPUT
    assert "scene id 'a/b' is not allowed" in _error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_ids_derived_from_odd_file_names_are_made_safe(tmp_path, tiny_models):
    path = write_scene(tmp_path / "my scene (1).tif", random_scene(np.random.default_rng(3), 210, 210))
    assert run_cli(["scan", path, "--out", tmp_path / "out", *_models(tiny_models)]) == 0
    record = commit.read_committed(str(tmp_path / "out")).record
    assert record["scene_id"] == "my_scene__1_"


# ---------------------------------------------------------------- 2-3. scan --out and --overwrite


def test_scan_out_refuses_a_directory_that_is_not_a_shard(tmp_path, scene, tiny_models, capsys):
    out = tmp_path / "folder"
    (out / "shard-a").mkdir(parents=True)
    (out / "shard-a" / "_SUCCESS.json").write_text("{}")
    (out / "README").write_text("my notes")
    before = _tree(out)
    assert run_cli(["scan", scene, "--out", out, *_models(tiny_models)]) == EXIT_CONFLICT
    assert "never deletes" in _error_line(capsys)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "s0.tif"]


def test_overwrite_keeps_the_committed_shard_when_the_new_scan_fails(tmp_path, scene, tiny_models, capsys):
    out = tmp_path / "out"
    assert run_cli(["scan", scene, "--out", out, "--scene-id", "s0", *_models(tiny_models)]) == 0
    before = _tree(out)
    truncated = tmp_path / "truncated.tif"
    data = scene.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    code = run_cli(["scan", truncated, "--out", out, "--overwrite", "--scene-id", "s0", *_models(tiny_models)])
    assert code == EXIT_BAD_INPUT
    _error_line(capsys)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s0.tif", "truncated.tif"]


def test_overwrite_replaces_a_committed_shard_once_the_new_one_is_whole(tmp_path, scene, tiny_models):
    out = tmp_path / "out"
    assert run_cli(["scan", scene, "--out", out, *_models(tiny_models)]) == 0
    first = commit.read_committed(str(out)).record
    assert run_cli(["scan", scene, "--out", out, "--overwrite", "--threshold", "0.99", *_models(tiny_models)]) == 0
    second = commit.read_committed(str(out)).record
    assert second["threshold"] == 0.99 != first["threshold"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s0.tif"]


# ---------------------------------------------------------------- 4. national outputs, committed


def _writers() -> dict[int, tuple[str, list[tuple[object, str]]]]:
    """Every `write_*` function of the package, with every module name bound to it."""
    import minescan.batch.runner  # noqa: F401 - make sure the reduce's writers are imported
    import minescan.outputs  # noqa: F401

    found: dict[int, tuple[str, list[tuple[object, str]]]] = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("minescan") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if attr.startswith("write_") and callable(value) and getattr(value, "__module__", "").startswith("minescan"):
                found.setdefault(id(value), (f"{value.__module__}.{value.__name__}", []))[1].append((module, attr))
    return found


def test_each_failing_write_of_the_reduce_keeps_the_previous_national_set(run_with_national, monkeypatch, capsys):
    run, _ = run_with_national
    previous = _tree(run / "national")
    exercised = []
    for key, (qualname, bindings) in _writers().items():
        def fail(*args, _name=qualname, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"while {_name}")

        with monkeypatch.context() as patch:
            for module, attr in bindings:
                patch.setattr(module, attr, fail)
            code = run_cli(["reduce", "--run", run])
        capsys.readouterr()
        if code == 0:  # this writer is not part of the reduce, which committed a new set
            previous = _tree(run / "national")
            continue
        exercised.append(qualname)
        assert code == EXIT_NO_SPACE, qualname
        assert _tree(run / "national") == previous, qualname
        assert sorted(p.name for p in run.iterdir()) == ["national", "run.json", "scenes"], qualname
    assert len(exercised) >= 6, exercised  # sites (4 formats), map, summary, detections, marker
    assert any("write_local_atomic" in q for q in exercised)  # the marker itself


def test_a_reader_sees_the_new_national_set_only_once_it_is_whole(run_with_national):
    run, _ = run_with_national
    first = commit.read_committed(str(run / "national"))
    assert set(first.files) >= {"sites.parquet", "sites.kml", "detections.parquet", "summary.json"}
    assert run_cli(["reduce", "--run", run, "--link-m", "100"]) == 0
    second = commit.read_committed(str(run / "national"))
    assert second.record["summary"]["link_m"] == 100 != first.record["summary"]["link_m"]
    commit.verify_local_tree(second, run / "national")


# ---------------------------------------------------------------- 5. verify on read


def test_a_shard_changed_after_its_commit_is_named_and_fails_the_reduce(run_with_national, capsys):
    run, _ = run_with_national
    national = _tree(run / "national")
    (run / "scenes" / "s1" / "detections.parquet").write_bytes(
        (run / "scenes" / "s0" / "detections.parquet").read_bytes()
    )
    assert run_cli(["reduce", "--run", run]) == EXIT_BAD_INPUT
    line = _error_line(capsys)
    assert "1:s1" in line and "changed after it was committed" in line
    assert _tree(run / "national") == national
    assert run_cli(["reduce", "--run", run, "--allow-missing"]) == 0
    summary = commit.read_committed(str(run / "national")).record["summary"]
    assert summary["scenes_reduced"] == 1 and summary["scenes_corrupt"][0].startswith("1:s1: ")


def test_a_hand_made_marker_is_bad_input_not_a_bug(run_with_national, capsys):
    run, _ = run_with_national
    (run / "scenes" / "s1" / "_SUCCESS.json").write_text(json.dumps({"data": "."}))
    assert run_cli(["reduce", "--run", run]) == EXIT_BAD_INPUT
    assert "no valid 'files'" in _error_line(capsys)


# ---------------------------------------------------------------- 6. silent wrong answers


def test_int8_or_reflectance_scenes_are_refused_unless_scaled(tmp_path, tiny_models, capsys):
    rng = np.random.default_rng(9)
    original = random_scene(rng, 230, 230)
    as_int8 = write_scene(tmp_path / "i8.tif", (original // 40).astype("int8"))
    as_float = write_scene(tmp_path / "f32.tif", (original / 10000.0).astype("float32"), nodata=None)
    assert run_cli(["scan", as_int8, "--out", tmp_path / "o1", *_models(tiny_models)]) == EXIT_BAD_INPUT
    assert "int8" in _error_line(capsys)
    assert run_cli(["scan", as_float, "--out", tmp_path / "o2", *_models(tiny_models)]) == EXIT_BAD_INPUT
    assert "--input-scale" in _error_line(capsys)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()

    as_uint16 = write_scene(tmp_path / "u16.tif", original)
    assert run_cli(["scan", as_uint16, "--out", tmp_path / "ref", *_models(tiny_models)]) == 0
    assert run_cli(["scan", as_float, "--out", tmp_path / "o3", "--input-scale", "10000", *_models(tiny_models)]) == 0
    ref = commit.read_committed(str(tmp_path / "ref")).record["counts"]
    scaled = commit.read_committed(str(tmp_path / "o3")).record["counts"]
    assert scaled["detections"] == ref["detections"] > 0


def test_a_scene_across_the_antimeridian_writes_longitudes_within_180(tmp_path, tiny_models):
    import geopandas as gpd

    west = 180.0 - 100 * PX  # the last 100 px are past 180° E
    path = write_scene(tmp_path / "am.tif", random_scene(np.random.default_rng(4), 220, 260),
                       transform=Affine(PX, 0, west, 0, -PX, -16.0))
    assert run_cli(["scan", path, "--out", tmp_path / "out", *_models(tiny_models)]) == 0
    gdf = gpd.read_parquet(tmp_path / "out" / "detections.parquet")
    assert len(gdf) and gdf["lon"].between(-180, 180).all() and (gdf["lon"] < 0).any()
    xmin, _, xmax, _ = gdf.total_bounds
    assert -180 <= xmin and xmax <= 180


def test_a_rotated_scene_is_refused_at_inspection_naming_the_file(tmp_path, tiny_models, capsys):
    path = write_scene(tmp_path / "rot.tif", random_scene(np.random.default_rng(5), 220, 220),
                       transform=Affine(PX, PX * 0.1, -44.0, 0, -PX, -20.0))
    assert run_cli(["scan", path, "--out", tmp_path / "out", *_models(tiny_models)]) == EXIT_BAD_INPUT
    line = _error_line(capsys)
    assert "rot.tif" in line and "rotated or sheared" in line


def test_a_scene_declaring_too_many_pixels_is_refused_at_once(tmp_path, tiny_models, capsys):
    import rasterio

    huge = tmp_path / "huge.tif"
    with rasterio.open(huge, "w", driver="GTiff", width=100_000, height=100_000, count=12, dtype="uint16",
                       crs="EPSG:4326", transform=Affine(PX, 0, -44, 0, -PX, -20), tiled=True,
                       sparse_ok=True, compress="deflate"):
        pass
    assert huge.stat().st_size < 50_000_000  # sparse: declared, not written
    assert run_cli(["scan", huge, "--out", tmp_path / "out", *_models(tiny_models)]) == EXIT_BAD_INPUT
    assert "max_scene_pixels" in _error_line(capsys)


# ---------------------------------------------------------------- 7. faults get their own exit codes


def test_a_truncated_geotiff_is_bad_input(tmp_path, scene, tiny_models, capsys):
    import rasterio

    big = write_scene(tmp_path / "big.tif", random_scene(np.random.default_rng(8), 600, 600))
    with rasterio.open(big) as src:  # rewrite tiled and compressed, then cut its tail off
        profile = {**src.profile, "tiled": True, "blockxsize": 128, "blockysize": 128, "compress": "deflate"}
        data = src.read()
    with rasterio.open(tmp_path / "tiled.tif", "w", **profile) as dst:
        dst.write(data)
    raw = (tmp_path / "tiled.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(raw[: int(len(raw) * 0.7)])
    assert run_cli(["scan", tmp_path / "cut.tif", "--out", tmp_path / "out", *_models(tiny_models)]) == EXIT_BAD_INPUT
    line = _error_line(capsys)
    assert "cut.tif" in line and "truncated or corrupt" in line
    assert not (tmp_path / "out").exists()


def _read_only(monkeypatch, root: Path) -> None:
    """Simulate a read-only file system under `root` (the tests run as root, whom permission
    bits do not stop): every call that would create, change or remove a file there fails
    with EROFS, as the kernel would."""
    root = str(root.resolve())

    def guard(func, *path_args):
        def wrapped(*args, **kwargs):
            for i in path_args:
                if i < len(args) and os.path.abspath(os.fspath(args[i])).startswith(root):
                    raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(args[i]))
            return func(*args, **kwargs)
        return wrapped

    real_open = os.open

    def open_(path, flags, *args, **kwargs):
        writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if writing and os.path.abspath(os.fspath(path)).startswith(root):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    for name, positions in (("mkdir", (0,)), ("rename", (0, 1)), ("replace", (0, 1)), ("link", (1,)),
                            ("unlink", (0,)), ("rmdir", (0,))):
        monkeypatch.setattr(os, name, guard(getattr(os, name), *positions))


def test_a_read_only_output_is_exit_73_and_a_committed_run_rechecks_without_writing(
    run_with_national, tmp_path, tiny_models, monkeypatch, capsys
):
    run, manifest = run_with_national
    before = _tree(run)
    _read_only(monkeypatch, tmp_path)
    # the committed run: pinning only reads run.json, the shard is skipped
    assert run_cli(["map", "--manifest", manifest, "--run", run, "--index", 0, *_models(tiny_models)]) == 0
    capsys.readouterr()
    # a new run in the read-only place cannot even pin itself
    code = run_cli(["map", "--manifest", manifest, "--run", tmp_path / "new-run", "--index", 0, *_models(tiny_models)])
    assert code == EXIT_CANT_WRITE
    assert "Read-only file system" in _error_line(capsys)
    assert _tree(run) == before


def test_a_full_disk_is_exit_74_with_one_line(tmp_path, scene, tiny_models, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "out" / "_SUCCESS.json"))

    monkeypatch.setattr(storage, "write_local_atomic", full)
    assert run_cli(["scan", scene, "--out", tmp_path / "out", *_models(tiny_models)]) == EXIT_NO_SPACE
    line = _error_line(capsys)
    assert "No space left on device" in line and len(line) < 400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s0.tif"]


def test_a_file_size_limit_is_exit_74(tmp_path, scene, tiny_models):
    """The real kernel limit (RLIMIT_FSIZE) in a child process: Python ignores SIGXFSZ, so
    the write fails with EFBIG, which must not be reported as a bug."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    proc = subprocess.run(
        [sys.executable, "-m", "minescan", "scan", str(scene), "--out", str(tmp_path / "out"), *_models(tiny_models)],
        preexec_fn=limit, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == EXIT_NO_SPACE, proc.stderr[-2000:]
    assert "File too large" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- 8. security


def test_signed_urls_are_not_stored_in_the_run_or_echoed(tmp_path, scene, tiny_models, capsys, gcs_emulator):
    bucket = gcs_emulator.make_bucket()
    signed = storage.join(bucket, "scenes", "s0.tif") + "?X-Goog-Signature=SECRET123&X-Goog-Credential=me"
    storage.write_bytes(signed.split("?")[0], scene.read_bytes())
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"scenes": [{"id": "s0", "uri": signed}]}))
    code = run_cli(["map", "--manifest", manifest, "--run", tmp_path / "run", "--index", 0, *_models(tiny_models)])
    out = capsys.readouterr()
    assert code == EXIT_BAD_INPUT  # the object name holds no query string: it does not exist
    assert "SECRET123" not in out.err + out.out
    assert "SECRET123" not in (tmp_path / "run" / "run.json").read_text()
    assert run_cli(["scan", "https://example.org/s.tif?sig=SECRET123", "--out", tmp_path / "o",
                    *_models(tiny_models)]) == EXIT_BAD_INPUT
    assert "SECRET123" not in _error_line(capsys)


def test_model_weights_outside_the_model_directory_are_refused(tmp_path, tiny_models, scene, capsys):
    import shutil

    model = tmp_path / "discovery"
    shutil.copytree(tiny_models / "discovery", model)
    card = json.loads((model / "model.json").read_text())
    card["weights_file"] = "../impact/model.keras"
    (model / "model.json").write_text(json.dumps(card))
    code = run_cli(["scan", scene, "--out", tmp_path / "out", "--discovery-model", model,
                    "--impact-model", tiny_models / "impact"])
    assert code == EXIT_BAD_MODEL
    assert "inside the model directory" in _error_line(capsys)
