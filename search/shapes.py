"""What a network is built from, as plain values: its settings (width, depth, normalisation) and its inputs
(one image's shape and the classes). Free of torch, so the config, the data layer and Ray processes that
never build a network (benchmark mode) can speak of shapes without importing it (:func:`search.nets.net_from`
builds from them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class NetSettings(Protocol):
    """A network's width, depth and normalisation (:class:`search.config.NetConfig`; a teacher's learners:
    ``GTNConfig.learner_net``)."""

    @property
    def channels(self) -> int: ...
    @property
    def cells(self) -> int: ...
    @property
    def norm(self) -> str: ...


class Inputs(Protocol):
    """What a network is built for: one image's (C, H, W) and the classes (a data set, an :class:`InputSpec`)."""

    @property
    def shape(self) -> tuple[int, int, int]: ...
    @property
    def num_classes(self) -> int: ...


@dataclass(frozen=True)
class NetSpec:
    """:class:`NetSettings` as plain values, where no config holds them."""

    channels: int
    cells: int
    norm: str = "bn"


@dataclass(frozen=True)
class InputSpec:
    """:class:`Inputs` as plain values, where no data set is at hand."""

    shape: tuple[int, int, int]
    num_classes: int
