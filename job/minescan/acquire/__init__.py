"""Acquisition with Earth Engine: Sentinel-2 composites on a global scene grid, training
chips around labelled points, and Landsat annual mosaics for the MapBiomas method.

Owns only what talks to Earth Engine (graphs, export tasks, polling). The scene grid and
the manifest it writes are core contracts and live in `batch/`; acquire/ may import the
shared facts and `batch/`, and nothing else imports acquire/ except the CLI.
Light to import: Earth Engine, geopandas and shapely are imported inside the functions
that need them.
"""
