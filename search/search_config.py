"""The ``search`` section of the experiment config: the distributed search's searcher, scheduler, rung-1
score, fidelities, budget (objectives, constraints, latency), resources and leaderboard (:mod:`cluster`
reads it; :class:`search.config.ExperimentConfig` composes it with the others)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .evaluators import Evaluator, evaluator
from .latency import LatencySpec, parse_latency
from .pareto import COSTS, Constraint, Objective, parse_constraints, parse_objectives
from .scoring import DATA_FREE, Scorer
from .typed import check


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
        check(bool(self.searcher), "searcher", "must name a searcher")
        self._check_budget()
        try:
            scorer = Scorer.from_config(self)
        except ValueError as e:
            raise ValueError(f"score: {e}") from None
        check(
            self.seed_proxy is None or self.seed_proxy in DATA_FREE,
            "seed_proxy",
            f"must be a data-free proxy ({', '.join(DATA_FREE)})",
        )
        check(self.seed_proxy is None or self.searcher == "evolution", "seed_proxy", "needs searcher: evolution")
        check(self.seed_proxy is None or self.seed_sample >= self.population, "seed_sample", "must be >= population")
        ev = self.evaluation
        fixed = ev.fixed_real_rungs
        check(fixed is None or self.real_rungs == fixed, "real_rungs", f"must be {fixed} with evaluator: {ev.name}")
        check(
            scorer.data_free or not ev.data_free_scores_only,
            "score",
            f"with evaluator: {ev.name} must be data-free ({', '.join(DATA_FREE)}) or none",
        )
        check(self.num_samples >= 1, "num_samples", "must be >= 1")
        check(self.max_concurrent >= 0, "max_concurrent", "must be >= 0")
        check(self.population >= 2, "population", "must be >= 2")
        check(1 <= self.tournament <= self.population, "tournament", "must be in [1, population]")
        check(self.score_steps is None or self.score_steps >= 1, "score_steps", "must be >= 1")
        check(self.score_seeds >= 1, "score_seeds", "must be >= 1")
        check(self.score_val is None or self.score_val >= 1, "score_val", "must be >= 1")
        check(self.score_channels is None or self.score_channels >= 1, "score_channels", "must be >= 1")
        check(self.real_rungs >= 0, "real_rungs", "must be >= 0")
        check(self.real_rungs >= 1 or not scorer.none, "real_rungs", "must be >= 1 when score is none")
        check(self.real_steps >= 1, "real_steps", "must be >= 1")
        check(self.reduction_factor >= 2, "reduction_factor", "must be >= 2")
        check(self.screen >= 0, "screen", "must be >= 0")
        check(self.time_budget_s is None or self.time_budget_s > 0, "time_budget_s", "must be > 0")
        check(0 < self.teacher_share <= 1, "teacher_share", "must be in (0, 1]")
        check(self.cpus_per_trial > 0, "cpus_per_trial", "must be > 0")
        check(
            is_unit_fraction(self.gpus_per_trial),
            "gpus_per_trial",
            f"must be 0, 1/n (1, 0.5, 0.25, ...) or a whole number, got {self.gpus_per_trial}: a share "
            "that does not divide a GPU can leave trials unschedulable across nodes (ray#52133)",
        )
        check(self.teacher_gpus >= 0, "teacher_gpus", "must be >= 0")
        check(self.flush_rows >= 1, "flush_rows", "must be >= 1")
        check(self.flush_seconds > 0, "flush_seconds", "must be > 0")
        check(self.top_k >= 1, "top_k", "must be >= 1")

    def _check_budget(self) -> None:
        for key, parse_ in (("objectives", parse_objectives), ("constraints", parse_constraints)):
            try:
                parse_(getattr(self, key)) if getattr(self, key) or key == "objectives" else ()
            except ValueError as e:
                raise ValueError(f"{key}: {e}") from None
        names = [o.name for o in self.objective_list]
        check(
            names[0] == "val_acc" and self.objective_list[0].mode == "max",
            "objectives",
            "must start with val_acc:max (the accuracy every search maximises), then costs to minimise",
        )
        check(
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
