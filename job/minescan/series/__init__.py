"""The MapBiomas mining time series: annual maps of mining, filtered, coded and measured.

The method is MapBiomas' mining module (MapBiomas mining ATBD, Collection 9): annual
Landsat mosaics, a U-Net that maps mining and not mining each year, the four
post-classification filters (`filters`, chunked over a zarr cube by `chunked`), the
substance and type of each mining patch (`classes`, `substance`) and the area mined per
year, class and region (`stats`). Modules import dask, matplotlib and TensorFlow inside
the functions that need them.
"""
