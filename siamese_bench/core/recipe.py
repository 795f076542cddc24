"""Facts the training defaults and the report share, in one torch-free place.

RECIPE is C1's Keras recipe (CLAIMS.md): TrainConfig's defaults, and the values the report's
claim rows prefer when a study varies other factors too. VARIANT_PREFERENCE orders the data
variants a claim can be decided on: full MNIST, then the subset, then the tiny offline set;
Omniglot at its native size first; full sequence sets before subsets.
"""

from __future__ import annotations

RECIPE: dict[str, object] = {
    "encoder": "mlp",
    "optimizer": "rmsprop-keras",
    "init": "keras",
    "lr": 1e-3,
    "batch_size": 128,
    "epochs": 20,
}

VARIANT_PREFERENCE = (
    "mnist-full",
    "mnist-5k",
    "digits",
    "omniglot-full-105",
    "omniglot-full-52",
    "omniglot-full-35",
    "omniglot-full-28",
    "japanese-vowels",
    "mnist-full-rows",
    "mnist-5k-rows",
)
