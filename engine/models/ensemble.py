"""The "ensemble" kind: the average of the probabilities of several models on the same features,
made by `train --model auto --ensemble K` (the K best candidates of the search on the winner's
features). Its hyperparameters name the members (kind and hyperparameters each); each member is
saved as a model folder of its own kind in `member<N>/` and loaded like any model folder, its files
checked against the hashes recorded at registration. No ONNX export (a clear refusal).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.models.artifacts import ModelFiles
from engine.models.base import Classifier

MEMBERS_FILE = "ensemble.json"


def _member_folder(index: int) -> str:
    return f"member{index}"


class EnsembleClassifier(Classifier):
    kind = "ensemble"
    saved_files = (MEMBERS_FILE,)
    defaults = {"members": [], "seed": 0}

    def __init__(self, **hyperparams) -> None:
        from engine.models.kinds import MODEL_KINDS

        super().__init__(**hyperparams)
        members = self.hyperparams["members"]
        if len(members) < 2 or not all(isinstance(m, dict) and m.get("kind") in MODEL_KINDS
                                       and isinstance(m.get("hyperparams", {}), dict) for m in members):
            raise ValueError(f"ensemble: members must be 2 or more of {{'kind': one of {', '.join(MODEL_KINDS)}, "
                             f"'hyperparams': {{...}}}}, not {members!r}")
        ranks = {MODEL_KINDS[m["kind"]].input_rank for m in members}
        if len(ranks) != 1:
            raise ValueError("ensemble: members must all take the same input (feature vectors or mel patches)")
        self.input_rank = ranks.pop()

    def _members(self) -> list[Classifier]:
        from engine.models.kinds import make_model

        return [make_model(m["kind"], **{"seed": self.hyperparams["seed"], **m.get("hyperparams", {})})
                for m in self.hyperparams["members"]]

    def fit(self, X, y, *, X_val=None, y_val=None, n_classes=None, callback=None, sample_weight=None):
        self.n_classes_ = int(n_classes or np.max(y) + 1)
        self.members_ = [member.fit(X, y, X_val=X_val, y_val=y_val, n_classes=self.n_classes_, callback=callback,
                                    sample_weight=sample_weight) for member in self._members()]
        return self

    def logits(self, X: np.ndarray) -> np.ndarray:
        """The log of the members' mean probability: the ensemble's temperature (fitted on validation
        like any kind's) scales these."""
        mean = np.mean([member.predict_proba(X) for member in self.members_], axis=0)
        return np.log(np.maximum(mean, np.finfo(np.float64).tiny))

    def save(self, folder: Path) -> None:
        from engine.models.kinds import save_model

        for index, member in enumerate(self.members_):
            save_model(member, Path(folder) / _member_folder(index))
        (Path(folder) / MEMBERS_FILE).write_text(json.dumps({"hyperparams": self.hyperparams,
                                                              "n_classes": self.n_classes_}))

    @classmethod
    def load(cls, files: ModelFiles) -> EnsembleClassifier:
        from engine.models.kinds import load_model

        saved = files.json(MEMBERS_FILE, {"hyperparams": dict, "n_classes": int})
        model = cls._from_saved(files, MEMBERS_FILE, saved)
        model.members_ = []
        for index, member in enumerate(model.hyperparams["members"]):
            prefix = _member_folder(index) + "/"
            hashes = None if files.hashes is None else {name[len(prefix):]: entry for name, entry in files.hashes.items()
                                                        if name.startswith(prefix)}
            model.members_.append(load_model(files.folder / _member_folder(index), hashes=hashes,
                                             kind=member["kind"], n_classes=model.n_classes_))
        return model
