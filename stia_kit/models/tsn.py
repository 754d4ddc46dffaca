"""TSN baseline: a BN-Inception per segment, dropout, FC and average consensus (Wang et al., "Temporal Segment
Networks", ECCV 2016; the public tsn-pytorch code), with and without SE (T-STAM section 4.3.4, "TSN+SE").

T-STAM (paper 004, :mod:`.tstam`) compares itself with this network: "we compare TSN integrated with SE-Net
against standard TSN on both datasets, using identical experimental parameters" (section 4.3.4; surviving
result: TSN+SE is +0.2 on UCF101, +1.3 on HMDB51). Its absolute numbers are lost with the paper's tables.

One stream per model, trained separately (TSN convention, and T-STAM's: "Streams trained separately"):

- ``modality="rgb"``: input ``{"rgb": [B, 3, N, H, W]}``, one frame per segment;
- ``modality="flow"``: input ``{"flow": [B, 2L, N, H, W]}``, a stack of ``L = new_length`` flow fields per
  segment (channels ``x1, y1, ..., xL, yL``; TSN convention ``L = 5``).

Everything here is "TSN convention" (tsn-pytorch defaults, as the spec lists them): ``num_segments = 3`` in
training; dropout 0.8 (RGB) / 0.7 (flow) before the new FC; *partial BN* (:func:`freeze_bn_except_first`:
in ``train()`` every BatchNorm of the backbone but the first keeps its ImageNet statistics and affine
parameters); the FC scores every segment and the consensus averages the scores over segments (before the
softmax). The 2D backbone, its SE blocks and weight loaders are :mod:`.backbones2d`.

The shared stream fields (modality, ``new_length``, SE, dropout, partial BN, width, crop size) are
:class:`StreamFields`, which :class:`~.tstam.TSTAMConfig` derives from too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping

from torch import Tensor, nn

from ..registry import Preset
from .backbones2d import build_backbone2d, fold_segments
from .registry import InputSpec, PresetConfig, register_model

Modality = Literal["rgb", "flow"]
MODALITIES: tuple[str, ...] = ("rgb", "flow")
#: Dropout before the FC per modality (TSN convention: tsn-pytorch's ``--dropout`` for RGB / flow).
TSN_DROPOUT: Mapping[str, float] = {"rgb": 0.8, "flow": 0.7}
#: Flow fields stacked per segment (TSN convention; neither T-STAM nor the TSN baseline row gives L).
TSN_NEW_LENGTH = 5
#: Smallest side BN-Inception takes (1 x 1 last maps; see :func:`bn_inception_grid`).
MIN_CROP = 31


def bn_inception_grid(size: int) -> int | None:
    """Side of BN-Inception's last maps for an input side ``size``, or None when BN-Inception cannot take it.

    Its reduction modules (3c, 4e) concatenate a strided 3x3 conv (padding 1: ``floor((h - 1) / 2) + 1``)
    with a ceil-mode 3x3/2 max-pool (``ceil((h - 3) / 2) + 1``); the two agree only for some ``h``, so the
    valid sides are ``32k - 1 ... 32k + 6`` (e.g. 32, 64, 96, 224; not 56). Same arithmetic as the Caffe
    reference (convolutions floor, pools ceil).
    """
    pool = lambda h: -(-(h - 3) // 2) + 1  # noqa: E731  (ceil-mode 3x3 stride-2 max-pool, no padding)
    h = (size - 1) // 2 + 1  # conv1 7x7/2, padding 3
    h = pool(pool(h))  # pool1; conv2 keeps the size; pool2
    for _ in ("3c", "4e"):
        conv = (h - 1) // 2 + 1  # strided 3x3, padding 1
        if h < 2 or conv != pool(h):
            return None
        h = conv
    return h


@dataclass(frozen=True)
class StreamFields:
    """Config fields of one two-stream stream on a 2D BN-Inception backbone (TSN and T-STAM).

    Validated by :meth:`_check_stream`, which the subclasses call from ``__post_init__``.
    """

    modality: Modality = "rgb"  # which stream: "rgb" (3 channels) | "flow" (2 * new_length channels)
    new_length: int = TSN_NEW_LENGTH  # flow fields stacked per segment (TSN convention L = 5); rgb: one frame, unused
    se: bool | tuple[str, ...] = False  # SE after inception modules: False | True (all 10) | module names
    se_reduction: int = 16  # SE bottleneck ratio (paper 004 section 2: "1/16 of the original")
    dropout: float | None = None  # dropout before the FC; None: 0.8 rgb / 0.7 flow (TSN convention)
    partial_bn: bool = True  # TSN convention: in train() freeze every backbone BN but the first (teaching: False)
    width: float = 1.0  # BN-Inception channel multiplier (1.0 = BN-Inception, 1024 features; teaching 0.25)
    crop_size: int = 224  # crop H = W the model is built for (TSN convention 224; teaching 64 = a SynthActions frame)

    def _check_stream(self, who: str) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"{who}.modality must be one of {list(MODALITIES)}, got {self.modality!r}")
        if not isinstance(self.new_length, int) or isinstance(self.new_length, bool) or self.new_length < 1:
            raise ValueError(f"{who}.new_length must be a positive int (flow fields), got {self.new_length!r}")
        if isinstance(self.se, (list, tuple)):
            object.__setattr__(self, "se", tuple(self.se))  # frozen: keep it hashable
            if not self.se or not all(isinstance(s, str) for s in self.se):
                raise ValueError(f"{who}.se must be a bool or a non-empty sequence of inception module names, "
                                 f"got {self.se!r}")
        elif not isinstance(self.se, bool):
            raise ValueError(f"{who}.se must be a bool or a sequence of inception module names, got {self.se!r}")
        if not isinstance(self.se_reduction, int) or self.se_reduction < 1:
            raise ValueError(f"{who}.se_reduction must be a positive int, got {self.se_reduction!r}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{who}.dropout must be None (per-modality TSN default) or in [0, 1), got {self.dropout}")
        if not self.width > 0:
            raise ValueError(f"{who}.width must be > 0, got {self.width}")
        if not isinstance(self.crop_size, int) or bn_inception_grid(self.crop_size) is None:
            raise ValueError(f"{who}.crop_size must be a side BN-Inception takes (32k-1 .. 32k+6, e.g. 64, 96, "
                             f"224), got {self.crop_size!r}")

    @property
    def in_channels(self) -> int:
        """Input channels: 3 for RGB, ``2 * new_length`` for a flow stack (x and y per field)."""
        return 3 if self.modality == "rgb" else 2 * self.new_length

    @property
    def drop_rate(self) -> float:
        """``dropout``, or the TSN per-modality default when it is None."""
        return TSN_DROPOUT[self.modality] if self.dropout is None else self.dropout


def stream_input_spec(cfg: StreamFields, num_segments: int) -> dict[str, InputSpec]:
    """``{modality: InputSpec}``: ``[C, N, H, W]`` clips, ``C`` = :attr:`StreamFields.in_channels`, any
    ``N >= 1`` segments (built for ``num_segments``), ``H, W >= 31`` (and a side :func:`bn_inception_grid`
    accepts, which the forward checks: InputSpec cannot express it)."""
    return {cfg.modality: InputSpec(channels=cfg.in_channels, num_frames=num_segments, size=cfg.crop_size,
                                    min_frames=1, min_size=MIN_CROP)}


def stream_input(inputs: Tensor | Mapping[str, Tensor], modality: str, channels: int, who: str) -> Tensor:
    """The ``[B, C, N, H, W]`` tensor of ``modality`` from a batch dict (or the tensor itself), checked."""
    if isinstance(inputs, Mapping) and modality not in inputs:
        raise KeyError(f"{who} is a {modality!r} stream (input_keys=({modality!r},)); the batch has {sorted(inputs)}")
    x = inputs[modality] if isinstance(inputs, Mapping) else inputs
    if x.dim() != 5 or x.shape[1] != channels:
        raise ValueError(f"{who} ({modality} stream) takes [B, {channels}, N, H, W] segments, got {list(x.shape)}")
    if any(bn_inception_grid(int(s)) is None for s in x.shape[-2:]):
        raise ValueError(f"{who}: BN-Inception takes H, W in 32k-1 .. 32k+6 (e.g. 64, 96, 224; not 56), got shape "
                         f"{list(x.shape)}")
    return x


def freeze_bn_except_first(module: nn.Module) -> list[str]:
    """Partial BN (TSN convention, tsn-pytorch ``TSN.train``): every ``BatchNorm2d`` of ``module`` after the
    first is put in eval mode (running statistics frozen) and its affine parameters stop requiring gradients.
    Call it after ``module.train()``. Returns the names of the frozen BatchNorms."""
    frozen: list[str] = []
    bns = [(n, m) for n, m in module.named_modules() if isinstance(m, nn.BatchNorm2d)]
    for name, bn in bns[1:]:
        bn.eval()
        for p in (bn.weight, bn.bias):
            if p is not None:
                p.requires_grad_(False)
        frozen.append(name)
    return frozen


@dataclass(frozen=True)
class TSNConfig(StreamFields, PresetConfig):
    """TSN hyper-parameters (all TSN convention). Defaults = ``paper()``: BN-Inception at 224^2, 3 segments,
    partial BN; ``teaching()``: width 0.25, 64^2 crops, no partial BN (a backbone trained from scratch has no
    ImageNet statistics to keep), dropout 0.5."""

    TEACHING: ClassVar[Mapping[str, Any]] = {"width": 0.25, "crop_size": 64, "partial_bn": False, "dropout": 0.5}

    num_segments: int = 3  # N segments in training (TSN convention 3; T-STAM's comparison uses its own N)

    def __post_init__(self) -> None:
        self._check_stream("TSNConfig")
        if not isinstance(self.num_segments, int) or self.num_segments < 1:
            raise ValueError(f"TSNConfig.num_segments must be a positive int, got {self.num_segments!r}")


class TSN(nn.Module):
    """TSN on one stream: BN-Inception (optionally SE-BN-Inception) per segment -> global average pool ->
    dropout -> FC -> average consensus over segments (TSN convention: scores averaged before the softmax).

    Shape:
        ``{modality: [B, C, N, H, W]}`` (or the tensor itself) -> ``[B, num_classes]``; per segment
        ``[B*N, C, H, W] -> [B*N, feature_dim] -> [B*N, num_classes]``, averaged over the N segments.
    """

    def __init__(self, cfg: TSNConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.input_keys: tuple[str, ...] = (cfg.modality,)
        self.backbone = build_backbone2d("bn_inception", in_channels=cfg.in_channels, width=cfg.width, se=cfg.se,
                                         se_reduction=cfg.se_reduction)
        self.dropout = nn.Dropout(cfg.drop_rate)
        self.fc = nn.Linear(self.backbone.feature_dim, num_classes)
        self.train()  # applies partial BN from the start (the optimizer then sees the frozen flags)

    @property
    def input_spec(self) -> dict[str, InputSpec]:
        return stream_input_spec(self.cfg, self.cfg.num_segments)

    def train(self, mode: bool = True) -> "TSN":
        super().train(mode)
        if self.cfg.partial_bn:
            freeze_bn_except_first(self.backbone)
        return self

    def forward(self, inputs: Tensor | Mapping[str, Tensor]) -> Tensor:
        x = stream_input(inputs, self.cfg.modality, self.cfg.in_channels, "TSN")
        frames, B, N = fold_segments(x)  # [B*N, C, H, W]
        scores = self.fc(self.dropout(self.backbone(frames)))  # [B*N, num_classes]
        return scores.reshape(B, N, -1).mean(dim=1)  # average consensus: [B, num_classes]


@register_model("tsn_bninception")
def tsn_bninception(*, num_classes: int, preset: Preset = "paper", **overrides: Any) -> TSN:
    """TSN with a BN-Inception backbone (``se=True``: TSN+SE, T-STAM section 4.3.4). ``preset="paper"``: the
    TSN convention sizes; ``"teaching"``: the small ones. ``overrides``: any :class:`TSNConfig` field."""
    return TSN(TSNConfig.from_preset(preset, **overrides), num_classes)


__all__ = ["MIN_CROP", "bn_inception_grid", "MODALITIES", "Modality", "StreamFields", "TSN", "TSNConfig", "TSN_DROPOUT",
           "TSN_NEW_LENGTH", "freeze_bn_except_first", "stream_input", "stream_input_spec", "tsn_bninception"]
