"""The "mlp" kind: a small fully connected network on standardised feature vectors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from torch import nn

from engine.models.artifacts import ModelFiles
from engine.models.torch_nets import CONFIG_FILE, TorchClassifier, mlp_net

SCALE_FLOOR = 1e-6


class MlpClassifier(TorchClassifier):
    kind = "mlp"
    cpu_batch_size = 64
    input_rank = 1
    defaults = {"hidden": 256, "epochs": 60, "lr": 1e-3, "batch_size": 64, "weight_decay": 1e-4, "dropout": 0.3,
                "patience": 8, "class_balance": True, "seed": 0, "device": "auto"}

    def _config(self, X: np.ndarray) -> dict[str, Any]:
        X = X.astype(np.float64)
        return {"input_shape": [X.shape[1]], "mean": X.mean(axis=0).tolist(),
                "scale": np.maximum(X.std(axis=0), SCALE_FLOOR).tolist()}

    def _check_config(self, files: ModelFiles) -> None:
        """Also: a finite mean and a positive scale per input feature."""
        super()._check_config(files)
        n_features = self.config_["input_shape"][0]
        for key in ("mean", "scale"):
            values = self.config_.get(key)
            if (not isinstance(values, list) or len(values) != n_features
                    or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)):
                raise files.damaged(CONFIG_FILE, f"{key!r} is not {n_features} finite numbers (one per input feature)")
        if min(self.config_["scale"]) <= 0:
            raise files.damaged(CONFIG_FILE, "'scale' holds a value that is not positive")

    def _build(self, config: dict[str, Any]) -> nn.Module:
        return mlp_net(config["mean"], config["scale"], int(self.hyperparams["hidden"]), self.n_classes_,
                       float(self.hyperparams["dropout"]))
