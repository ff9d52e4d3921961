"""Acquisition with Earth Engine: Sentinel-2 composites on a global scene grid, training
chips around labelled points, and Landsat annual mosaics for the MapBiomas method.

Light to import: Earth Engine, geopandas and shapely are imported inside the functions
that need them. `minescan.acquire.manifest` is what the map job reads.
"""
