"""How the offline map copes with a large run (`make bench-map`; docs/BENCHMARKS.md).

Writes map.html for N synthetic sites spread over Brazil's mining states (footprint
polygons of 8–40 vertices, every attribute of the sites contract), opens it in Debian's
headless Chromium and measures: page size, time until the map is drawn, and the time a
zoom and a pan take to draw (until the next animation frame after Leaflet's moveend).

    python scripts/bench_map.py --sites 20000 --out bench-out/map
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from minescan.outputs.facts import ModelFacts, RunFacts, SceneFacts
from minescan.outputs.webmap import map_html

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def synthetic_sites(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(-60, -40, n), rng.uniform(-22, -2, n)
    probs = rng.dirichlet([2, 2, 1], size=n).astype(np.float32)
    shapes = []
    for x, y in zip(lon, lat, strict=True):
        k = int(rng.integers(8, 41))
        angles = np.sort(rng.uniform(0, 2 * np.pi, k))
        radius = rng.uniform(0.002, 0.01) * rng.uniform(0.6, 1.0, k)
        shapes.append(shapely.Polygon(np.column_stack([x + radius * np.cos(angles), y + radius * np.sin(angles)])))
    p_max = rng.uniform(0.6, 1.0, n).astype(np.float32)
    return pd.DataFrame({
        "site_id": [f"S{i:06d}" for i in range(n)], "geometry": shapes, "lon": lon, "lat": lat,
        "n_detections": rng.integers(1, 60, n), "p_mine_max": p_max, "p_mine_mean": p_max - np.float32(0.1),
        "p_high": probs[:, 0], "p_low": probs[:, 1], "p_no_ore": probs[:, 2],
        "impact_class": np.array(["high", "low", "no_ore"])[probs.argmax(axis=1)],
        "area_ha": rng.uniform(5, 500, n), "perimeter_m": rng.uniform(800, 9000, n), "scenes": "r0000c0000",
        "registered": rng.random(n) < 0.4, "register_name": None, "protected": rng.random(n) < 0.1,
        "protected_names": None, "regions": "Pará", "review": None, "review_note": None,
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=Path("bench-out/map"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    facts = RunFacts(title=f"benchmark: {args.sites} sites", run="bench", aoi="Brazil", period=None,
                     imagery="none (benchmark)", scenes=(SceneFacts("s", (-60, -22, -40, -2), True),),
                     models=(ModelFacts("discovery", "bench", False),))
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    page_path = args.out / "map.html"
    page_path.write_text(map_html(synthetic_sites(args.sites), facts), encoding="utf-8")
    write_s = time.perf_counter() - started
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        started = time.perf_counter()
        page.goto(page_path.resolve().as_uri())
        page.wait_for_function("window.minescan !== undefined", timeout=120_000)
        page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        load_s = time.perf_counter() - started
        move = """(how) => new Promise((resolve) => {
            const map = window.minescan.map, t0 = performance.now();
            map.once('moveend', () => requestAnimationFrame(() => resolve(performance.now() - t0)));
            if (how === 'zoom') map.setZoom(map.getZoom() + 2, {animate: false});
            else map.panBy([300, 200], {animate: false});
        })"""
        timings = {how: [page.evaluate(move, how) for _ in range(3)] for how in ("zoom", "pan")}
        page.screenshot(path=str(args.out / "map.png"))
        browser.close()
    result = {
        "sites": args.sites, "page_mib": round(page_path.stat().st_size / 2**20, 1), "write_s": round(write_s, 1),
        "load_s": round(load_s, 1), "zoom_ms": [round(t) for t in timings["zoom"]],
        "pan_ms": [round(t) for t in timings["pan"]],
    }
    print(json.dumps(result))
    (args.out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
