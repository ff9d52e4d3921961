"""The MapBiomas mining time series: annual maps of mining, filtered, coded and measured.

The method is MapBiomas' mining module (MapBiomas mining ATBD, Collection 9): annual
Landsat mosaics stacked into a feature cube (`cube`), a U-Net that maps mining and not
mining each year (`unet`, trained by `train` on tiles from `data`, run seamlessly over a
cube by `predict` with the windows of `windows`; measured against a spectral `baseline` by
`evaluate` and `scores`), the four post-classification filters (`filters`, chunked over a
zarr class cube by `chunked`; the store itself in `cube_io`), the substance and type of each
mining patch (`classes`, `substance`) and the area mined per year, class and region
(`stats`); `demo` runs the whole branch on a synthetic region. Modules import dask,
matplotlib and TensorFlow inside the functions that need them.
"""
