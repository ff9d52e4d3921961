"""Rebuild the country outlines the offline map draws (`make vendor`).

Reads Amazon Mining Watch's `national_admin.geojson` (CC BY 4.0, Earth Genome / Amazon
Mining Watch), simplifies each outline to about 2 km (the map's reference layer, not a
legal boundary), rounds coordinates to 4 decimals and writes a small GeoJSON into the
package, keeping only the country name and code.

    python scripts/boundaries.py ../shared/data/amw/national_admin.geojson
"""

import json
import sys
from pathlib import Path

import geopandas as gpd
import shapely

TOLERANCE_DEG = 0.02
OUT = Path(__file__).resolve().parents[1] / "job/minescan/outputs/data/boundaries.geojson"


def main(source: str) -> None:
    admin = gpd.read_file(source)
    geometry = shapely.set_precision(admin.geometry.simplify(TOLERANCE_DEG, preserve_topology=True), 1e-4)
    outlines = gpd.GeoDataFrame(
        {"name": admin["country"].replace({"Entire Amazon": "Amazon biome", "FrenchGuiana": "French Guiana"}),
         "code": admin["gid_0"]},
        geometry=geometry,
        crs="EPSG:4326",
    )
    doc = json.loads(outlines.to_json(drop_id=True))
    doc["attribution"] = "Country outlines: Amazon Mining Watch (Earth Genome), CC BY 4.0, simplified"
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB, {len(outlines)} outlines)")


if __name__ == "__main__":
    main(sys.argv[1])
