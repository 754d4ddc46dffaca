"""STILT: the spatial-temporal interaction learning two-stream network (alternating co-attention between an RGB
and an optical-flow stream, two softmax heads, score-level fusion).

Source: Liu et al., "Spatial-temporal interaction learning based two-stream network for action recognition",
Information Sciences 2022 (``shared/papers/001_stilt.txt``); readings from ``shared/specs/two_stream.md``.
Reported (paper, quoted, not reproduced here): :data:`PAPER_TABLE4`, :data:`PAPER_TABLE5`,
:data:`PAPER_TABLE6`; no parameter counts or FLOPs are printed anywhere.

Architecture at ``STILTConfig.paper()`` (section 3, Tables 2-3):

=====================  ===========================================================================
spatial stream         RGB segment ``[3, 224, 224]`` -> ResNet-50 -> average pool -> 2048 (paper)
temporal stream        flow stack ``[2L = 20, 224, 224]`` -> ResNet-50 -> average pool -> 2048 (paper)
STIL: co-attention     per-stream ``Linear(2048, 512)`` embedding (reading), steps 1-3 (Eq. (1)-(3))
STIL: heads            per stream FC ``512 -> 1024`` + ReLU (reading), classifier ``1024 -> C`` (Table 3)
loss                   CE(spatial head) + CE(temporal head) (paper: "two softmax (loss) layers")
fusion                 late average (``"logits"``) or AWF / early SVM at evaluation (:mod:`.fusion`)
=====================  ===========================================================================

Every row of the paper's ablations is one config (or one fusion) away:

- Table 4: "Spatial" = ``streams="rgb", stil=False``; "Temporal" = ``streams="flow", stil=False``;
  "Two-stream" (late average) = ``streams="both", stil=False``; "+ STIL" = ``stil=True`` (its
  ``"logits"`` output *is* the late average of the two heads); "+ STIL + AWF" = the STIL model's per-head
  scores fused with :func:`.fusion.fit_awf` / :func:`.fusion.awf_fuse` (:func:`table4_configs`). AWF is kept
  out of ``forward`` (reading): it fuses each stream's scores *after* they are averaged over the test views,
  which ``evaluate(model, data, return_scores=True).scores`` provides (:func:`.fusion.stack_stream_scores`).
- Table 5: the STIL model with fusion ``"late_avg"`` (``"logits"``), ``"early_svm"``
  (:meth:`STILT.features` + :func:`.fusion.early_fusion_svm`) or ``"awf"``.
- Table 6: ``backbone`` in {``"vgg19"``, ``"resnet34"``, ``"resnet50"``} (:func:`table6_configs`).

Readings (each a config field; where the paper prints another variant it is one value away):

- **Segments** (reading, TSN convention; never stated): ``num_segments = 3`` segments in training, each one
  RGB frame and one aligned ``L``-field flow stack; ``test_segments = 25`` (x 10 crops, the data side). The
  model takes any number ``N`` of segments: the co-attention attends over them; without STIL each stream
  classifies every segment and averages the class scores over segments (TSN average consensus).
- **2048 -> 512** (reading): Eq. (3) keeps the input dimension but Table 3 prints "2048 -> 512". Following
  the alternating co-attention the equations copy (Lu et al. 2016), each stream's features pass through a
  ``Linear(2048, embed_dim = 512)`` shared over segments, and the attention's hidden size is
  ``hidden_dim = 512``. Each step has its own parameters: step 1 ``W_k, w_hk``; steps 2 and 3 ``W_k, W_g,
  w_hk`` (all with biases: 2,098,176 + 263,169 + 1,051,650 parameters at the paper sizes).
- **Step 1 vs Algorithm 1** (reading): the numbered steps attend over ``S`` without guidance
  (``coattn_init="attend"``, default); Algorithm 1 starts from uniform weights ``1/k``, i.e. the mean of
  ``S`` (``coattn_init="mean"``, no step-1 parameters). One 3-step pass per forward (``rounds = 1``);
  ``rounds > 1`` repeats steps 2-3 with their parameters shared (Algorithm 1's "Repeat", teaching).
- **Heads** (reading): "two fully connected layers" = one FC per stream, ``512 -> fc_dim = 1024`` (Table 3)
  followed by ReLU (two linear layers with nothing between would collapse into one; ``fc_activation=
  "none"`` is the literal reading), dropout, then the classifier ``1024 -> C``.
- **Dropout** (reading; the paper states none): 0.5 before every classifier, the two-stream practice the
  paper follows for its recipe ([30]).
- **Without STIL** (reading): a stream is its backbone + dropout + ``Linear(feature_dim, C)`` per segment
  with the TSN average consensus; "Two-stream" is the late average of the two streams.
- **VGG-19 feature** (reading, :class:`.backbones2d.VGG2d`): fc7, 4096-d (``vgg_feature="pool5"``: 512-d).
- **Backbone** (reading, spec): torchvision ResNet layout (3x3 max-pool; Table 2's 7x7 is a typo); the flow
  stream's conv1 takes ``2L`` channels ``x1, y1, ..., xL, yL``; its initialisation from RGB weights (TSN
  cross-modality init) is the weight loader's (:func:`.backbones2d.adapt_first_conv`).
- **Training schedule** (reading, spec): (1) each stream alone (the Spatial / Temporal / Two-stream rows),
  (2) STIL end to end from the stage-1 backbones (:meth:`STILT.copy_backbones_from`), (3) AWF fitted on
  training-set (or held-out) scores computed with the test-view protocol.

Presets: ``"paper"`` = the sizes above; ``"teaching"`` = ``width = 0.25`` backbones (ResNet-50 feature 512),
``L = 5`` flow fields, 56 x 56 crops, ``embed_dim = hidden_dim = 128``, ``fc_dim = 256``, 5 test segments
(SynthActions frames + flow train in seconds per batch on a CPU).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import Preset
from .backbones2d import Backbone2d, build_backbone2d, fold_segments, unfold_segments
from .registry import InputSpec, PresetConfig, register_model

Streams = Literal["both", "rgb", "flow"]
Backbone = Literal["resnet50", "resnet34", "vgg19"]
CoattnInit = Literal["attend", "mean"]
FcActivation = Literal["relu", "none"]
VggFeature = Literal["fc7", "pool5"]

_STREAMS = ("both", "rgb", "flow")
_BACKBONES = ("resnet50", "resnet34", "vgg19")
_INITS = ("attend", "mean")
_ACTIVATIONS = ("relu", "none")
_VGG_FEATURES = ("fc7", "pool5")

#: input key of each stream head (heads are named as in the paper: spatial = RGB, temporal = flow)
STREAM_INPUTS: dict[str, str] = {"spatial": "rgb", "temporal": "flow"}

#: Quoted from the paper (top-1 %, UCF101 / HMDB51 / Kinetics; means over the three splits). Not reproduced.
PAPER_TABLE4: dict[str, tuple[float, float, float]] = {
    "Spatial": (81.2, 51.3, 53.8),
    "Temporal": (83.5, 52.6, 56.1),
    "Two-stream": (91.5, 62.5, 66.3),
    "Two-stream + STIL": (94.1, 68.9, 68.8),
    "Two-stream + STIL + AWF": (95.6, 72.1, 72.4),
}
#: Table 5 (quoted; its late-average Kinetics 68.0 disagrees with Table 4's 68.8 for the same setting).
PAPER_TABLE5: dict[str, tuple[float, float, float]] = {
    "late_avg": (94.1, 68.9, 68.0),
    "early_svm": (94.2, 68.4, 68.1),
    "awf": (95.6, 72.1, 72.4),
}
#: Table 6, the STILT rows (quoted): backbone -> accuracies with STIL + AWF.
PAPER_TABLE6: dict[str, tuple[float, float, float]] = {
    "vgg19": (89.9, 66.3, 64.8),
    "resnet34": (93.7, 69.3, 68.4),
    "resnet50": (95.6, 72.1, 72.4),
}
TABLE5_FUSIONS = ("late_avg", "early_svm", "awf")  # Table 5 rows, in the paper's order


# ------------------------------------------------------------------------------------------ co-attention
class GuidedAttention(nn.Module):
    """One attention operation ``O = A(K; g)`` of the alternating co-attention (paper, Eq. (1)-(3)):

    ``H = tanh(W_k K + (W_g g) 1^T)`` (Eq. (1)), ``a = softmax(w_hk^T H)`` over the ``N`` segments
    (Eq. (2)), ``O = sum_i a_i k_i`` (Eq. (3)). ``guided=False`` is step 1 (``g = 0``: no ``W_g``).

    ``w_hk`` has a bias (counted in the spec's figures) although the softmax is invariant to it: it gets a
    zero gradient.

    Shape:
        ``K [B, N, E]``, ``g [B, E]`` (or None) -> ``(O [B, E], a [B, N])``.
    """

    def __init__(self, dim: int, hidden_dim: int, *, guided: bool) -> None:
        super().__init__()
        self.w_k = nn.Linear(dim, hidden_dim)  # W_k
        self.w_g = nn.Linear(dim, hidden_dim) if guided else None  # W_g (steps 2 and 3)
        self.w_hk = nn.Linear(hidden_dim, 1)  # w_hk

    def forward(self, k: Tensor, g: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.w_k(k)  # W_k K, [B, N, hidden]
        if self.w_g is not None:
            if g is None:
                raise ValueError("a guided attention step needs its guidance g")
            h = h + self.w_g(g).unsqueeze(1)  # + (W_g g) 1^T, broadcast over the N segments
        elif g is not None:
            raise ValueError("step 1 takes no guidance (g = 0)")
        a = torch.softmax(self.w_hk(torch.tanh(h)).squeeze(-1), dim=1)  # Eq. (1)-(2), [B, N]
        return torch.einsum("bn,bne->be", a, k), a  # Eq. (3): O = sum_i a_i k_i, [B, E]


class CoAttention(nn.Module):
    """Alternating co-attention between spatial features ``S`` and temporal features ``T`` (paper section
    3.2, Eq. (1)-(3), Algorithm 1; readings in the module docstring).

    ``S`` and ``T`` (one vector per segment) are embedded per stream by a ``Linear(in_dim, embed_dim)`` shared
    over segments (reading), then:

    1. ``x^ = A(S; 0)`` (``init="attend"``, the numbered step 1) or ``x^ = mean_i S_i`` (``init="mean"``,
       Algorithm 1's uniform start ``a^s = 1/k``);
    2. ``t^ = A(T; x^)``;
    3. ``s^ = A(S; t^)``;

    steps 2-3 repeated ``rounds`` times with shared parameters (``rounds = 1``: the paper's single pass).
    Returns the attended embeddings ``(s^, t^)``; :meth:`attention_map` gives the segment weights.

    Shape:
        ``S [B, N_s, in_dim]``, ``T [B, N_t, in_dim]`` -> ``(s^ [B, embed_dim], t^ [B, embed_dim])``.
    """

    def __init__(self, in_dim: int, *, embed_dim: int = 512, hidden_dim: int = 512, init: CoattnInit = "attend",
                 rounds: int = 1) -> None:
        super().__init__()
        if init not in _INITS:
            raise ValueError(f"CoAttention init must be one of {_INITS}, got {init!r}")
        if rounds < 1:
            raise ValueError(f"CoAttention rounds must be >= 1, got {rounds}")
        self.init, self.rounds = init, rounds
        self.embed_s = nn.Linear(in_dim, embed_dim)  # reading: 2048 -> 512 (Table 3), shared over segments
        self.embed_t = nn.Linear(in_dim, embed_dim)
        self.step1 = GuidedAttention(embed_dim, hidden_dim, guided=False) if init == "attend" else None
        self.step2 = GuidedAttention(embed_dim, hidden_dim, guided=True)  # K = T, g = x^
        self.step3 = GuidedAttention(embed_dim, hidden_dim, guided=True)  # K = S, g = t^

    def _run(self, s: Tensor, t: Tensor) -> dict[str, Tensor]:
        if s.dim() != 3 or t.dim() != 3 or s.shape[0] != t.shape[0]:
            raise ValueError(f"CoAttention expects S [B, N, D] and T [B, N, D], got {list(s.shape)} and "
                             f"{list(t.shape)}")
        es, et = self.embed_s(s), self.embed_t(t)  # [B, N, E] each
        if self.step1 is not None:
            x_hat, a_first = self.step1(es)  # step 1: K = S, g = 0
        else:
            a_first = torch.full(es.shape[:2], 1.0 / es.shape[1], dtype=es.dtype, device=es.device)
            x_hat = es.mean(dim=1)  # Algorithm 1, line 1: a^s = 1/k, L_s = sum_i a^s_i s_i
        s_hat = x_hat
        for _ in range(self.rounds):
            t_hat, a_t = self.step2(et, s_hat)  # step 2: K = T, g = attended spatial
            s_hat, a_s = self.step3(es, t_hat)  # step 3: K = S, g = attended temporal
        return {"s_hat": s_hat, "t_hat": t_hat, "spatial": a_s, "temporal": a_t, "summary": a_first}

    def forward(self, s: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        out = self._run(s, t)
        return out["s_hat"], out["t_hat"]

    def attention_map(self, s: Tensor, t: Tensor) -> dict[str, Tensor]:
        """The co-attention weights over segments (each sums to 1 over its segments):

        - ``"spatial"``: ``a^s [B, N_s]`` of the last step 3 (the weights of the returned ``s^``);
        - ``"temporal"``: ``a^t [B, N_t]`` of the last step 2 (the weights of the returned ``t^``);
        - ``"summary"``: step 1's ``a^s [B, N_s]`` (uniform ``1/N`` with ``init="mean"``).
        """
        out = self._run(s, t)
        return {k: out[k] for k in ("spatial", "temporal", "summary")}


class StreamHead(nn.Module):
    """A STIL head (Table 3): FC ``embed_dim -> fc_dim`` (+ ReLU, reading), dropout, classifier ``fc_dim -> C``.

    Shape:
        ``[B, embed_dim] -> [B, num_classes]``.
    """

    def __init__(self, embed_dim: int, fc_dim: int, num_classes: int, *, dropout: float,
                 activation: FcActivation = "relu") -> None:
        super().__init__()
        self.fc = nn.Linear(embed_dim, fc_dim)  # Table 3: fully connected 512 x 1024
        self.act: nn.Module = nn.ReLU(inplace=True) if activation == "relu" else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(fc_dim, num_classes)  # Table 3: softmax 1024 x classes

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.act(self.fc(x))))


class STILModule(nn.Module):
    """The spatial-temporal interaction learning module (paper section 3.2): :class:`CoAttention` and one
    :class:`StreamHead` per stream ("an alternating co-attention block, two fully connected layers and two
    softmax loss layers").

    Shape:
        ``S [B, N, in_dim]``, ``T [B, N, in_dim]`` -> ``(spatial logits [B, C], temporal logits [B, C])``.
    """

    def __init__(self, in_dim: int, num_classes: int, *, embed_dim: int = 512, hidden_dim: int = 512,
                 fc_dim: int = 1024, init: CoattnInit = "attend", rounds: int = 1, dropout: float = 0.5,
                 activation: FcActivation = "relu") -> None:
        super().__init__()
        self.coattention = CoAttention(in_dim, embed_dim=embed_dim, hidden_dim=hidden_dim, init=init, rounds=rounds)
        self.heads = nn.ModuleDict({
            name: StreamHead(embed_dim, fc_dim, num_classes, dropout=dropout, activation=activation)
            for name in ("spatial", "temporal")})

    def forward(self, s: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        s_hat, t_hat = self.coattention(s, t)  # [B, E] each
        return self.heads["spatial"](s_hat), self.heads["temporal"](t_hat)


def late_average_logits(a: Tensor, b: Tensor) -> Tensor:
    """``log((softmax(a) + softmax(b)) / 2)``: the late average (:func:`.fusion.late_average`) of two heads'
    softmax scores, in log space (stable). Its softmax is the late-average score, so the training loop's
    metrics on ``"logits"`` are the late-average row.

    Shape:
        ``[B, C], [B, C] -> [B, C]``.
    """
    return torch.logsumexp(torch.stack([F.log_softmax(a, -1), F.log_softmax(b, -1)]), dim=0) - math.log(2.0)


# ---------------------------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class STILTConfig(PresetConfig):
    """STILT hyper-parameters (defaults = ``paper()``: sections 3-4 with the readings of the module
    docstring; ``teaching()``: the small sizes of ``TEACHING``, the same readings)."""

    TEACHING: ClassVar[Mapping[str, Any]] = {
        "width": 0.25, "new_length": 5, "crop_size": 56, "test_segments": 5,
        "embed_dim": 128, "hidden_dim": 128, "fc_dim": 256,
    }

    streams: Streams = "both"  # Table 4: "rgb" (Spatial row), "flow" (Temporal row) or "both"
    stil: bool = True  # the STIL module (co-attention + heads); False: TSN-style stream classifiers (needs no pairing)
    backbone: Backbone = "resnet50"  # Table 6: "resnet50" (paper's main), "resnet34", "vgg19"
    vgg_feature: VggFeature = "fc7"  # backbone="vgg19" per-frame feature: "fc7" 4096-d (reading) | "pool5" 512-d
    width: float = 1.0  # backbone channel scale (paper: 1.0; teaching: 0.25)
    new_length: int = 10  # L flow fields per stack -> 2L flow channels (paper: 10, "2 x 10"; teaching: 5)
    num_segments: int = 3  # training segments N (reading, TSN convention: 3; the paper never states it)
    test_segments: int = 25  # test segments (reading, TSN protocol: 25, x 10 crops; teaching: 5)
    crop_size: int = 224  # input crop H = W (paper: 224; teaching: 56)
    embed_dim: int = 512  # co-attention embedding, Table 3 "2048 -> 512" (reading: Linear per stream; teaching 128)
    hidden_dim: int = 512  # attention hidden size of W_k, W_g (reading: 512; teaching: 128)
    fc_dim: int = 1024  # STIL head FC width, Table 3 "512 x 1024" (teaching: 256)
    fc_activation: FcActivation = "relu"  # after the head FC: "relu" (reading) | "none" (literal Table 3)
    coattn_init: CoattnInit = "attend"  # co-attention start: "attend" (steps 1-3, default) | "mean" (Algorithm 1)
    rounds: int = 1  # steps 2-3 repetitions, shared parameters (paper: 1 pass; > 1 teaching)
    dropout: float = 0.5  # dropout before every classifier (reading: the paper states none)

    def __post_init__(self) -> None:
        for name, allowed in (("streams", _STREAMS), ("backbone", _BACKBONES), ("coattn_init", _INITS),
                              ("fc_activation", _ACTIVATIONS), ("vgg_feature", _VGG_FEATURES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"STILTConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not isinstance(self.stil, bool):
            raise ValueError(f"STILTConfig.stil must be a bool, got {self.stil!r}")
        if self.stil and self.streams != "both":
            raise ValueError(f"STILTConfig.stil=True needs streams='both' (got {self.streams!r}): the co-attention "
                             "connects the two streams; use stil=False for the Spatial / Temporal rows")
        if isinstance(self.width, bool) or not isinstance(self.width, (int, float)) or not self.width > 0:
            raise ValueError(f"STILTConfig.width must be a positive number, got {self.width!r}")
        for name in ("new_length", "num_segments", "test_segments", "crop_size", "embed_dim", "hidden_dim",
                     "fc_dim", "rounds"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"STILTConfig.{name} must be a positive int, got {v!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"STILTConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def heads(self) -> tuple[str, ...]:
        """The stream heads in use: ``("spatial", "temporal")``, ``("spatial",)`` or ``("temporal",)``."""
        return {"both": ("spatial", "temporal"), "rgb": ("spatial",), "flow": ("temporal",)}[self.streams]

    @property
    def flow_channels(self) -> int:
        """``2L``: the flow stack's channels ``x1, y1, ..., xL, yL``."""
        return 2 * self.new_length


class STILT(nn.Module):
    """The STILT family (module docstring): one 2D backbone per stream over the segments, then the STIL
    module (``stil=True``) or TSN-style per-segment classifiers with average consensus (``stil=False``).

    ``forward(inputs)`` takes ``{"rgb": [B, 3, N, H, W], "flow": [B, 2L, N, H, W]}`` (the keys of
    ``input_keys``) and returns ``{"logits": [B, C], "stream_logits": {head: [B, C]}}``: each head is trained
    by its own cross-entropy (the training loop's ``stream_logits`` contract, DESIGN.md "Models"); with two
    streams ``"logits"`` is their late average (:func:`late_average_logits`), with one stream it is that
    head's logits.

    Shape:
        ``{"rgb": [B, 3, N, H, W], "flow": [B, 2L, N, H, W]} -> {"logits": [B, C], "stream_logits":
        {"spatial": [B, C], "temporal": [B, C]}}``; internally ``[B*N, C_in, H, W]`` per backbone.
    """

    def __init__(self, cfg: STILTConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg, self.num_classes = cfg, num_classes
        in_ch = {"spatial": 3, "temporal": cfg.flow_channels}
        extra: dict[str, Any] = {"feature": cfg.vgg_feature} if cfg.backbone == "vgg19" else {}
        self.backbones = nn.ModuleDict({
            h: build_backbone2d(cfg.backbone, in_channels=in_ch[h], width=cfg.width, **extra) for h in cfg.heads})
        dims = {int(self.backbones[h].feature_dim) for h in cfg.heads}
        self.feature_dim = dims.pop()
        self.stil: STILModule | None = None
        self.classifiers: nn.ModuleDict | None = None
        if cfg.stil:
            self.stil = STILModule(self.feature_dim, num_classes, embed_dim=cfg.embed_dim, hidden_dim=cfg.hidden_dim,
                                   fc_dim=cfg.fc_dim, init=cfg.coattn_init, rounds=cfg.rounds, dropout=cfg.dropout,
                                   activation=cfg.fc_activation)
        else:
            self.dropout = nn.Dropout(cfg.dropout)
            self.classifiers = nn.ModuleDict({h: nn.Linear(self.feature_dim, num_classes) for h in cfg.heads})

    @property
    def input_keys(self) -> tuple[str, ...]:
        """``("rgb", "flow")``, ``("rgb",)`` or ``("flow",)`` (per ``streams``)."""
        return tuple(STREAM_INPUTS[h] for h in self.cfg.heads)

    @property
    def input_spec(self) -> dict[str, InputSpec]:
        """One :class:`InputSpec` per input key: channels 3 (RGB) / ``2L`` (flow), ``T`` = the segments
        (built for ``num_segments``), ``crop_size`` square; ``min_size`` 32 is the backbones' total stride."""
        ch = {"rgb": 3, "flow": self.cfg.flow_channels}
        return {k: InputSpec(channels=ch[k], num_frames=self.cfg.num_segments, size=self.cfg.crop_size, min_size=32)
                for k in self.input_keys}

    def _check_inputs(self, inputs: Mapping[str, Tensor]) -> None:
        if not isinstance(inputs, Mapping):
            raise TypeError(f"STILT takes a dict {{key: [B, C, N, H, W]}} with keys {self.input_keys}, "
                            f"got {type(inputs).__name__}")
        missing = [k for k in self.input_keys if k not in inputs]
        if missing:
            raise KeyError(f"STILT(streams={self.cfg.streams!r}) needs inputs {self.input_keys}; missing {missing}")
        spec = self.input_spec
        for k in self.input_keys:
            spec[k].check(tuple(inputs[k].shape), who=f"STILT input {k!r}")
        if len({inputs[k].shape[0] for k in self.input_keys}) != 1:
            shapes = [list(inputs[k].shape) for k in self.input_keys]
            raise ValueError(f"STILT inputs need one batch size, got {shapes}")

    def segment_features(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Per-segment backbone features ``{head: [B, N, feature_dim]}`` (the paper's ``S`` and ``T``)."""
        self._check_inputs(inputs)
        out = {}
        for h in self.cfg.heads:
            x, b, n = fold_segments(inputs[STREAM_INPUTS[h]])  # [B*N, C_in, H, W]
            out[h] = unfold_segments(self.backbones[h](x), b, n)  # [B, N, feature_dim]
        return out

    def forward(self, inputs: Mapping[str, Tensor]) -> dict[str, Any]:
        feats = self.segment_features(inputs)
        if self.stil is not None:
            spatial, temporal = self.stil(feats["spatial"], feats["temporal"])
            heads = {"spatial": spatial, "temporal": temporal}
        else:
            assert self.classifiers is not None
            # TSN average consensus: classify every segment, average the class scores over segments
            heads = {h: self.classifiers[h](self.dropout(f)).mean(dim=1) for h, f in feats.items()}  # [B, C]
        if len(heads) == 2:
            logits = late_average_logits(heads["spatial"], heads["temporal"])  # Table 4 "late average"
        else:
            logits = next(iter(heads.values()))
        return {"logits": logits, "stream_logits": heads}

    @torch.no_grad()
    def features(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Features for early fusion (Table 5 "Early": an SVM on ``[s^; t^]``), ``{head: [B, D]}``: with STIL
        the attended embeddings ``s^, t^`` (``D = embed_dim``), without it the segment mean of the pooled
        backbone features (``D = feature_dim``). Evaluated without gradients (call ``eval()`` first for
        deterministic features)."""
        feats = self.segment_features(inputs)
        if self.stil is not None:
            s_hat, t_hat = self.stil.coattention(feats["spatial"], feats["temporal"])
            return {"spatial": s_hat, "temporal": t_hat}
        return {h: f.mean(dim=1) for h, f in feats.items()}

    @torch.no_grad()
    def attention_map(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The co-attention weights over segments of ``inputs`` (:meth:`CoAttention.attention_map`:
        ``"spatial"`` ``[B, N]``, ``"temporal"`` ``[B, N]``, ``"summary"`` ``[B, N]``). Needs ``stil=True``."""
        if self.stil is None:
            raise RuntimeError("attention_map needs the STIL module (stil=True)")
        feats = self.segment_features(inputs)
        return self.stil.coattention.attention_map(feats["spatial"], feats["temporal"])

    def copy_backbones_from(self, source: "STILT") -> list[str]:
        """Stage (2) of the schedule: load the backbone weights of a stage-1 model (``stil=False``, one or
        both streams, the same backbone / width / ``L``) into this model's matching streams. Returns the
        heads copied."""
        copied = []
        for h in self.cfg.heads:
            if h in source.backbones:
                self.backbones[h].load_state_dict(source.backbones[h].state_dict())
                copied.append(h)
        if not copied:
            raise ValueError(f"source has none of this model's streams {self.cfg.heads}")
        return copied


TABLE4_ROWS = tuple(PAPER_TABLE4)  # Table 4, in the paper's order


def table4_configs(base: STILTConfig | None = None) -> dict[str, tuple[STILTConfig, str]]:
    """Table 4's rows: ``row -> (config, fusion)`` with fusion ``"late_avg"`` (the ``"logits"`` output; for a
    single stream its own head) or ``"awf"`` (fit on the per-head scores). Other fields from ``base``
    (default: the paper preset)."""
    base = base or STILTConfig()
    return {
        "Spatial": (dataclasses.replace(base, streams="rgb", stil=False), "late_avg"),
        "Temporal": (dataclasses.replace(base, streams="flow", stil=False), "late_avg"),
        "Two-stream": (dataclasses.replace(base, streams="both", stil=False), "late_avg"),
        "Two-stream + STIL": (dataclasses.replace(base, streams="both", stil=True), "late_avg"),
        "Two-stream + STIL + AWF": (dataclasses.replace(base, streams="both", stil=True), "awf"),
    }


def table6_configs(base: STILTConfig | None = None) -> dict[str, STILTConfig]:
    """Table 6's STILT rows (STIL + AWF with each backbone): ``backbone -> config``."""
    base = base or STILTConfig()
    return {b: dataclasses.replace(base, backbone=b, streams="both", stil=True) for b in PAPER_TABLE6}


@register_model("stilt")
def stilt(*, num_classes: int, preset: Preset = "paper", **overrides: Any) -> STILT:
    """STILT. ``preset="paper"``: two ResNet-50 streams, L = 10, 224^2, STIL (module docstring);
    ``"teaching"``: the small sizes. ``overrides``: any :class:`STILTConfig` field (e.g. ``stil=False`` for
    Table 4's "Two-stream" row, ``backbone="vgg19"`` for Table 6)."""
    return STILT(STILTConfig.from_preset(preset, **overrides), num_classes)
