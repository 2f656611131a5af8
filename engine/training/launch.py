"""Starting a training job: the request is checked up front (name, kind, features), then its worker
process is spawned. The headless `train` and the TUI's Train screen start jobs the same way.
"""

from __future__ import annotations

from engine.errors import InputError
from engine.jobs.log import spawn_job
from engine.training.run import TrainRequest, check_features

DEVICES = ("auto", "cpu", "cuda")
# The few hyperparameters a person sets per kind in a form; the rest keep the kind's defaults.
MAIN_HYPERPARAMETERS = {
    "mlp": ("epochs", "lr", "hidden", "patience", "device"),
    "cnn": ("epochs", "lr", "patience", "device"),
    "finetune": ("epochs", "lr", "patience", "device"),
    "logreg": ("C",),
    "lgbm": ("n_estimators", "learning_rate", "num_leaves", "patience"),
}


def kind_defaults(model: str) -> dict:
    """The hyperparameters a model kind takes, with their default values; for `auto`, those any
    kind of its search takes (each candidate uses the ones its kind takes)."""
    from engine.models.kinds import MODEL_KINDS
    from engine.training.auto import AUTO, SEARCH

    if model == AUTO:
        return {key: value for kind in reversed(SEARCH) for key, value in MODEL_KINDS[kind].defaults.items()}
    if model not in MODEL_KINDS:
        raise InputError(f"unknown model {model!r}; choose one of {AUTO}, {', '.join(MODEL_KINDS)}")
    return dict(MODEL_KINDS[model].defaults)


def split_hyperparams(model: str, given: dict) -> tuple[dict, list[str]]:
    """The given hyperparameters (None = not given) that the kind takes, and the names of those it
    does not."""
    defaults = kind_defaults(model)
    used = {key: value for key, value in given.items() if value is not None and key in defaults}
    unused = [key for key, value in given.items() if value is not None and key not in defaults]
    return used, unused


def feature_choices(workspace) -> list[str]:
    """The feature sets this workspace can extract: dsp, mel, wave, and onnx:/hybrid: per installed embedding."""
    names = sorted(path.stem for path in workspace.embeddings_dir.glob("*.onnx"))
    return ["dsp", "mel", "wave", *(f"hybrid:{name}" for name in names), *(f"onnx:{name}" for name in names)]


def check_request(workspace, request: TrainRequest) -> None:
    """Raise InputError for a request that could only fail once its job had started."""
    from engine.models.kinds import MODEL_KINDS
    from engine.taxonomy import check_name
    from engine.training.tracking import check_loggers

    check_name(request.name, "model name")
    _, unused = split_hyperparams(request.model, request.hyperparams)
    if unused:
        raise InputError(f"{request.model} does not take {', '.join(unused)}")
    if request.ensemble and (request.model != "auto" or request.ensemble < 2):
        raise InputError(f"--ensemble needs --model auto and at least 2 members, not {request.ensemble} "
                         f"with --model {request.model}")
    if request.cv == 1 or request.cv < 0:
        raise InputError(f"--cv needs at least 2 folds, not {request.cv}")
    spec = request.spec(workspace)
    spec.extractors(workspace.embeddings_dir)  # bad features fail here
    if request.features and request.model in MODEL_KINDS:  # an export brings its own features, checked once read
        check_features(request.model, spec, MODEL_KINDS[request.model].feature_kinds)
    check_loggers(request.log)  # an unknown logger, or one whose package is missing, fails here


def start_training(workspace, request: TrainRequest) -> str:
    """Check the request and start its job in a worker process of its own; returns the job id."""
    check_request(workspace, request)
    return spawn_job(workspace, "train", request.__dict__)
