"""Which model kind + features generalise best ACROSS PACKS: a leave-packs-out benchmark.

    python bench/bench_generalisation.py [--work DIR] [--clips 10] [--kinds logreg,lgbm,mlp,cnn,finetune]
        [--features dsp,onnx:aisfx,hybrid:aisfx] [--augment 2] [--augment-top 2]
        [--augment-profiles kit,basic] [--augment-combos KIND@FEATURES,...] [--cnn-epochs 20]
        [--finetune-epochs 30] [--mlp-seeds 3] [--resamples 1000] [--no-real] [--no-synthetic]
        [--plain-embedding] [--params KIND:KEY=VALUE] [--auto] [--no-hydrogen] [--json OUT]

A model that is good on a random clip split may only have learnt what each pack sounds like; a
user's library is a handful of packs and the model then meets other packs. So every figure here is
measured on a pack the model never heard:

(a) Synthetic demo packs (`engine.audio.synth.DEMO_PACKS`, `write_curated_library`, 9 drum
    classes): leave-one-pack-out over the 5 packs. In each fold one pack is the test set, the next
    pack (in DEMO_PACKS order) is the validation set (early stopping, as `train --split group`
    would hold a source out for validation) and the other 3 packs are the training set. An extra
    "in-pack" figure (a stratified 70/15/15 split by clip over all 5 packs, one fold) shows what the
    same combination scores when test clips come from packs it has heard; the gap between the two
    is how much a combination memorises packs.
(b) Real drum one-shots from two Debian packages, each package one source: train on `lmms-common`
    (/usr/share/lmms/samples/drums) and test on `sonic-pi-samples` (/usr/share/sonic-pi/samples),
    and the reverse. Only classes present in BOTH packages are used. With one training source there
    is no source left for validation, so these folds fit without early stopping (logreg ignores
    validation anyway; lgbm, mlp and cnn run their full rounds / epochs).
    Skipped with a note when the packages are not installed
    (`apt-get install lmms-common sonic-pi-samples`).
(c) Synthetic -> real: train on all 5 synthetic packs, test on each real package (does the demo
    library teach anything about real drums?). Only when (b) runs.
(d) Real drum kits held out by kit: Debian's `hydrogen-drumkits` (/usr/share/hydrogen/data/drumkits,
    14 kits recorded or assembled by different people), each kit one pack: 11 packs, as the three
    versions of the Millo kit are one pack between them and circAfrique has none of the classes.
    Leave-one-kit-out as in (a): test = the kit, val = the
    next kit, train = the rest. The closest stand-in here for a user's library meeting kits it
    never heard. Skipped with a note when the package is not installed
    (`apt-get install hydrogen-drumkits`).
(e) Another source: train on every Hydrogen kit, test on each Debian package of (b) (the classes of
    (b)). Only when (b) and (d) run.

"pooled" is the macro-F1 of every fold's test clips taken together (as scikit-learn's
`cross_val_predict` would score them): steadier than the mean of the folds' macro-F1s where a held-out
kit has one or two clips of a class. Every macro-F1 comes with a 95% bootstrap interval ([low, high]): each fold's test clips are
resampled (`engine.evaluation.metrics.bootstrap_resamples`, --resamples times, the same seed for
every combination, so two combinations are resampled alike) and the interval is taken over the
mean of the folds' resampled macro-F1s. It shows how much the figure could move with other test
clips from the same packs; it does not cover other packs.

`finetune` (the pretrained aiSFX network fine-tuned with a new head) trains on `wave` features,
as `cnn` trains on `mel`; its (b) and (c) folds have no validation pack, so they run every epoch.

Features are what `train` extracts: `FeatureSpec.with_embedding_defaults`, so the aiSFX embedding is
standardised per clip (`onnx.standardize`); `--plain-embedding` measures it as it was before.

Model kinds come from `engine.models.kinds.make_model`, metrics from `engine.evaluation.metrics.evaluate`
(accuracy and macro-F1 with the present-or-predicted rule), features from the engine's extractors
through ONE workspace's feature cache (`<work>/ws`), so every clip is featurised once per extractor
and a second run of this script decodes nothing. `onnx:aisfx` / `hybrid:aisfx` need the aiSFX
embedding; it is installed into the workspace with `engine.embeddings.aisfx.install_aisfx` (the same
as `workbench --headless --workspace WS embeddings install-aisfx`), and those features are skipped
with a note when the `aisfx` package is not installed.

Augmentation (`--augment N`, the same augmentations as `train --augment N`, drawn by
`engine.audio.augment.random_augmentation`): after the main tables, the best `--augment-top`
combinations (or those named by --augment-combos, e.g. `mlp@hybrid:aisfx,finetune@wave`) are run
again with N augmented copies of every TRAINING clip added (validation and test clips are never
augmented), once per profile in --augment-profiles: `kit` (what `train` uses: pitch, time, transient,
saturation, EQ and filters, room, noise floor, gain) and `basic` (the earlier gain / shift / noise /
pitch set). Each line then gives the change in macro-F1 against the same combination without
augmentation, with a paired bootstrap interval. Unlike `train`, each clip's N augmentations are
drawn once (seeded by the clip's hash) and reused in every fold, so they are featurised once.

The default `train` (`--auto`): `train --model auto` chooses per dataset, so it is scored per fold: on the
fold's training and validation rows (never its test rows) every vector candidate of
`engine.training.auto.SEARCH` on dsp and hybrid:aisfx is cross-validated the way `train` does it
(grouped folds: packs when there are 3 or more, else the groups `train` infers from the files;
inner validation share and score as `engine.training.crossval`), and the winner is trained on the
fold like any other row (seed --seed; one initialisation). cnn on mel is left out for time.
`--params KIND:KEY=VALUE` sets a hyperparameter for every fit of a kind (e.g. `logreg:C=0.01`).

Real-pack mapping (file name -> drums taxonomy class). Rules are tried in order, the first match
wins; a file that matches no rule is not used. Everything not listed here (LMMS zaps and the
"nasty_bass" hit; Sonic Pi's synth blips and bells, impacts, swooshes, the drum roll, the glitch
percussion and the 26 tabla strokes) is left out on purpose: either it is no drum one-shot or its
class is a guess. Tabla would fit "perc" but would make perc a third of the Sonic Pi set with
nothing like it in LMMS, which turns the perc class into a tabla detector.

    LMMS (lmms-common, samples/drums/*.ogg)
      bassdrum*, kick*                                   -> kick
      hihat_closed*, hihat_foot_pedal*                   -> hihat_closed
      hihat_opened*                                      -> hihat_open
      snare* (incl. snare_rim), nasty_snare*, rim*,
        nasty_rim*, sidestick*                           -> snare  (the taxonomy counts rimshots as snare)
      tom*                                               -> tom
      crash*                                             -> crash
      ride*                                              -> ride
      clap*                                              -> clap
      shaker*, clav* (claves), wood*                     -> perc
    Sonic Pi (sonic-pi-samples, *.flac)
      bd_*, drum_bass_*, drum_heavy_kick, elec_*kick     -> kick
      sn_*, drum_snare_*, elec_*snare                    -> snare
      drum_cymbal_closed, drum_cymbal_pedal              -> hihat_closed  (Sonic Pi's hi-hat)
      drum_cymbal_open                                   -> hihat_open
      drum_tom_*, elec_fuzz_tom                          -> tom
      drum_cymbal_hard, drum_cymbal_soft, drum_splash_*,
        elec_cymbal                                      -> crash  (the taxonomy counts splash as crash)
      perc_snap*                                         -> clap   (the taxonomy counts snaps as clap)
      drum_cowbell, elec_wood, elec_triangle             -> perc

    Hydrogen (hydrogen-drumkits, each kit's drumkit.xml: every layer of every instrument; the class
    from the instrument's name, `HYDROGEN_RULES`, first match wins)
      semi-open, swish, choke, "free" and side hats, snare rolls, crash/ride, "flink" (flam) hits
                                                         -> left out (between two classes)
      kick, bass drum                                    -> kick
      stick, rim, snare                                  -> snare
      hi-hat / hh with pedal or closed                   -> hihat_closed
      hi-hat / hh open                                   -> hihat_open
      tom*                                               -> tom
      crash, splash, china                               -> crash
      ride (bow, bell, cup)                              -> ride
      clap, finger snaps                                 -> clap
      cowbell, tambourine, agogo, claves, wood block, maracas, shaker
                                                         -> perc
      everything else (djembes and the other circAfrique drums, bongos, cajon, congas, water
      glasses, zaps, FX, numbered empty slots, loops)    -> left out

The script prints the counts per class and package (or kit) it found. Runtime on 2 CPU cores with the
defaults: a few minutes for features on the first run, then roughly 5-15 minutes of training for
logreg, lgbm, mlp and cnn; `finetune` adds more (on a shared 2-core box at load 6-10: 2 min for
the two real folds at 30 epochs, 4.5 min for (a) at --clips 3, 3 min for (c)), so leave it out
with --kinds when iterating.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import sys
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

# OpenMP threads that spin while waiting make LightGBM 10-20x slower when the CPU is shared with
# other work (measured: one 9-class lgbm fit 108 s spinning vs 7 s passive on a busy 2-core box).
# Must be set before numpy / LightGBM / torch load their OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.audio.augment import random_augmentation  # noqa: E402
from engine.audio.synth import DEMO_PACKS, DRUM_CLASSES, write_curated_library  # noqa: E402
from engine.concepts import LabelledSegment  # noqa: E402
from engine.datasets.splits import assign_splits  # noqa: E402
from engine.datasets.source import curated_items  # noqa: E402
from engine.evaluation.metrics import bootstrap_resamples, evaluate, percentile_interval  # noqa: E402
from engine.features.extract import Target, extract_features, load_features  # noqa: E402
from engine.features.spec import FeatureSpec, parse_param_value  # noqa: E402
from engine.models.kinds import make_model  # noqa: E402
from engine.workspace import Workspace  # noqa: E402

LMMS_DIR = Path("/usr/share/lmms/samples/drums")
SONIC_PI_DIR = Path("/usr/share/sonic-pi/samples")

# (glob on the file's stem, class); first match wins. See the module docstring.
LMMS_MAP: tuple[tuple[str, str], ...] = (
    ("bassdrum*", "kick"), ("kick*", "kick"),
    ("hihat_closed*", "hihat_closed"), ("hihat_foot_pedal*", "hihat_closed"),
    ("hihat_opened*", "hihat_open"),
    ("snare*", "snare"), ("nasty_snare*", "snare"), ("rim*", "snare"), ("nasty_rim*", "snare"),
    ("sidestick*", "snare"),
    ("tom*", "tom"),
    ("crash*", "crash"),
    ("ride*", "ride"),
    ("clap*", "clap"),
    ("shaker*", "perc"), ("clav*", "perc"), ("wood*", "perc"),
)
SONIC_PI_MAP: tuple[tuple[str, str], ...] = (
    ("bd_*", "kick"), ("drum_bass_*", "kick"), ("drum_heavy_kick", "kick"), ("elec_*kick", "kick"),
    ("sn_*", "snare"), ("drum_snare_*", "snare"), ("elec_*snare", "snare"),
    ("drum_cymbal_closed", "hihat_closed"), ("drum_cymbal_pedal", "hihat_closed"),
    ("drum_cymbal_open", "hihat_open"),
    ("drum_tom_*", "tom"), ("elec_fuzz_tom", "tom"),
    ("drum_cymbal_hard", "crash"), ("drum_cymbal_soft", "crash"), ("drum_splash_*", "crash"),
    ("elec_cymbal", "crash"),
    ("perc_snap*", "clap"),
    ("drum_cowbell", "perc"), ("elec_wood", "perc"), ("elec_triangle", "perc"),
)
REAL_PACKAGES = {  # source name -> (folder, file pattern, mapping)
    "lmms": (LMMS_DIR, "*.ogg", LMMS_MAP),
    "sonicpi": (SONIC_PI_DIR, "*.flac", SONIC_PI_MAP),
}

HYDROGEN_DIR = Path("/usr/share/hydrogen/data/drumkits")
# (regular expression searched in an instrument's name, lower-cased; class or None to leave it out);
# first match wins. See the module docstring.
HYDROGEN_RULES: tuple[tuple[str, str | None], ...] = (
    (r"semi|swish|choke|hi hat free|^side |roll|crash/ride|ride-crash|flink", None),
    (r"\bkick|bass ?drum", "kick"),
    (r"stick|\brim|snare", "snare"),
    (r"\bhh\b.*(pedal|closed)|(pedal|closed).*\bhh\b|hat.*(pedal|closed|\bpd$|\bcl$)", "hihat_closed"),
    (r"\bhh\b.*open|open.*\bhh\b|hat.*(open|\bop\b)", "hihat_open"),
    (r"\btom", "tom"),
    (r"crash|splash|china", "crash"),
    (r"\bride\b|ride-cup", "ride"),
    (r"clap|finger snap", "clap"),
    (r"cowbell|tambourine|agogo|clave|woodblock|maraca|shaker", "perc"),
)
HYDROGEN_FAMILIES = {  # kits that are versions of one recorded kit: one pack, never split across folds
    "Millo-Drums_v.1": "Millo", "Millo_MultiLayered2": "Millo", "Millo_MultiLayered3": "Millo",
}

DEFAULT_KINDS = "logreg,lgbm,mlp,cnn,finetune"
PATCH_FEATURES = {"cnn": "mel", "finetune": "wave"}  # kinds that train on their own features, not --features
DEFAULT_FEATURES = "dsp,onnx:aisfx,hybrid:aisfx"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- data -------------------------------------------------------------------------------------

def map_name(stem: str, mapping: tuple[tuple[str, str], ...]) -> str | None:
    for pattern, label in mapping:
        if fnmatch.fnmatchcase(stem.lower(), pattern):
            return label
    return None


def build_real_root(root: Path) -> dict[str, Counter] | None:
    """ROOT/<class>/<package>/<file> symlinks to the mapped real one-shots; None when a package is missing."""
    missing = [f"{name} ({folder})" for name, (folder, _, _) in REAL_PACKAGES.items() if not folder.is_dir()]
    if missing:
        print(f"NOTE: real drum packages not installed, skipping the real-pack benchmark: {', '.join(missing)}.\n"
              f"      Install them with: apt-get install -y lmms-common sonic-pi-samples\n")
        return None
    counts: dict[str, Counter] = {}
    for package, (folder, pattern, mapping) in REAL_PACKAGES.items():
        counts[package] = Counter()
        for file in sorted(folder.glob(pattern)):
            label = map_name(file.stem, mapping)
            if label is None:
                continue
            link = root / label / package / file.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() and link.resolve() != file.resolve():
                link.unlink()
            if not link.is_symlink():
                link.symlink_to(file.resolve())
            counts[package][label] += 1
    return counts


def hydrogen_label(instrument: str) -> str | None:
    for pattern, label in HYDROGEN_RULES:
        if re.search(pattern, instrument.lower()):
            return label
    return None


def hydrogen_samples(kit: Path) -> list[tuple[str, Path]]:
    """(instrument name, sample file) of every layer of every instrument a Hydrogen kit's drumkit.xml lists."""
    root = ElementTree.parse(kit / "drumkit.xml").getroot()
    namespace = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    samples = []
    for instrument in root.iter(f"{namespace}instrument"):
        name = (instrument.findtext(f"{namespace}name") or "").strip()
        samples += [(name, kit / element.text) for element in instrument.iter(f"{namespace}filename")
                    if element.text and (kit / element.text).is_file()]
    return samples


def build_hydrogen_root(root: Path) -> Counter | None:
    """ROOT/<class>/<kit>/<file> symlinks to the mapped samples of Debian's Hydrogen drum kits (one
    pack per kit, or per family of versions of one kit); None when the package is missing."""
    if not HYDROGEN_DIR.is_dir():
        print(f"NOTE: hydrogen-drumkits not installed ({HYDROGEN_DIR}), skipping the leave-one-kit-out benchmark.\n"
              f"      Install it with: apt-get install -y hydrogen-drumkits\n")
        return None
    counts: Counter = Counter()
    for kit in sorted(k for k in HYDROGEN_DIR.iterdir() if (k / "drumkit.xml").is_file()):
        pack = re.sub(r"[^A-Za-z0-9]+", "_", HYDROGEN_FAMILIES.get(kit.name, kit.name)).strip("_")
        for instrument, file in hydrogen_samples(kit):
            label = hydrogen_label(instrument)
            if label is None:
                continue
            link = root / label / pack / f"{re.sub(r'[^A-Za-z0-9]+', '_', kit.name)}__{file.name}"
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(file.resolve())
            counts[(pack, label)] += 1
    return counts


@dataclass
class Corpus:
    """The labelled clips of one curated root, with their features per spec (rows aligned to items)."""

    name: str
    items: list[LabelledSegment]
    notes: list[str] = field(default_factory=list)
    features: dict[str, np.ndarray] = field(default_factory=dict)
    augmented: dict[tuple[str, int, str], np.ndarray] = field(default_factory=dict)  # (spec, copies, profile) -> [N, copies, ...]

    @property
    def labels(self) -> np.ndarray:
        return np.array([item.label for item in self.items])

    @property
    def groups(self) -> np.ndarray:
        return np.array([item.source for item in self.items])


def load_corpus(name: str, root: Path, workspace: Workspace) -> Corpus:
    items, rejections = curated_items(root, workspace.taxonomy("drums"), workspace)
    corpus = Corpus(name, [])
    for rejection in rejections:
        corpus.notes.append(f"rejected {rejection}")
    seen: dict[str, LabelledSegment] = {}
    for item in items:  # a byte-identical copy would put the same clip in two places (or two packs)
        first = seen.get(item.clip_id)
        if first is not None:
            corpus.notes.append(f"duplicate clip left out: {item.path} (same bytes as {first.path})")
            continue
        seen[item.clip_id] = item
        corpus.items.append(item)
    return corpus


PLAIN_EMBEDDING = False  # --plain-embedding
PLAIN = "|plain"  # a spec text ending so: the features as typed, without train's embedding defaults


def parse_spec(spec_text: str) -> FeatureSpec:
    """The spec as `train` extracts it (`with_embedding_defaults`), or as typed with --plain-embedding
    or the PLAIN suffix."""
    spec = FeatureSpec.parse(spec_text.removesuffix(PLAIN))
    return spec if PLAIN_EMBEDDING or spec_text.endswith(PLAIN) else spec.with_embedding_defaults()


def featurise(corpus: Corpus, spec_text: str, workspace: Workspace, workers: int | None) -> None:
    if spec_text in corpus.features:
        return
    spec = parse_spec(spec_text)
    extractors = spec.extractors(workspace.embeddings_dir)
    targets = [Target.of(item) for item in corpus.items]
    started = time.perf_counter()
    report = extract_features(workspace.cache, targets, spec, extractors, workers=workers)
    features, kept = load_features(workspace.cache, targets, extractors)
    if len(kept) != len(targets):
        dropped = sorted(set(range(len(targets))) - set(kept))
        corpus.notes.append(f"{spec_text}: {len(dropped)} clips could not be featurised and are left out "
                            f"({', '.join(corpus.items[i].path for i in dropped[:5])} ...)")
        corpus.items = [corpus.items[i] for i in kept]
        corpus.features = {k: v[kept] for k, v in corpus.features.items()}
        corpus.augmented = {k: v[kept] for k, v in corpus.augmented.items()}
    corpus.features[spec_text] = features
    log(f"  [{corpus.name}] {spec_text}: {features.shape} "
        f"({report.extracted} extracted, {report.cached} cached, {time.perf_counter() - started:.1f}s)")


def augmented_targets(item: LabelledSegment, copies: int, seed: int, profile: str) -> list[Target]:
    """`copies` augmented versions of an item's clip, drawn from a stream keyed by the clip's hash."""
    rng = np.random.default_rng([seed, zlib.crc32(item.clip_id.encode())])
    return [Target.of(item, random_augmentation(rng, profile)) for _ in range(copies)]


def featurise_augmented(corpus: Corpus, spec_text: str, copies: int, profile: str, workspace: Workspace,
                        workers: int | None, seed: int) -> np.ndarray:
    key = (spec_text, copies, profile)
    if key not in corpus.augmented:
        spec = parse_spec(spec_text)
        extractors = spec.extractors(workspace.embeddings_dir)
        targets = [t for item in corpus.items for t in augmented_targets(item, copies, seed, profile)]
        started = time.perf_counter()
        report = extract_features(workspace.cache, targets, spec, extractors, workers=workers)
        features, kept = load_features(workspace.cache, targets, extractors)
        if len(kept) != len(targets):
            raise RuntimeError(f"{spec_text}: {len(targets) - len(kept)} augmented copies could not be featurised")
        corpus.augmented[key] = features.reshape(len(corpus.items), copies, *features.shape[1:])
        log(f"  [{corpus.name}] {spec_text} x{copies} {profile} augmented: {features.shape} "
            f"({report.extracted} extracted, {report.cached} cached, {time.perf_counter() - started:.1f}s)")
    return corpus.augmented[key]


# -- folds ------------------------------------------------------------------------------------

@dataclass
class Fold:
    name: str  # what is tested, e.g. the held-out pack
    train: np.ndarray  # row indices into the corpus (or a joined corpus)
    val: np.ndarray
    test: np.ndarray


@dataclass
class Benchmark:
    title: str
    corpus: Corpus
    folds: list[Fold]
    classes: list[str] | None = None  # restrict to these classes (None: all)
    describe: str = ""


def leave_one_pack_out(corpus: Corpus, packs: list[str]) -> list[Fold]:
    groups = corpus.groups
    folds = []
    for index, test_pack in enumerate(packs):
        val_pack = packs[(index + 1) % len(packs)]
        folds.append(Fold(test_pack, np.flatnonzero(~np.isin(groups, [test_pack, val_pack])),
                          np.flatnonzero(groups == val_pack), np.flatnonzero(groups == test_pack)))
    return folds


def in_pack_fold(corpus: Corpus, seed: int) -> Fold:
    """A stratified 70/15/15 split by clip over every pack: test clips come from packs seen in training."""
    splits = np.array([str(s) for s in assign_splits(list(corpus.labels), [i.clip_id for i in corpus.items],
                                                     val=0.15, test=0.15, seed=seed)])
    return Fold("in-pack", np.flatnonzero(splits == "train"), np.flatnonzero(splits == "val"),
                np.flatnonzero(splits == "test"))


def join(name: str, first: Corpus, second: Corpus, specs: list[str]) -> Corpus:
    joined = Corpus(name, first.items + second.items, first.notes + second.notes)
    for spec in specs:
        if spec in first.features and spec in second.features:
            joined.features[spec] = np.concatenate([first.features[spec], second.features[spec]])
    return joined


def onto_real_packages(title: str, name: str, training: Corpus, real: Corpus, specs: list[str],
                       classes: list[str]) -> Benchmark:
    """Train on every clip of `training`, test on each real package in turn (no validation split)."""
    joined = join(f"{training.name}+real", training, real, specs)
    groups = joined.groups
    rows = np.flatnonzero(~np.isin(groups, list(REAL_PACKAGES)))
    folds = [Fold(f"{name}->{package}", rows, np.array([], dtype=np.int64), np.flatnonzero(groups == package))
             for package in REAL_PACKAGES]
    return Benchmark(title, joined, folds, classes=classes,
                     describe=f"classes: {', '.join(classes)}; no validation split")


def parse_combo(text: str) -> tuple[str, str]:
    kind, _, spec = text.strip().partition("@")
    return kind, spec or PATCH_FEATURES.get(kind, "dsp")


# -- running ----------------------------------------------------------------------------------

@dataclass
class FoldResult:
    fold: str
    accuracy: float
    macro_f1: float
    train_accuracy: float
    n_train: int
    n_test: int
    seconds: float
    per_class_f1: dict[str, float]
    f1_resamples: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))  # bootstrap macro-F1s
    truth: list[str] = field(repr=False, default_factory=list)  # the test clips' classes
    predicted: list[list[str]] = field(repr=False, default_factory=list)  # the classes predicted, per model seed

def fit_and_score(kind: str, hyperparams: dict, corpus: Corpus, spec_text: str, fold: Fold,
                  classes: list[str] | None, augment: int, workspace: Workspace, workers: int | None,
                  seed: int, model_seeds: list[int], profile: str = "kit", resamples: int = 1000) -> FoldResult | None:
    features = corpus.features[spec_text]
    labels = corpus.labels
    allowed = set(classes) if classes is not None else set(labels)
    train = np.array([i for i in fold.train if labels[i] in allowed], dtype=np.int64)
    fold_classes = sorted(set(labels[train]))
    index = {name: n for n, name in enumerate(fold_classes)}
    val = np.array([i for i in fold.val if labels[i] in index], dtype=np.int64)
    test = np.array([i for i in fold.test if labels[i] in index], dtype=np.int64)
    if len(test) == 0 or len(fold_classes) < 2:
        return None
    x_train, y_train = features[train], np.array([index[label] for label in labels[train]])
    if augment:
        extra = featurise_augmented(corpus, spec_text, augment, profile, workspace, workers, seed)[train]
        x_train = np.concatenate([x_train, extra.reshape(-1, *features.shape[1:])])
        y_train = np.concatenate([y_train, np.repeat(y_train, augment)])
    y_val = np.array([index[label] for label in labels[val]], dtype=np.int64)
    y_test = np.array([index[label] for label in labels[test]], dtype=np.int64)
    runs = []
    for model_seed in model_seeds:  # stochastic kinds: the mean over several initialisations
        model = make_model(kind, **{**hyperparams, "seed": model_seed})
        started = time.perf_counter()
        model.fit(x_train, y_train, X_val=features[val] if len(val) else None, y_val=y_val if len(val) else None,
                  n_classes=len(fold_classes))
        seconds = time.perf_counter() - started
        probabilities = model.predict_proba(features[test])
        result = evaluate(y_test, probabilities, fold_classes, resamples=1, seed=seed)
        _, f1s = bootstrap_resamples(y_test, probabilities.argmax(axis=1), len(fold_classes), resamples=resamples,
                                     seed=seed)
        train_accuracy = float(np.mean(model.predict(features[train]) == y_train[:len(train)]))
        runs.append((result, train_accuracy, seconds, f1s, [fold_classes[k] for k in probabilities.argmax(axis=1)]))
    per_class = {m.label: float(np.mean([r.per_class[k].f1 for r, *_ in runs]))
                 for k, m in enumerate(runs[0][0].per_class) if m.support}
    return FoldResult(fold.name, float(np.mean([r.accuracy for r, *_ in runs])),
                      float(np.mean([r.macro_f1 for r, *_ in runs])), float(np.mean([t for _, t, *_ in runs])),
                      len(y_train), len(test), float(sum(s for _, _, s, *_ in runs)), per_class,
                      np.mean([f for *_, f, _ in runs], axis=0), list(labels[test]), [p for *_, p in runs])


def pooled_macro_f1(truths: list[list[str]], predictions: list[list[list[str]]]) -> float:
    """The macro-F1 (`evaluate`'s) of the folds' test clips taken together, per model seed, averaged."""
    classes = sorted({c for truth in truths for c in truth} | {c for runs in predictions for p in runs for c in p})
    truth = np.array([classes.index(c) for t in truths for c in t], dtype=np.int64)
    scores = []
    for seed in range(min(len(runs) for runs in predictions)):
        predicted = np.array([classes.index(c) for runs in predictions for c in runs[seed]], dtype=np.int64)
        scores.append(evaluate(truth, np.eye(len(classes))[predicted], classes, resamples=1).macro_f1)
    return float(np.mean(scores))


@dataclass
class ComboResult:
    kind: str
    spec: str
    augment: int
    folds: list[FoldResult]
    in_pack: FoldResult | None = None
    profile: str = ""

    @property
    def f1_resamples(self) -> np.ndarray:
        """The mean over folds of each bootstrap resample's macro-F1."""
        return np.mean([f.f1_resamples for f in self.folds], axis=0)

    @property
    def f1_ci(self) -> tuple[float, float]:
        return percentile_interval(self.f1_resamples)

    @property
    def accuracy(self) -> float:
        return float(np.mean([f.accuracy for f in self.folds]))

    @property
    def pooled_f1(self) -> float:
        """Macro-F1 of every fold's test predictions taken together (the mean over model seeds): steadier
        than the mean of the folds' macro-F1s where a held-out pack has only a few clips of a class."""
        return pooled_macro_f1([f.truth for f in self.folds], [f.predicted for f in self.folds])

    @property
    def macro_f1(self) -> float:
        return float(np.mean([f.macro_f1 for f in self.folds]))

    @property
    def label(self) -> str:
        return f"{self.kind} + {self.spec}" + (f" (augment {self.augment} {self.profile})" if self.augment else "")

    def to_dict(self) -> dict:
        def fold(f: FoldResult) -> dict:
            return {k: v for k, v in vars(f).items() if k != "f1_resamples"}

        return {"kind": self.kind, "features": self.spec, "augment": self.augment, "profile": self.profile,
                "accuracy": self.accuracy, "macro_f1": self.macro_f1, "macro_f1_ci": list(self.f1_ci),
                "pooled_macro_f1": self.pooled_f1,
                "folds": [fold(f) for f in self.folds], "in_pack": fold(self.in_pack) if self.in_pack else None}


def run_combo(bench: Benchmark, kind: str, spec_text: str, hyperparams: dict, augment: int, workspace: Workspace,
              workers: int | None, seed: int, in_pack: bool, model_seeds: list[int], profile: str = "kit",
              resamples: int = 1000) -> ComboResult:
    folds = []
    for fold in bench.folds:
        result = fit_and_score(kind, hyperparams, bench.corpus, spec_text, fold, bench.classes, augment, workspace,
                               workers, seed, model_seeds, profile, resamples)
        if result is not None:
            folds.append(result)
    combo = ComboResult(kind, spec_text, augment, folds, profile=profile if augment else "")
    if in_pack:
        combo.in_pack = fit_and_score(kind, hyperparams, bench.corpus, spec_text, in_pack_fold(bench.corpus, seed),
                                      bench.classes, augment, workspace, workers, seed, model_seeds, profile, resamples)
    low, high = combo.f1_ci
    log(f"  {bench.title[:24]:<24} {combo.label:<32} acc {combo.accuracy:.3f}  F1 {combo.macro_f1:.3f} "
        f"[{low:.3f}, {high:.3f}]  ({sum(f.seconds for f in folds):.1f}s)")
    return combo


AUTO_NOTE = ("auto = what `train --model auto` (the default) chooses, per fold: every vector candidate of "
             "engine.training.auto.SEARCH on the feature sets above that it searches (dsp, hybrid:aisfx; cnn on mel "
             "left out here for time), cross-validated over the fold's training + validation rows in grouped folds "
             "(packs when there are 3 or more, else the groups train infers from the files), the winner (best mean "
             "macro-F1) trained as the other rows were")


def cv_groups_of(items: list[LabelledSegment], rows: np.ndarray, dsp: np.ndarray) -> list[str]:
    """What train's cross-validation keeps whole: the source (pack) of each row when there are at least
    MIN_GROUPS_FOR_GROUP_SPLIT of them, else the groups inferred from the files (`infer_groups`)."""
    from engine.datasets.grouping import infer_groups
    from engine.training.data import MIN_GROUPS_FOR_GROUP_SPLIT

    chosen = [items[i] for i in rows]
    if len({i.source for i in chosen}) >= MIN_GROUPS_FOR_GROUP_SPLIT:
        return [i.source for i in chosen]
    return infer_groups([i.path for i in chosen], [i.label for i in chosen], [i.source for i in chosen], dsp[rows])


def auto_choice(bench: Benchmark, fold: Fold, specs: list[str], seed: int) -> tuple[str, str, dict, float]:
    """(kind, features, hyperparameters, CV macro-F1) that `train --model auto` picks on the fold's training
    and validation rows: `engine.training.auto`'s SEARCH (vector kinds) and its grouped cross-validation
    (`cross_validate`'s folds, inner validation share and score), the test rows never seen."""
    from engine.concepts import Split
    from engine.datasets.splits import grouped_folds
    from engine.models.kinds import MODEL_KINDS
    from engine.training.auto import AUTO_FOLDS, SEARCH
    from engine.training.crossval import INNER_VAL

    corpus, labels = bench.corpus, bench.corpus.labels
    allowed = set(bench.classes) if bench.classes is not None else set(labels)
    rows = np.array([i for i in np.concatenate([fold.train, fold.val]) if labels[i] in allowed], dtype=np.int64)
    classes = sorted(set(labels[rows]))
    y = np.array([classes.index(label) for label in labels[rows]])
    groups = cv_groups_of(corpus.items, rows, corpus.features["dsp"])
    folds = min(AUTO_FOLDS, len(set(groups)))
    fold_of = grouped_folds(list(labels[rows]), groups, folds, seed=seed)
    best = None
    for kind, grid in SEARCH.items():
        if MODEL_KINDS[kind].input_rank != 1:
            continue
        for spec in specs:
            features = corpus.features[spec][rows]
            for params in grid:
                scores = []
                for k in range(folds):
                    fitting, held_out = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
                    inner = np.array([str(s) for s in assign_splits(list(labels[rows][fitting]),
                                                                    [groups[i] for i in fitting], val=INNER_VAL,
                                                                    test=0.0, seed=seed)])
                    train, stop = fitting[inner == str(Split.TRAIN)], fitting[inner == str(Split.VAL)]
                    model = make_model(kind, **{"seed": seed, **params})
                    model.fit(features[train], y[train], X_val=features[stop] if len(stop) else None,
                              y_val=y[stop] if len(stop) else None, n_classes=len(classes))
                    scores.append(evaluate(y[held_out], model.predict_proba(features[held_out]), classes,
                                           resamples=1, seed=seed).macro_f1)
                score = float(np.mean(scores))
                if best is None or score > best[3]:
                    best = (kind, spec, params, score)
    return best


def run_auto(bench: Benchmark, specs: list[str], workspace: Workspace, workers: int | None, seed: int,
             resamples: int) -> ComboResult:
    """The default `train` (--model auto) on every fold of a benchmark: its choice (`auto_choice`), then
    that choice trained and scored on the fold like any other combination (seed `seed`)."""
    searched = [s for s in ("dsp", "hybrid:aisfx") if s in specs]
    featurise(bench.corpus, "dsp", workspace, workers)  # the grouping reads it
    folds = []
    for fold in bench.folds:
        started = time.perf_counter()
        kind, spec, params, score = auto_choice(bench, fold, searched, seed)
        result = fit_and_score(kind, params, bench.corpus, spec, fold, bench.classes, 0, workspace, workers, seed,
                               [seed], resamples=resamples)
        if result is None:
            continue
        result.fold = f"{fold.name}"
        result.seconds = time.perf_counter() - started
        folds.append(result)
        log(f"  {bench.title[:24]:<24} auto on {fold.name}: {kind} + {spec} {params} (CV macro-F1 {score:.3f}) "
            f"-> held-out F1 {result.macro_f1:.3f}")
        print(f"  auto on {fold.name}: chose {kind} + {spec} {params} (CV macro-F1 {score:.3f}), "
              f"held-out macro-F1 {result.macro_f1:.3f}")
    combo = ComboResult("auto", "searched", 0, folds)
    low, high = combo.f1_ci
    log(f"  {bench.title[:24]:<24} {combo.label:<32} acc {combo.accuracy:.3f}  F1 {combo.macro_f1:.3f} "
        f"[{low:.3f}, {high:.3f}]")
    return combo


# -- printing ---------------------------------------------------------------------------------

def print_table(bench: Benchmark, combos: list[ComboResult]) -> None:
    print(f"\n== {bench.title} ==")
    if bench.describe:
        print(bench.describe)
    if not combos:
        print("(nothing ran)")
        return
    fold_names = [f.fold for f in combos[0].folds]
    has_in_pack = any(c.in_pack for c in combos)
    header = f"{'kind':<8} {'features':<13} {'aug':>9}  {'acc':>5}  {'F1 [95% CI]':>20}  {'pooled':>6}  |"
    header += "".join(f" {name[:15]:>15}" for name in fold_names)
    header += "  | train acc" + ("  | in-pack acc/F1" if has_in_pack else "") + "  | fit s"
    print(header)
    print("-" * len(header))
    for c in sorted(combos, key=lambda c: -c.macro_f1):
        low, high = c.f1_ci
        augment = f"{c.augment} {c.profile}" if c.augment else "0"
        row = (f"{c.kind:<8} {c.spec:<13} {augment:>9}  {c.accuracy:.3f}  "
               f"{f'{c.macro_f1:.3f} [{low:.3f}, {high:.3f}]':>20}  {c.pooled_f1:6.3f}  |")
        by_name = {f.fold: f for f in c.folds}
        for name in fold_names:
            f = by_name.get(name)
            row += f" {f'{f.accuracy:.2f}/{f.macro_f1:.2f}':>15}" if f else f" {'-':>15}"
        row += f"  | {np.mean([f.train_accuracy for f in c.folds]):9.3f}"
        if has_in_pack:
            row += f"  | {f'{c.in_pack.accuracy:.3f}/{c.in_pack.macro_f1:.3f}':>14}" if c.in_pack else f"  | {'-':>14}"
        row += f"  | {sum(f.seconds for f in c.folds):5.1f}"
        print(row)
    print("(acc, F1 = mean over folds of held-out accuracy and macro-F1, with the 95% bootstrap interval over test "
          "clips; pooled = macro-F1 of all folds' test clips together; per fold: accuracy/macro-F1 on the held-out set named in the header; mlp figures are means over "
          "--mlp-seeds initialisations)")


def print_per_class(bench: Benchmark, combo: ComboResult) -> None:
    classes = sorted({c for f in combo.folds for c in f.per_class_f1})
    print(f"per-class held-out F1 of {combo.label} ({bench.title}):")
    print(f"  {'fold':<16}" + "".join(f" {c[:12]:>12}" for c in classes))
    for f in combo.folds:
        print(f"  {f.fold[:16]:<16}" + "".join(
            f" {f.per_class_f1[c]:12.2f}" if c in f.per_class_f1 else f" {'-':>12}" for c in classes))


def compare_embedding(results: dict[str, list[ComboResult]]) -> None:
    print("\n== Does aisfx beat dsp on held-out packs? (macro-F1, difference vs dsp for the same kind) ==")
    for title, combos in results.items():
        by = {(c.kind, c.spec): c for c in combos if not c.augment}
        lines = []
        for kind in dict.fromkeys(c.kind for c in combos):
            base = by.get((kind, "dsp"))
            if base is None:
                continue
            parts = [f"dsp {base.macro_f1:.3f}"]
            for spec in ("onnx:aisfx", "hybrid:aisfx"):
                other = by.get((kind, spec))
                if other is not None:
                    wins = sum(o.macro_f1 > b.macro_f1 for o, b in zip(other.folds, base.folds))
                    parts.append(f"{spec} {other.macro_f1:.3f} ({other.macro_f1 - base.macro_f1:+.3f}, "
                                 f"better in {wins}/{len(base.folds)} folds)")
            if len(parts) > 1:
                lines.append(f"  {kind:<7} " + "  ".join(parts))
        if lines:
            print(f"{title}:")
            print("\n".join(lines))


# -- main -------------------------------------------------------------------------------------

def ensure_aisfx(workspace: Workspace) -> str | None:
    """None when the aisfx embedding is in the workspace, else why it is not."""
    if (workspace.embeddings_dir / "aisfx.onnx").is_file():
        return None
    try:
        from engine.embeddings.aisfx import install_aisfx

        install_aisfx(workspace)
        return None
    except Exception as error:  # a missing package or checkpoint: report and go on without it
        return f"{type(error).__name__}: {error}"


def chosen_for_augment(args, extra_combos: list[tuple[str, str]], order: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return extra_combos or order[:args.augment_top]


def compare_plain(benches: list[Benchmark], results: dict, augment_results: dict, chosen: list[tuple[str, str]],
                  args, hyper: dict, seeds_for, workspace: Workspace) -> None:
    """Each chosen combination on an aiSFX feature set: standardised (as run above) minus plain, per fold
    and in the mean, with the paired bootstrap interval (the same test clips and resamples)."""
    chosen = [(kind, spec) for kind, spec in chosen if spec.endswith(":aisfx")]
    print(f"\n== The aiSFX embedding standardised per clip (train's default) minus plain, for "
          f"{', '.join(f'{k} + {s}' for k, s in chosen)} (95% paired bootstrap intervals) ==")
    for bench in benches:
        if bench.title.startswith("(c)"):
            continue
        print(f"{bench.title}:")
        for kind, spec in chosen:
            featurise(bench.corpus, spec + PLAIN, workspace, args.workers)
            for augment in dict.fromkeys([0, args.augment]):
                pool = results[bench.title] + augment_results.get(bench.title, [])
                standard = next((c for c in pool if (c.kind, c.spec, c.augment) == (kind, spec, augment)), None)
                if standard is None:
                    continue
                plain = run_combo(bench, kind, spec + PLAIN, hyper[kind], augment, workspace, args.workers, args.seed,
                                  in_pack=False, model_seeds=seeds_for(kind), resamples=args.resamples)
                parts = []
                for one, other in zip(standard.folds, plain.folds):
                    low, high = percentile_interval(one.f1_resamples - other.f1_resamples)
                    parts.append(f"{one.fold} {other.macro_f1:.3f} -> {one.macro_f1:.3f} "
                                 f"({one.macro_f1 - other.macro_f1:+.3f} [{low:+.3f}, {high:+.3f}])")
                low, high = percentile_interval(standard.f1_resamples - plain.f1_resamples)
                print(f"  {kind} + {spec}, augment {augment}: mean {plain.macro_f1:.3f} -> {standard.macro_f1:.3f} "
                      f"({standard.macro_f1 - plain.macro_f1:+.3f} [{low:+.3f}, {high:+.3f}])"
                      + ("; " + "; ".join(parts) if len(parts) > 1 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/workbench-bench-generalisation"),
                        help="folder for the workspace (feature cache) and the synthetic / real curated roots")
    parser.add_argument("--clips", type=int, default=10, help="synthetic clips per class per pack")
    parser.add_argument("--kinds", default=DEFAULT_KINDS)
    parser.add_argument("--features", default=DEFAULT_FEATURES,
                        help="for the vector kinds; cnn always uses mel, finetune wave")
    parser.add_argument("--cnn-epochs", type=int, default=20)
    parser.add_argument("--finetune-epochs", type=int, default=30)
    parser.add_argument("--augment", type=int, default=2, help="augmented copies for the augmentation run (0: skip)")
    parser.add_argument("--augment-top", type=int, default=2, help="how many of the best combinations to augment")
    parser.add_argument("--augment-combos", default=None,
                        help="augment these KIND@FEATURES (comma-separated) instead of the best --augment-top")
    parser.add_argument("--augment-profiles", default="kit,basic", help="augmentation profiles to compare")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the intervals")
    parser.add_argument("--no-synthetic", action="store_true")
    parser.add_argument("--no-real", action="store_true")
    parser.add_argument("--no-hydrogen", action="store_true")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="data seed: synthetic clips, in-pack split, augmentations")
    parser.add_argument("--mlp-seeds", type=int, default=3,
                        help="average every mlp figure over this many initialisations (seeds 0..N-1); logreg and lgbm "
                             "are deterministic here, cnn runs one seed because it is slow")
    parser.add_argument("--plain-embedding", action="store_true",
                        help="the embedding as it was before train standardised aiSFX per clip (to compare)")
    parser.add_argument("--compare-plain", action="store_true",
                        help="after the tables: the augmented combinations' aiSFX features standardised per clip "
                             "(train's default) against plain, with and without augmentation, paired")
    parser.add_argument("--params", action="append", default=[], metavar="KIND:KEY=VALUE",
                        help="a hyperparameter for every fit of a kind, e.g. logreg:C=0.01 (repeatable)")
    parser.add_argument("--auto", action="store_true",
                        help="also score the default `train --model auto` on every fold of (a), (b) and (c): its "
                             "cross-validated choice among the vector candidates, then that choice on the fold")
    parser.add_argument("--json", type=Path, default=None, help="also write every result here")
    args = parser.parse_args()
    started = time.perf_counter()
    global PLAIN_EMBEDDING
    PLAIN_EMBEDDING = args.plain_embedding

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    vector_specs = [s.strip() for s in args.features.split(",") if s.strip()]
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    workspace = Workspace.open(work / "ws")
    notes: list[str] = []

    if any(s.endswith(":aisfx") for s in vector_specs):
        problem = ensure_aisfx(workspace)
        if problem:
            notes.append(f"aisfx embedding unavailable, its features are skipped ({problem})")
            vector_specs = [s for s in vector_specs if not s.endswith(":aisfx")]
    combos = [(kind, spec) for kind in kinds if kind not in PATCH_FEATURES for spec in vector_specs]
    combos += [(kind, PATCH_FEATURES[kind]) for kind in kinds if kind in PATCH_FEATURES]
    if "finetune" in kinds:
        from engine.embeddings.aisfx import installed_package_dir

        if installed_package_dir() is None:
            notes.append("finetune skipped: the aisfx package (its pretrained weights) is not installed")
            combos.remove(("finetune", "wave"))
    extra_combos = [parse_combo(c) for c in args.augment_combos.split(",")] if args.augment_combos else []
    specs = list(dict.fromkeys(spec for _, spec in combos + extra_combos))
    hyper = {"cnn": {"epochs": args.cnn_epochs}, "finetune": {"epochs": args.finetune_epochs}, "mlp": {}, "lgbm": {},
             "logreg": {}}
    for text in args.params:
        kind, _, assignment = text.partition(":")
        key, _, value = assignment.partition("=")
        if kind not in hyper or not key or not value:
            parser.error(f"--params {text!r}: expected KIND:KEY=VALUE with KIND one of {', '.join(hyper)}")
        hyper[kind][key] = parse_param_value(value)

    def seeds_for(kind: str) -> list[int]:
        return list(range(max(args.mlp_seeds, 1))) if kind == "mlp" else [0]

    benches: list[Benchmark] = []
    synthetic: Corpus | None = None
    if not args.no_synthetic:
        root = work / f"synthetic_{args.clips}"
        if not (root / ".complete").is_file():
            log(f"writing the synthetic library ({len(DEMO_PACKS)} packs x {len(DRUM_CLASSES)} classes x {args.clips})")
            write_curated_library(root, clips_per_class_per_pack=args.clips, seed=args.seed)
            (root / ".complete").write_text("ok")
        synthetic = load_corpus("synthetic", root, workspace)
        packs = [p.name for p in DEMO_PACKS]
        benches.append(Benchmark(
            "(a) synthetic demo packs, leave-one-pack-out", synthetic, leave_one_pack_out(synthetic, packs),
            describe=(f"{len(synthetic.items)} clips, {len(DRUM_CLASSES)} classes, {args.clips} per class per pack; "
                      f"each fold: test = the named pack, val = the next pack, train = the other 3")))

    real: Corpus | None = None
    if not args.no_real:
        real_root = work / "real"
        counts = build_real_root(real_root)
        if counts is not None:
            real = load_corpus("real", real_root, workspace)
            found = Counter(zip(real.groups, real.labels))
            shared = sorted(set.intersection(*(set(c) for c in counts.values())))
            print("Real drum one-shots found (files per class and package, after the mapping table):")
            all_classes = sorted({label for c in counts.values() for label in c})
            print(f"  {'class':<13}" + "".join(f" {p:>8}" for p in REAL_PACKAGES) + "  used")
            for label in all_classes:
                print(f"  {label:<13}" + "".join(f" {found[(p, label)]:>8}" for p in REAL_PACKAGES)
                      + f"  {'yes' if label in shared else 'no (not in both)'}")
            print(f"  {'total':<13}" + "".join(f" {sum(found[(p, l)] for l in all_classes):>8}" for p in REAL_PACKAGES))
            groups = real.groups
            folds = [Fold(f"{train}->{test}", np.flatnonzero(groups == train), np.array([], dtype=np.int64),
                          np.flatnonzero(groups == test))
                     for train, test in (("lmms", "sonicpi"), ("sonicpi", "lmms"))]
            benches.append(Benchmark(
                "(b) real packages, train on one, test on the other", real, folds, classes=shared,
                describe=f"classes used (present in both packages): {', '.join(shared)}; no validation split"))

    hydrogen: Corpus | None = None
    if not args.no_hydrogen:
        counts = build_hydrogen_root(work / "hydrogen")
        if counts is not None:
            hydrogen = load_corpus("hydrogen", work / "hydrogen", workspace)
            kits = sorted({pack for pack, _ in counts})
            found = Counter(zip(hydrogen.groups, hydrogen.labels))
            classes = sorted({label for _, label in counts})
            print("Hydrogen drum kits (files per class and kit, after the mapping table and duplicates):")
            print(f"  {'kit':<24}" + "".join(f" {c[:12]:>12}" for c in classes) + "  total")
            for kit in kits:
                print(f"  {kit[:24]:<24}" + "".join(f" {found[(kit, c)]:>12}" for c in classes)
                      + f"  {sum(found[(kit, c)] for c in classes):>5}")
            benches.append(Benchmark(
                "(d) real Hydrogen drum kits, leave-one-kit-out", hydrogen, leave_one_pack_out(hydrogen, kits),
                describe=(f"{len(hydrogen.items)} clips, {len(classes)} classes, {len(kits)} kits; each fold: test = "
                          f"the named kit, val = the next kit, train = the other {len(kits) - 2}")))

    for corpus in [c for c in (synthetic, real, hydrogen) if c is not None]:
        log(f"featurising {corpus.name} ({len(corpus.items)} clips)")
        for spec in specs:
            featurise(corpus, spec, workspace, args.workers)
        notes += corpus.notes

    real_classes = next((b.classes for b in benches if b.title.startswith("(b)")), None)
    if synthetic is not None and real is not None:
        benches.append(onto_real_packages(
            "(c) synthetic -> real: train on the 5 synthetic packs, test on a real package", "synth",
            synthetic, real, specs, real_classes))
    if hydrogen is not None and real is not None:
        benches.append(onto_real_packages(
            "(e) another source: train on every Hydrogen kit, test on a Debian package", "kits",
            hydrogen, real, specs, real_classes))

    print(f"\nfeatures ready after {time.perf_counter() - started:.0f}s\n")
    results: dict[str, list[ComboResult]] = {}
    auto_results: dict[str, ComboResult] = {}
    for bench in benches:
        results[bench.title] = [
            run_combo(bench, kind, spec, hyper[kind], 0, workspace, args.workers, args.seed,
                      in_pack=bench.title.startswith("(a)"), model_seeds=seeds_for(kind), resamples=args.resamples)
            for kind, spec in combos]
        print_table(bench, results[bench.title])
        if args.auto:
            print(f"{AUTO_NOTE}:")
            auto_results[bench.title] = run_auto(bench, specs, workspace, args.workers, args.seed, args.resamples)
            print_table(bench, [auto_results[bench.title]])

    # The overall ranking: mean held-out macro-F1 over the benchmarks that ran, each weighing equally
    # ((c) is reported but not ranked: the demo library is not what users train on).
    ranked_titles = [b.title for b in benches if not b.title.startswith("(c)")]
    overall: dict[tuple[str, str], float] = {}
    for kind, spec in combos:
        scores = [next(c.macro_f1 for c in results[t] if (c.kind, c.spec) == (kind, spec)) for t in ranked_titles]
        overall[(kind, spec)] = float(np.mean(scores))
    order = sorted(overall, key=lambda k: -overall[k])
    print("\n== Overall: mean held-out macro-F1 over " + " and ".join(t[:3] for t in ranked_titles) + " ==")
    for rank, (kind, spec) in enumerate(order, 1):
        per = "  ".join(f"{t[:3]} {next(c.macro_f1 for c in results[t] if (c.kind, c.spec) == (kind, spec)):.3f}"
                        for t in ranked_titles)
        print(f"  {rank:>2}. {kind:<7} {spec:<13} {overall[(kind, spec)]:.3f}   ({per})")
    best_kind, best_spec = order[0]
    print(f"\nBest generalising combination: {best_kind} + {best_spec}")
    for bench in benches:
        best = next(c for c in results[bench.title] if (c.kind, c.spec) == (best_kind, best_spec))
        print_per_class(bench, best)

    compare_embedding(results)

    augment_results: dict[str, list[ComboResult]] = {}
    profiles = [p.strip() for p in args.augment_profiles.split(",") if p.strip()]
    if args.augment > 0 and (args.augment_top > 0 or extra_combos) and profiles:
        chosen = chosen_for_augment(args, extra_combos, order)
        print(f"\n== Augmentation: {args.augment} augmented copies of every training clip ({', '.join(profiles)}), "
              f"for {', '.join(f'{k} + {s}' for k, s in chosen)} ==")
        for bench in benches:
            if bench.title.startswith("(c)"):
                continue
            rows = []
            for kind, spec in chosen:
                plain = next((c for c in results[bench.title] if (c.kind, c.spec) == (kind, spec)), None)
                if plain is None:
                    plain = run_combo(bench, kind, spec, hyper[kind], 0, workspace, args.workers, args.seed,
                                      in_pack=False, model_seeds=seeds_for(kind), resamples=args.resamples)
                rows.append(plain)
                for profile in profiles:
                    augmented = run_combo(bench, kind, spec, hyper[kind], args.augment, workspace, args.workers,
                                          args.seed, in_pack=False, model_seeds=seeds_for(kind), profile=profile,
                                          resamples=args.resamples)
                    rows.append(augmented)
                    augment_results.setdefault(bench.title, []).append(augmented)
            print_table(bench, rows)
            for kind, spec in chosen:
                plain = next(c for c in rows if (c.kind, c.spec, c.augment) == (kind, spec, 0))
                for aug in (c for c in rows if (c.kind, c.spec) == (kind, spec) and c.augment):
                    low, high = percentile_interval(aug.f1_resamples - plain.f1_resamples)
                    print(f"  {kind} + {spec}: augment {args.augment} {aug.profile} changes held-out accuracy by "
                          f"{aug.accuracy - plain.accuracy:+.3f} and macro-F1 by {aug.macro_f1 - plain.macro_f1:+.3f} "
                          f"[{low:+.3f}, {high:+.3f}] (paired bootstrap over test clips)")

    if args.compare_plain and not args.plain_embedding:
        compare_plain(benches, results, augment_results, chosen_for_augment(args, extra_combos, order), args,
                      hyper, seeds_for, workspace)

    if notes:
        print("\nNotes:")
        for note in dict.fromkeys(notes):
            print(f"  - {note}")
    print(f"\ntotal {time.perf_counter() - started:.0f}s")
    if args.json:
        args.json.write_text(json.dumps({
            "results": {t: [c.to_dict() for c in cs] for t, cs in results.items()},
            "augmented": {t: [c.to_dict() for c in cs] for t, cs in augment_results.items()},
            "auto": {t: c.to_dict() for t, c in auto_results.items()},
            "overall": [{"kind": k, "features": s, "macro_f1": overall[(k, s)]} for k, s in order],
            "notes": list(dict.fromkeys(notes)),
        }, indent=2))


if __name__ == "__main__":
    main()
