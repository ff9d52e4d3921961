"""Training chips from class folders, a scene + points table and EE TFRecords; bad input."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from minescan.errors import InputError
from minescan.training.data import (
    DataSpec,
    compute_normalization,
    load_chips,
    parse_ee_example,
    read_chip_folders,
    read_ee_tfrecords,
    read_point_chips,
)
from rasterio.transform import from_origin

BANDS = ("B2", "B3", "B4")
PX = 1e-4  # degrees per pixel of the test rasters


def write_tif(path, data, *, lon=-44.0, lat=-20.0, descriptions=None, crs="EPSG:4326"):
    """data (bands, rows, cols)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype, crs=crs,
                       transform=from_origin(lon, lat, PX, PX)) as dst:
        dst.write(data)
        for i, d in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, d)


def make_folders(root, size=21, classes=("high", "low", "no_ore"), n=3, seed=0):
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        for i in range(n):
            data = (rng.normal(1000, 30, (3, size, size)) + 300 * c).astype("uint16")
            write_tif(root / name / f"{i}.tif", data, lon=-44 + 0.05 * i, lat=-20 + 0.05 * c)
    return root


def test_class_folders_give_chips_labels_and_centres(tmp_path):
    make_folders(tmp_path)
    chips = read_chip_folders(tmp_path, class_names=("high", "low", "no_ore"), bands=BANDS, size=21)
    assert chips.x.shape == (9, 21, 21, 3) and chips.x.dtype == np.uint16
    assert chips.counts() == {"high": 3, "low": 3, "no_ore": 3}
    assert chips.y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # Centre of chip 0 of class 0: origin (-44, -20) plus 10.5 px.
    assert chips.lon[0] == pytest.approx(-44 + 10.5 * PX)
    assert chips.lat[0] == pytest.approx(-20 - 10.5 * PX)
    assert chips.describe()["source"]["type"] == "class_folders"


def test_bands_are_picked_by_description_when_the_file_names_them(tmp_path):
    data = np.stack([np.full((21, 21), v, "uint16") for v in (10, 20, 30, 40)])
    for name in ("high", "low", "no_ore"):
        write_tif(tmp_path / name / "a.tif", data, descriptions=["B2", "B3", "B4", "B8"])
    chips = read_chip_folders(tmp_path, class_names=("high", "low", "no_ore"), bands=("B8", "B2"), size=21)
    assert chips.x[0, 0, 0].tolist() == [40, 10]


def test_empty_class_folder_is_named(tmp_path):
    make_folders(tmp_path, classes=("not_mine",), size=201, n=1)
    (tmp_path / "mine").mkdir()
    with pytest.raises(InputError, match=r"mine has no GeoTIFF chips"):
        read_chip_folders(tmp_path, class_names=("not_mine", "mine"), bands=BANDS, size=201)


def test_single_class_is_refused(tmp_path):
    make_folders(tmp_path, classes=("mine",), size=201, n=2)
    with pytest.raises(InputError, match="1 class"):
        read_chip_folders(tmp_path, class_names=("not_mine", "mine"), bands=BANDS, size=201)


def test_unknown_class_folder_is_refused(tmp_path):
    make_folders(tmp_path, classes=("high", "low", "no_ore", "medium"), n=1)
    with pytest.raises(InputError, match="medium"):
        read_chip_folders(tmp_path, class_names=("high", "low", "no_ore"), bands=BANDS, size=21)


def test_wrong_chip_size_names_the_file(tmp_path):
    make_folders(tmp_path, n=2)
    write_tif(tmp_path / "low" / "big.tif", np.zeros((3, 25, 25), "uint16"))
    with pytest.raises(InputError, match=r"big\.tif is 25×25 px.*21×21"):
        read_chip_folders(tmp_path, class_names=("high", "low", "no_ore"), bands=BANDS, size=21)


def test_wrong_band_count_names_the_file(tmp_path):
    make_folders(tmp_path, n=2)
    write_tif(tmp_path / "high" / "two.tif", np.zeros((2, 21, 21), "uint16"))
    with pytest.raises(InputError, match=r"two\.tif has 2 bands but the model expects 3"):
        read_chip_folders(tmp_path, class_names=("high", "low", "no_ore"), bands=BANDS, size=21)


def test_nan_chip_names_the_file(tmp_path):
    make_folders(tmp_path, n=1)
    data = np.ones((3, 21, 21), "float32")
    data[1, 3, 4] = np.nan
    write_tif(tmp_path / "no_ore" / "nan.tif", data)
    with pytest.raises(InputError, match=r"nan\.tif has 1 NaN"):
        read_chip_folders(tmp_path, class_names=("high", "low", "no_ore"), bands=BANDS, size=21)


def test_unreadable_chip_names_the_file(tmp_path):
    make_folders(tmp_path, n=1)
    (tmp_path / "low" / "broken.tif").write_bytes(b"II*\x00 not really a tiff")
    with pytest.raises(InputError, match=r"broken\.tif"):
        read_chip_folders(tmp_path, class_names=("high", "low", "no_ore"), bands=BANDS, size=21)


def _scene(tmp_path):
    """A 3-band 300×300 scene whose pixel (r, c) of band b holds 1000·b + r (for checking cuts)."""
    rows = np.arange(300, dtype="uint16")[:, None] * np.ones((1, 300), "uint16")
    data = np.stack([rows + 1000 * b for b in range(3)])
    path = tmp_path / "scene.tif"
    write_tif(path, data, lon=-44.0, lat=-20.0, descriptions=list(BANDS))
    return path


def _lonlat(row, col):
    return -44.0 + (col + 0.5) * PX, -20.0 - (row + 0.5) * PX


def test_points_table_csv_cuts_centred_chips_and_skips_edge_points(tmp_path):
    scene = _scene(tmp_path)
    rows = [(100, 100, "mine"), (150, 200, "not_mine"), (5, 5, "mine")]  # last: chip leaves scene
    lines = ["longitude,latitude,label"] + [f"{_lonlat(r, c)[0]},{_lonlat(r, c)[1]},{lab}" for r, c, lab in rows]
    table = tmp_path / "points.csv"
    table.write_text("\n".join(lines) + "\n")
    chips = read_point_chips([str(scene)], str(table), class_names=("not_mine", "mine"),
                             bands=BANDS, size=21, kind="discovery")
    assert chips.y.tolist() == [1, 0]
    assert chips.x.shape == (2, 21, 21, 3)
    assert chips.x[0, 10, 10, 0] == 100 and chips.x[0, 0, 0, 0] == 90  # centred on row 100
    assert chips.x[1, 10, 10, 2] == 2000 + 150
    assert chips.source["skipped_outside"] == 1


def test_points_geojson_with_ore_names_labels_impact_and_reports_unknown_ores(tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point

    scene = _scene(tmp_path)
    ores = ["Minério de Ferro", "Areia", "Carvão Mineral", None]
    labels = [None, None, None, "no_ore"]
    pts = [Point(*_lonlat(100 + 20 * i, 100)) for i in range(4)]
    table = tmp_path / "points.geojson"
    gpd.GeoDataFrame({"ore": ores, "label": labels}, geometry=pts, crs="EPSG:4326").to_file(table)
    chips = load_chips(DataSpec(scenes=(str(scene),), points=str(table)), kind="impact",
                       class_names=("high", "low", "no_ore"), bands=BANDS, size=21)
    assert chips.y.tolist() == [0, 1, 2]
    assert chips.source["unknown_ores"] == {"Carvão Mineral": 1}


def test_points_with_a_bad_label_name_the_row(tmp_path):
    scene = _scene(tmp_path)
    table = tmp_path / "points.csv"
    table.write_text("lon,lat,label\n-43.99,-20.01,mine\n-43.99,-20.01,quarry\n")
    with pytest.raises(InputError, match="row 2.*quarry"):
        read_point_chips([str(scene)], str(table), class_names=("not_mine", "mine"),
                         bands=BANDS, size=21, kind="discovery")


def _ee_example(values_by_band, label, lon=None, lat=None, ore=None):
    import tensorflow as tf

    feature = {
        band: tf.train.Feature(float_list=tf.train.FloatList(value=np.ravel(v).tolist()))
        for band, v in values_by_band.items()
    }
    if isinstance(label, str):
        feature["label"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()]))
    else:
        feature["label"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))
    if ore is not None:
        feature["ore"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[ore.encode()]))
    if lon is not None:
        feature["lon"] = tf.train.Feature(float_list=tf.train.FloatList(value=[lon]))
        feature["lat"] = tf.train.Feature(float_list=tf.train.FloatList(value=[lat]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_ee_tfrecord_chips_are_parsed_row_major_with_labels(tmp_path):
    import tensorflow as tf

    size = 21
    grid = np.arange(size * size, dtype=np.float32).reshape(size, size)
    path = tmp_path / "chips.tfrecord.gz"
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        writer.write(_ee_example({b: grid + 1000 * i for i, b in enumerate(BANDS)}, 0, -44.1, -20.2))
        writer.write(_ee_example({b: grid for b in BANDS}, "low"))
        writer.write(_ee_example({b: grid for b in BANDS}, 2))
    chips = load_chips(DataSpec(data=str(tmp_path)), kind="impact",
                       class_names=("high", "low", "no_ore"), bands=BANDS, size=size)
    assert chips.y.tolist() == [0, 1, 2]
    assert chips.x.shape == (3, 21, 21, 3) and chips.x.dtype == np.float32
    assert chips.x[0, 2, 5, 1] == 2 * size + 5 + 1000  # row-major, band order kept
    assert chips.lon[0] == pytest.approx(-44.1) and np.isnan(chips.lon[1])
    assert chips.source["type"] == "ee_tfrecord"


def test_ee_tfrecord_from_the_acquisition_export_takes_impact_from_ore_names(tmp_path):
    # `minescan acquire chips --format TFRecord` labels chips `mine` and carries the ore.
    import tensorflow as tf

    grid = {b: np.zeros(441) for b in BANDS}
    path = tmp_path / "chips21.tfrecord.gz"
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        writer.write(_ee_example(grid, "mine", ore="Minério de Ferro"))
        writer.write(_ee_example(grid, "mine", ore="Areia"))
        writer.write(_ee_example(grid, "mine", ore="Carvão Mineral"))
        writer.write(_ee_example(grid, "no_ore", ore=""))
    chips = load_chips(DataSpec(data=str(path)), kind="impact",
                       class_names=("high", "low", "no_ore"), bands=BANDS, size=21)
    assert chips.y.tolist() == [0, 1, 2]
    assert chips.source["unknown_ores"] == {"Carvão Mineral": 1}


def test_ee_record_with_a_short_band_names_record_and_band():
    record = _ee_example({"B2": np.zeros(441), "B3": np.zeros(440), "B4": np.zeros(441)}, 0)
    with pytest.raises(InputError, match=r"rec 7: band B3 has 440 values, expected 21×21"):
        parse_ee_example(record, ("high", "low", "no_ore"), BANDS, 21, "label", "rec 7")


def test_ee_tfrecord_missing_band_is_reported(tmp_path):
    import tensorflow as tf

    path = tmp_path / "c.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(_ee_example({"B2": np.zeros(441)}, 0))
    with pytest.raises(InputError, match=r"c\.tfrecord record 0 has no band 'B3'"):
        read_ee_tfrecords([str(path)], class_names=("high", "low", "no_ore"), bands=BANDS, size=21)


def test_normalization_uses_only_the_given_indices():
    x = np.zeros((4, 2, 2, 2), dtype=np.uint16)
    x[0], x[1] = 10, 30
    x[2:, ..., 0] = 1000
    norm = compute_normalization(x, np.array([0, 1]))
    assert norm.mean == [20.0, 20.0] and norm.std == [10.0, 10.0]
    constant = compute_normalization(x, np.array([2, 3]))
    assert constant.mean == [1000.0, 0.0] and constant.std == [1.0, 1.0]
