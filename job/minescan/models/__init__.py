"""The networks and the directories that carry them.

    networks.py   the paper's two networks, layer for layer (Balaniuk et al. 2020, Tables 2-3)
    card.py       a model directory: Keras file + model card (bands, normalisation, hash)
    bundled.py    where the bundled synthetic demo models live, and picking a command's models
    demo/         the bundled demo models themselves (trained on synthetic chips)

May import only the shared facts (errors, storage, validation, ores); TensorFlow and Keras
are imported inside the functions that need them.
"""
