"""Training and evaluation of the two networks, reported the way the paper reports them.

    data.py        chips from class folders, a scene + points table, or EE TFRecords
    folds.py       stratified and spatially grouped k-fold splits
    metrics.py     accuracy, F1, precision, recall, ROC AUC, kappa, confusion (numpy)
    distribute.py  tf.distribute strategy from flags / TF_CONFIG / an Indexed Job
    loop.py        the one custom training loop (all strategies)
    crossval.py    cross-validation, the final model, the model directory
    report.py      JSON + Markdown tables + per-fold curve plots
    bench.py       chips/s for training both networks
    cli.py         `minescan train ...` and `minescan evaluate`

May import the shared facts, `models/`, `scan.geometry` and `synth/` (the demo models'
chips); never `batch/` or `acquire/`.
"""
