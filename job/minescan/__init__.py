"""minescan: surface mines and tailings dams in Sentinel-2 imagery.

Importing the package is cheap on purpose: TensorFlow, rasterio and friends are imported
inside the functions that need them, so `minescan --help` answers instantly.
"""

__version__ = "0.1.0"
