"""Models: a registry plus one file per model family (importing a family registers its builders).

``build_model(name, num_classes)`` builds the published network; ``preset="teaching"`` the small one (see
:mod:`.registry`). ``MODELS.names()`` (= ``list_models()``) lists every registered name.
"""
from .registry import MODELS, InputSpec, PresetConfig, build_model, example_input, list_models, register_model
from . import c3d, r3d  # noqa: F401  (registration side effect)
from . import slowfast, stin  # noqa: F401  (registration: slowfast_r50, stin)
from . import backbones2d  # noqa: F401  (fills BACKBONES2D: resnet34, resnet50, vgg19, bn_inception)
from . import stilt  # noqa: F401  (registration: stilt)
from . import tsn, tstam  # noqa: F401  (registration: tsn_bninception, tstam)
from . import msf_net  # noqa: F401  (registration: msf_r3d, msf_c3d)
from . import st_manet  # noqa: F401  (registration: st_manet)

__all__ = ["MODELS", "InputSpec", "PresetConfig", "build_model", "example_input", "list_models", "register_model"]
