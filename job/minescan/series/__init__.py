"""The MapBiomas mining time series (MapBiomas mining ATBD, Collection 9).

    cube.py      annual Landsat mosaics → a zarr v3 feature cube (year, y, x, feature)
    cube_io.py   the class cube (year, y, x) the U-Net writes and the filters read
    unet.py      the published U-Net (about 31.1 M parameters) with a width option
    windows.py   overlapping prediction windows whose centres tile a scene seamlessly
    predict.py   the U-Net over a whole cube or scene, year by year
    train.py     tiles from a cube + labels or an image folder, through the training loop
    evaluate.py  pixel IoU / F1 / precision / recall per scene, next to a spectral baseline
    demo.py      the whole branch on a synthetic region, scored year by year
"""
