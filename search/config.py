"""Experiment configuration: frozen dataclasses, loaded from YAML with dotted overrides.

Every component owns a small frozen dataclass whose ``__post_init__`` checks ranges; ``load_config``
composes them into one :class:`ExperimentConfig`. Unknown keys, wrong types and out-of-range values
raise :class:`ConfigError` naming the key and the file, so a typo never silently runs a default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .datasets import DATASETS
from .errors import ConfigError, first_line
from .search_config import SearchConfig
from .space import parse
from .typed import apply_overrides, build, check


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "fashion_mnist"  # a built-in (mnist, fashion_mnist, cifar10) or a source: folder:/parquet:/npz:
    # PATH_OR_URI (search.sources), decoded once into <data root>/prepared/<fingerprint>/ (search.prepared)
    root: str | None = None  # None: $GTNNAS_DATA_DIR, then the usual places (see search.data)
    split_seed: int = 0
    train_subset: int | None = None  # use only the first N training images (tests, quick runs)
    val_subset: int | None = None
    device: str = "cpu"  # single-process commands only (gtnnas gtn train); Ray tasks follow cluster.device
    mirror: str | None = None  # a folder or URI (s3://, gs://) laid out like the data directory; nodes that
    # lack the data set fetch it from here first
    # A source's settings (left out of every hash while at their defaults: see OMITTED_AT_DEFAULT)
    image_column: str = "image"  # parquet: encoded bytes, or the Hugging Face struct {bytes, path}
    label_column: str = "label"  # parquet: ints or strings
    split_column: str | None = None  # parquet: train/val/validation/test per row; None: from the file names
    channels: int | None = None  # 1 or 3 (converts); None: the source's
    image_size: int | None = None  # resize every image to this square (bilinear); None: the source's size
    val_fraction: float = 0.1  # of the training images, per class, when the source has no val split
    test_fraction: float = 0.1  # the same, when it has no test split

    def __post_init__(self) -> None:
        for k in ("train_subset", "val_subset"):
            v = getattr(self, k)
            check(v is None or v > 0, k, "must be positive")
        kind = None
        if self.dataset not in DATASETS:
            from .sources import parse_source  # noqa: PLC0415  (lazy: pyarrow only when a config names a source)

            try:
                source = parse_source(self.dataset)
            except ValueError as e:
                raise ValueError(f"dataset: {e}") from None
            kind = source.kind if source is not None else None
        check(self.channels in (None, 1, 3), "channels", "must be 1 or 3 (or unset: the source's)")
        check(self.image_size is None or 1 <= self.image_size <= 4096, "image_size", "must be in [1, 4096]")
        for k in ("val_fraction", "test_fraction"):
            check(0 < getattr(self, k) <= 0.5, k, "must be in (0, 0.5]")
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for k in ("channels", "image_size", "val_fraction", "test_fraction", "image_column", "label_column"):
            parquet = k.endswith("column")
            applies = kind == "parquet" if parquet else kind is not None
            where = "a parquet: source" if parquet else "a source (folder:, parquet:, npz:)"
            check(applies or getattr(self, k) == defaults[k], k, f"applies to {where} only")
        check(self.split_column is None or kind == "parquet", "split_column", "applies to a parquet: source only")


@dataclass(frozen=True)
class NetConfig:
    channels: int = 8  # C of NAS-Bench-201 (16 in the published tables)
    cells: int = 1  # N cells per stage (5 in the published tables)
    norm: Literal["bn", "gtn", "gtn_bn"] = "bn"

    def __post_init__(self) -> None:
        check(self.channels >= 1, "channels", "must be >= 1")
        check(self.cells >= 1, "cells", "must be >= 1")


@dataclass(frozen=True)
class TrainConfig:
    """Real-data training (the baseline, the truth builder and the ``real:k`` proxy)."""

    epochs: float = 1.0  # used when steps is None
    steps: int | None = None
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        check(self.epochs > 0, "epochs", "must be > 0")
        check(self.steps is None or self.steps >= 1, "steps", "must be >= 1")
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(self.lr > 0, "lr", "must be > 0")
        check(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")
        check(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        check(self.eval_batch_size >= 1, "eval_batch_size", "must be >= 1")


@dataclass(frozen=True)
class BaselineConfig:
    """The real-data baseline job: train a few sampled cells and rank them."""

    num_archs: int = 6
    cpus_per_trial: float = 1.0

    def __post_init__(self) -> None:
        check(1 <= self.num_archs <= 8765, "num_archs", "must be in 1..8765 (the space's equivalence classes)")
        check(self.cpus_per_trial > 0, "cpus_per_trial", "must be > 0")


@dataclass(frozen=True)
class GTNConfig:
    """Generative Teaching Network meta-training (see search.gtn, search.inner_loop and search.outer_loop)."""

    seed: int = 0  # meta-training's own seed, not the search's: a teacher depends on its data and these
    # settings only, so searches with any seed reuse it (search.teacher, the teacher store)
    curriculum: Literal["full", "shuffled_batches", "none", "real", "pixels"] = "full"
    inner_steps: int = 32  # T
    inner_batch: int = 128  # B, synthetic images per inner step
    noise_dim: int = 128
    soft_labels: bool = False
    pixels_init: Literal["noise", "real"] = "noise"  # curriculum: pixels starts from noise or real images
    generator_init: Literal["random", "real"] = "random"  # real: fit generator + noise to real images first
    generator_init_steps: int = 200  # Adam steps of that fit (one inner step's batch each)
    init_lr: float = 0.02
    init_momentum: float = 0.5
    outer_steps: int = 200
    meta_lr: float = 0.02  # Adam; the released MNIST config (CIFAR-10: 0.004, beta2 0.9, eps 1e-5)
    generator_meta_lr: float | None = None  # the generator's weights only (None: meta_lr); a warm generator
    # needs a far smaller step than its latents and lr/momentum schedule
    meta_beta2: float = 0.999
    meta_eps: float = 1e-8
    final_relative_lr: float = 0.1  # cosine decay of the meta learning rate down to this fraction
    meta_batch: int = 128  # real training images per meta-loss term
    meta_loss_every: int = 0  # k: add a real-data loss every k-th inner step; 0 = final step only
    first_order: bool = False
    checkpointing: bool = True
    autocast: Literal["none", "bf16"] = "none"  # learner forwards in bfloat16 inside the unroll (GPU speed)
    grad_clip: float | None = None
    learner: Literal["sampled", "fixed"] = "sampled"
    learner_arch: str | None = None  # NB201 string for learner=fixed; None = the GTN paper's conv net
    learner_norm: Literal["gtn", "gtn_bn", "bn"] = "gtn_bn"  # gtn: WN + mean-only BN (GTN paper learners);
    # gtn_bn: WN + full BN on the latest batch (the official code's NAS cells); bn: plain BatchNorm
    eval_bn: Literal["batch", "running"] = "batch"  # BN statistics when a learner meets real data: the
    # real batch's own (as MAML does; default) or the running stats of the last synthetic batch (official)
    learner_channels: int = 8
    learner_cells: int = 1
    random_width: bool = False  # sample learner channels in [C/2, 2C] each outer step
    learners_per_step: int = 1  # learners unrolled per outer step; their meta-gradients are averaged
    rank_weight: float = 0.0  # > 0: add a pairwise ranking term over the step's learners (search.rank; ours)
    rank_pool: str | None = None  # cells with real-data targets the learners are drawn from (benchmarks/rank_pool.py)
    rank_batch: int = 512  # real training images the learners are compared on
    rank_tau: float = 0.05  # temperature of the pairwise logistic loss (in units of cross-entropy)
    validate_every: int = 20
    checkpoint_every: int = 25  # outer steps between resumable checkpoints (gtnnas gtn train, the teacher stage)
    validate_size: int = 2000  # validation images used for the periodic check
    validate_arch: str = (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    )

    def __post_init__(self) -> None:
        check(self.inner_steps >= 1, "inner_steps", "must be >= 1")
        check(self.inner_batch >= 1, "inner_batch", "must be >= 1")
        check(self.noise_dim >= 1, "noise_dim", "must be >= 1")
        check(self.init_lr > 0, "init_lr", "must be > 0")
        check(0 <= self.init_momentum < 1, "init_momentum", "must be in [0, 1)")
        check(self.outer_steps >= 1, "outer_steps", "must be >= 1")
        check(self.meta_lr > 0, "meta_lr", "must be > 0")
        check(self.generator_meta_lr is None or self.generator_meta_lr > 0, "generator_meta_lr", "must be > 0")
        check(
            self.generator_meta_lr is None or self.curriculum not in ("pixels", "real"),
            "generator_meta_lr",
            f"the {self.curriculum} curriculum meta-learns no generator",
        )
        check(0 <= self.meta_beta2 < 1, "meta_beta2", "must be in [0, 1)")
        check(self.meta_eps > 0, "meta_eps", "must be > 0")
        check(0 <= self.final_relative_lr <= 1, "final_relative_lr", "must be in [0, 1]")
        check(self.meta_batch >= 1, "meta_batch", "must be >= 1")
        check(self.meta_loss_every >= 0, "meta_loss_every", "must be >= 0")
        check(self.grad_clip is None or self.grad_clip > 0, "grad_clip", "must be > 0")
        check(
            self.pixels_init == "noise" or self.curriculum == "pixels", "pixels_init", "real needs curriculum: pixels"
        )
        check(
            self.generator_init == "random" or self.curriculum in ("full", "shuffled_batches"),
            "generator_init",
            "real needs a learned curriculum (full or shuffled_batches)",
        )
        check(self.generator_init_steps >= 1, "generator_init_steps", "must be >= 1")
        check(self.learner_channels >= 1, "learner_channels", "must be >= 1")
        check(self.learner_cells >= 1, "learner_cells", "must be >= 1")
        check(self.learners_per_step >= 1, "learners_per_step", "must be >= 1")
        check(self.rank_weight >= 0, "rank_weight", "must be >= 0")
        check(self.rank_weight == 0 or self.rank_pool is not None, "rank_pool", "rank_weight > 0 needs a rank pool")
        check(
            self.rank_weight == 0 or self.learners_per_step >= 2,
            "learners_per_step",
            "rank_weight > 0 needs >= 2 learners per step to compare",
        )
        check(self.rank_weight == 0 or self.learner == "sampled", "learner", "rank_weight > 0 needs sampled learners")
        check(self.rank_batch >= 1, "rank_batch", "must be >= 1")
        check(self.rank_tau > 0, "rank_tau", "must be > 0")
        check(self.validate_every >= 1, "validate_every", "must be >= 1")
        check(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        check(self.validate_size >= 1, "validate_size", "must be >= 1")
        for key in ("learner_arch", "validate_arch"):  # malformed cells are config errors too
            if getattr(self, key) is not None:
                try:
                    parse(getattr(self, key))
                except ValueError as e:
                    raise ValueError(f"{key}: {e}") from None

    @property
    def learner_net(self) -> NetConfig:
        """The learners' network settings (width, depth, normalisation), as a searched network has them."""
        return NetConfig(self.learner_channels, self.learner_cells, self.learner_norm)


@dataclass(frozen=True)
class RetrainConfig:
    """The optional last stage of ``gtnnas search`` (``top`` 0: none). ``epochs`` and ``seeds`` are also
    ``gtnnas retrain``'s defaults; its ``--top`` defaults to 3, since running it means retraining some."""

    top: int = 0  # retrain the best `top` distinct cells after the search (0: no final stage)
    epochs: float = 1.0  # full schedule over the training split
    seeds: int = 2

    def __post_init__(self) -> None:
        check(self.top >= 0, "top", "must be >= 0")
        check(self.epochs > 0, "epochs", "must be > 0")
        check(self.seeds >= 1, "seeds", "must be >= 1")


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "gtnnas"
    seed: int = 0
    out: str = "runs/latest"  # where single-process commands write (teacher.pt, tables, plots)
    storage: str = "runs"  # root of experiments written by Ray (local path or pyarrow.fs URI)
    data: DataConfig = field(default_factory=DataConfig)
    net: NetConfig = field(default_factory=NetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    gtn: GTNConfig = field(default_factory=GTNConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)

    def __post_init__(self) -> None:
        check(bool(self.name) and "/" not in self.name, "name", "must be a non-empty name without '/'")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self, sections: tuple[str, ...] | None = None, exclude: dict[str, tuple[str, ...]] | None = None) -> str:
        """Stable short hash of what the settings compute (all sections, or the ones named), stored with
        each result for reproducibility; the :data:`UNHASHED` settings and ``exclude``'s are left out."""
        d = self.to_dict()
        skip = {k: (*UNHASHED.get(k, ()), *(exclude or {}).get(k, ())) for k in d}
        for k, defaults in OMITTED_AT_DEFAULT.items():
            skip[k] = (*skip[k], *(f for f, v in defaults.items() if d[k][f] == v))
        blob = {
            k: {f: v for f, v in d[k].items() if f not in skip[k]} if isinstance(d[k], dict) else d[k]
            for k in (sections or tuple(d))
        }
        return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:12]


UNHASHED = {"data": ("root", "device", "mirror"), "train": ("eval_batch_size",)}
"""Settings that say where the data is or how big an evaluation batch is, not what is computed: no
hash includes them, so moving the data keeps an experiment resumable and a teacher or truth table valid."""

OMITTED_AT_DEFAULT = {
    "data": {
        f.name: f.default
        for f in dataclasses.fields(DataConfig)
        if f.name
        in ("image_column", "label_column", "split_column", "channels", "image_size", "val_fraction", "test_fraction")
    }
}
"""Settings added after hashes were first stored (a source's): no hash includes them while they keep their
default, so every built-in config keeps its hash, its shipped teacher and its truth tables."""


# --------------------------------------------------------------------------- loading


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> ExperimentConfig:
    try:
        return build(ExperimentConfig, data)
    except ValueError as e:
        raise ConfigError(f"{source}: {e}") from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load a YAML file (or the defaults when ``path`` is None) and apply dotted overrides."""
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise ConfigError(f"{source}: cannot read config ({e.strerror})") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{source}: not valid YAML ({first_line(e)})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: top level must be a mapping")
    if overrides:
        data = apply_overrides(data, overrides)
        source += " + overrides"
    return config_from_dict(data, source)
