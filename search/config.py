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
from .evaluators import Evaluator, evaluator
from .latency import LatencySpec, parse_latency
from .pareto import COSTS, Constraint, Objective, parse_constraints, parse_objectives
from .scoring import DATA_FREE, Scorer
from .space import parse
from .typed import apply_overrides, build


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ValueError(f"{key}: {msg}")


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
            _check(v is None or v > 0, k, "must be positive")
        kind = None
        if self.dataset not in DATASETS:
            from .sources import parse_source  # noqa: PLC0415  (lazy: pyarrow only when a config names a source)

            try:
                source = parse_source(self.dataset)
            except ValueError as e:
                raise ValueError(f"dataset: {e}") from None
            kind = source.kind if source is not None else None
        _check(self.channels in (None, 1, 3), "channels", "must be 1 or 3 (or unset: the source's)")
        _check(self.image_size is None or 1 <= self.image_size <= 4096, "image_size", "must be in [1, 4096]")
        for k in ("val_fraction", "test_fraction"):
            _check(0 < getattr(self, k) <= 0.5, k, "must be in (0, 0.5]")
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for k in ("channels", "image_size", "val_fraction", "test_fraction", "image_column", "label_column"):
            parquet = k.endswith("column")
            applies = kind == "parquet" if parquet else kind is not None
            where = "a parquet: source" if parquet else "a source (folder:, parquet:, npz:)"
            _check(applies or getattr(self, k) == defaults[k], k, f"applies to {where} only")
        _check(self.split_column is None or kind == "parquet", "split_column", "applies to a parquet: source only")


@dataclass(frozen=True)
class NetConfig:
    channels: int = 8  # C of NAS-Bench-201 (16 in the published tables)
    cells: int = 1  # N cells per stage (5 in the published tables)
    norm: Literal["bn", "gtn", "gtn_bn"] = "bn"

    def __post_init__(self) -> None:
        _check(self.channels >= 1, "channels", "must be >= 1")
        _check(self.cells >= 1, "cells", "must be >= 1")


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
        _check(self.epochs > 0, "epochs", "must be > 0")
        _check(self.steps is None or self.steps >= 1, "steps", "must be >= 1")
        _check(self.batch_size >= 1, "batch_size", "must be >= 1")
        _check(self.lr > 0, "lr", "must be > 0")
        _check(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")
        _check(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        _check(self.eval_batch_size >= 1, "eval_batch_size", "must be >= 1")


@dataclass(frozen=True)
class BaselineConfig:
    """The real-data baseline job: train a few sampled cells and rank them."""

    num_archs: int = 6
    cpus_per_trial: float = 1.0

    def __post_init__(self) -> None:
        _check(1 <= self.num_archs <= 8765, "num_archs", "must be in 1..8765 (the space's equivalence classes)")
        _check(self.cpus_per_trial > 0, "cpus_per_trial", "must be > 0")


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
        _check(self.inner_steps >= 1, "inner_steps", "must be >= 1")
        _check(self.inner_batch >= 1, "inner_batch", "must be >= 1")
        _check(self.noise_dim >= 1, "noise_dim", "must be >= 1")
        _check(self.init_lr > 0, "init_lr", "must be > 0")
        _check(0 <= self.init_momentum < 1, "init_momentum", "must be in [0, 1)")
        _check(self.outer_steps >= 1, "outer_steps", "must be >= 1")
        _check(self.meta_lr > 0, "meta_lr", "must be > 0")
        _check(self.generator_meta_lr is None or self.generator_meta_lr > 0, "generator_meta_lr", "must be > 0")
        _check(
            self.generator_meta_lr is None or self.curriculum not in ("pixels", "real"),
            "generator_meta_lr",
            f"the {self.curriculum} curriculum meta-learns no generator",
        )
        _check(0 <= self.meta_beta2 < 1, "meta_beta2", "must be in [0, 1)")
        _check(self.meta_eps > 0, "meta_eps", "must be > 0")
        _check(0 <= self.final_relative_lr <= 1, "final_relative_lr", "must be in [0, 1]")
        _check(self.meta_batch >= 1, "meta_batch", "must be >= 1")
        _check(self.meta_loss_every >= 0, "meta_loss_every", "must be >= 0")
        _check(self.grad_clip is None or self.grad_clip > 0, "grad_clip", "must be > 0")
        _check(
            self.pixels_init == "noise" or self.curriculum == "pixels", "pixels_init", "real needs curriculum: pixels"
        )
        _check(
            self.generator_init == "random" or self.curriculum in ("full", "shuffled_batches"),
            "generator_init",
            "real needs a learned curriculum (full or shuffled_batches)",
        )
        _check(self.generator_init_steps >= 1, "generator_init_steps", "must be >= 1")
        _check(self.learner_channels >= 1, "learner_channels", "must be >= 1")
        _check(self.learner_cells >= 1, "learner_cells", "must be >= 1")
        _check(self.learners_per_step >= 1, "learners_per_step", "must be >= 1")
        _check(self.rank_weight >= 0, "rank_weight", "must be >= 0")
        _check(self.rank_weight == 0 or self.rank_pool is not None, "rank_pool", "rank_weight > 0 needs a rank pool")
        _check(
            self.rank_weight == 0 or self.learners_per_step >= 2,
            "learners_per_step",
            "rank_weight > 0 needs >= 2 learners per step to compare",
        )
        _check(self.rank_weight == 0 or self.learner == "sampled", "learner", "rank_weight > 0 needs sampled learners")
        _check(self.rank_batch >= 1, "rank_batch", "must be >= 1")
        _check(self.rank_tau > 0, "rank_tau", "must be > 0")
        _check(self.validate_every >= 1, "validate_every", "must be >= 1")
        _check(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        _check(self.validate_size >= 1, "validate_size", "must be >= 1")
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


def is_unit_fraction(x: float) -> bool:
    """0, a whole number, or 1/n: the GPU shares Ray can pack without leaving a remainder."""
    if x == 0 or (x >= 1 and float(x).is_integer()):
        return True
    return 0 < x < 1 and abs(1 / x - round(1 / x)) < 1e-6


@dataclass(frozen=True)
class SearchConfig:
    """The distributed search (cluster/): searcher, scheduler, fidelities, resources, leaderboard."""

    teacher: str | None = None  # None: the stored teacher of these data and gtn settings, else meta-train one
    # first (and store it); "fresh": meta-train one even so; or a teacher.pt path or URI (s3://, gs://)
    teacher_store: str | None = None  # where teachers are found and filed (None: <storage>/teachers for
    # remote storage, else ~/.cache/gtnnas/teachers); teachers shipped with gtnnas are found first
    evaluator: Literal["real", "nb201"] = "real"  # real-data rungs, or NAS-Bench-201 table lookups (benchmark mode)
    score: str = "gtn"  # rung 1: a component of search.components (gtn, or a zero-cost proxy: params, flops,
    # synflow, naswot, jacob_cov), A+B (their combination: equal weights on ranks among the cells scored), or none
    searcher: str = "evolution"  # random | evolution | any Tune searcher by name (e.g. optuna)
    scheduler: Literal["fifo", "asha"] = "asha"
    num_samples: int = 40
    max_concurrent: int = 0  # 0: as many as resources allow
    population: int = 20  # regularised evolution
    tournament: int = 5
    seed_proxy: str | None = None  # evolution: the first population is the best cells by this proxy...
    seed_sample: int = 1000  # ...among this many uniformly sampled cells
    score_steps: int | None = None  # inner steps on the curriculum (None: its T)
    score_seeds: int = 1  # learner initialisations averaged per GTN score
    score_val: int | None = None  # validation images a GTN score is read on (None: all of data.val_subset)
    score_channels: int | None = None  # width of the GTN score's learners (None: net.channels)
    score_metric: Literal["acc", "loss"] = "acc"  # the GTN score reads accuracy, or minus the mean loss
    real_rungs: int = 2  # real-data rungs after the rung-1 score (benchmark mode: exactly 1, the table)
    real_steps: int = 100  # SGD steps of real-data training per rung
    reduction_factor: int = 4  # ASHA: keep the top 1/rf at each rung
    screen: int = 0  # ASHA: the first N cells only get the rung-1 score (none is promoted until N are
    # scored), so promotions compare against a screened pool rather than the few cells seen so far
    time_budget_s: float | None = None  # wall-clock budget of the whole run, teacher stage included
    teacher_share: float = 0.5  # with time_budget_s: a teacher meta-trained inside the run may take this
    # share of it; its outer steps (and their cosine schedule) are cut to fit, and a cut teacher stays in
    # the experiment instead of being filed in the store
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # 0, 1/n (n trials share a GPU) or whole GPUs
    teacher_gpus: float = 0.0
    state_save: Literal["step", "timer"] = "step"  # save Tune's experiment state every controller step, or
    # on Tune's own timer (TUNE_GLOBAL_CHECKPOINT_S); see docs/reliability.md
    trial_logs: bool = True  # Tune's per-trial result.json, progress.csv and TensorBoard files (false for
    # searches of many thousand trials: the driver reads them all back at the end)
    flush_rows: int = 50  # leaderboard part file every N rows...
    flush_seconds: float = 30.0  # ...or every S seconds
    top_k: int = 10
    objectives: str = "val_acc:max"  # several make a Pareto search, e.g. val_acc:max,latency_ms:min (search.pareto)
    constraints: str = ""  # e.g. params<=300000,latency_ms<=1.5: a cell that breaks one is never scored or trained
    latency: str = "device=cpu,batch=1,threads=1"  # where and how latency_ms is measured (search.latency)

    def __post_init__(self) -> None:
        _check(bool(self.searcher), "searcher", "must name a searcher")
        self._check_budget()
        try:
            scorer = Scorer.from_config(self)
        except ValueError as e:
            raise ValueError(f"score: {e}") from None
        _check(
            self.seed_proxy is None or self.seed_proxy in DATA_FREE,
            "seed_proxy",
            f"must be a data-free proxy ({', '.join(DATA_FREE)})",
        )
        _check(self.seed_proxy is None or self.searcher == "evolution", "seed_proxy", "needs searcher: evolution")
        _check(self.seed_proxy is None or self.seed_sample >= self.population, "seed_sample", "must be >= population")
        ev = self.evaluation
        fixed = ev.fixed_real_rungs
        _check(fixed is None or self.real_rungs == fixed, "real_rungs", f"must be {fixed} with evaluator: {ev.name}")
        _check(
            scorer.data_free or not ev.data_free_scores_only,
            "score",
            f"with evaluator: {ev.name} must be data-free ({', '.join(DATA_FREE)}) or none",
        )
        _check(self.num_samples >= 1, "num_samples", "must be >= 1")
        _check(self.max_concurrent >= 0, "max_concurrent", "must be >= 0")
        _check(self.population >= 2, "population", "must be >= 2")
        _check(1 <= self.tournament <= self.population, "tournament", "must be in [1, population]")
        _check(self.score_steps is None or self.score_steps >= 1, "score_steps", "must be >= 1")
        _check(self.score_seeds >= 1, "score_seeds", "must be >= 1")
        _check(self.score_val is None or self.score_val >= 1, "score_val", "must be >= 1")
        _check(self.score_channels is None or self.score_channels >= 1, "score_channels", "must be >= 1")
        _check(self.real_rungs >= 0, "real_rungs", "must be >= 0")
        _check(self.real_rungs >= 1 or not scorer.none, "real_rungs", "must be >= 1 when score is none")
        _check(self.real_steps >= 1, "real_steps", "must be >= 1")
        _check(self.reduction_factor >= 2, "reduction_factor", "must be >= 2")
        _check(self.screen >= 0, "screen", "must be >= 0")
        _check(self.time_budget_s is None or self.time_budget_s > 0, "time_budget_s", "must be > 0")
        _check(0 < self.teacher_share <= 1, "teacher_share", "must be in (0, 1]")
        _check(self.cpus_per_trial > 0, "cpus_per_trial", "must be > 0")
        _check(
            is_unit_fraction(self.gpus_per_trial),
            "gpus_per_trial",
            f"must be 0, 1/n (1, 0.5, 0.25, ...) or a whole number, got {self.gpus_per_trial}: a share "
            "that does not divide a GPU can leave trials unschedulable across nodes (ray#52133)",
        )
        _check(self.teacher_gpus >= 0, "teacher_gpus", "must be >= 0")
        _check(self.flush_rows >= 1, "flush_rows", "must be >= 1")
        _check(self.flush_seconds > 0, "flush_seconds", "must be > 0")
        _check(self.top_k >= 1, "top_k", "must be >= 1")

    def _check_budget(self) -> None:
        for key, parse_ in (("objectives", parse_objectives), ("constraints", parse_constraints)):
            try:
                parse_(getattr(self, key)) if getattr(self, key) or key == "objectives" else ()
            except ValueError as e:
                raise ValueError(f"{key}: {e}") from None
        names = [o.name for o in self.objective_list]
        _check(
            names[0] == "val_acc" and self.objective_list[0].mode == "max",
            "objectives",
            "must start with val_acc:max (the accuracy every search maximises), then costs to minimise",
        )
        _check(
            all(n in COSTS for n in names[1:]),
            "objectives",
            f"after val_acc only costs may follow ({', '.join(COSTS)})",
        )
        try:
            parse_latency(self.latency)
        except ValueError as e:
            raise ValueError(f"latency: {e}") from None

    @property
    def objective_list(self) -> tuple[Objective, ...]:
        """``objectives`` parsed: val_acc first, then costs; one objective is a single-objective search."""
        return parse_objectives(self.objectives)

    @property
    def constraint_list(self) -> tuple[Constraint, ...]:
        return parse_constraints(self.constraints) if self.constraints else ()

    @property
    def latency_spec(self) -> LatencySpec:
        return parse_latency(self.latency)

    @property
    def costs_needed(self) -> tuple[str, ...]:
        """The costs the objectives and constraints name (measured or counted before a cell is scored)."""
        named = [o.name for o in self.objective_list[1:]] + [c.name for c in self.constraint_list]
        return tuple(c for c in COSTS if c in named)

    @property
    def scorer(self) -> Scorer:
        """``score`` and its settings, parsed (validated when the config was made)."""
        return Scorer.from_config(self)

    @property
    def evaluation(self) -> Evaluator:
        """``evaluator``, as the object that says what its real rungs are."""
        return evaluator(self.evaluator)

    @property
    def uses_gtn(self) -> bool:
        """Whether the rung-1 score needs a teacher (``gtn``, or a combination with a gtn part)."""
        return self.scorer.uses_gtn

    @property
    def rungs(self) -> int:
        """Reports per trial: the rung-1 score (unless ``score: none``) and the real rungs."""
        return self.real_rungs + (not self.scorer.none)


@dataclass(frozen=True)
class RetrainConfig:
    """The optional last stage of ``gtnnas search`` (``top`` 0: none). ``epochs`` and ``seeds`` are also
    ``gtnnas retrain``'s defaults; its ``--top`` defaults to 3, since running it means retraining some."""

    top: int = 0  # retrain the best `top` distinct cells after the search (0: no final stage)
    epochs: float = 1.0  # full schedule over the training split
    seeds: int = 2

    def __post_init__(self) -> None:
        _check(self.top >= 0, "top", "must be >= 0")
        _check(self.epochs > 0, "epochs", "must be > 0")
        _check(self.seeds >= 1, "seeds", "must be >= 1")


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
        _check(bool(self.name) and "/" not in self.name, "name", "must be a non-empty name without '/'")

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
