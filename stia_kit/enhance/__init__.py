"""Low-light enhancement: Zero-DCE / Zero-DCE++ curve models, their non-reference losses and training,
classical OpenCV baselines, quality metrics, and enhancement of clips, data pipelines and video folders."""

from .classical import (
    ENHANCERS,
    ClaheEnhancer,
    Enhancer,
    GammaEnhancer,
    HistEqEnhancer,
    IdentityEnhancer,
    build_enhancer,
)
from .losses import (
    ColorConstancyLoss,
    ExposureControlLoss,
    IlluminationSmoothnessLoss,
    SpatialConsistencyLoss,
    ZeroDCELoss,
    ZeroDCELossConfig,
)
from .metrics import flicker, frame_means, mean_brightness, psnr, ssim
from .train import DarkFrameDataset, EnhanceTrainConfig, train_curve_model
from .video import (
    CurveEnhancer,
    CurveSmoother,
    EnhanceReport,
    EnhanceTransform,
    enhance_clip,
    enhance_video_file,
    enhance_videos,
    find_videos,
)
from .zero_dce import (
    PAPER_SCALE_FACTOR,
    ZeroDCE,
    ZeroDCEConfig,
    ZeroDCEPP,
    ZeroDCEPPConfig,
    apply_curves,
    convert_official_state_dict,
    le_curve,
    load_curve_weights,
)

__all__ = [
    "ENHANCERS", "ClaheEnhancer", "ColorConstancyLoss", "CurveEnhancer", "CurveSmoother", "DarkFrameDataset",
    "EnhanceReport", "EnhanceTrainConfig", "EnhanceTransform", "Enhancer", "ExposureControlLoss",
    "GammaEnhancer", "HistEqEnhancer", "IdentityEnhancer", "IlluminationSmoothnessLoss", "PAPER_SCALE_FACTOR",
    "SpatialConsistencyLoss", "ZeroDCE", "ZeroDCEConfig", "ZeroDCELoss", "ZeroDCELossConfig", "ZeroDCEPP",
    "ZeroDCEPPConfig", "apply_curves", "build_enhancer", "convert_official_state_dict", "enhance_clip",
    "enhance_video_file", "enhance_videos", "find_videos", "flicker", "frame_means", "le_curve",
    "load_curve_weights", "mean_brightness", "psnr", "ssim", "train_curve_model",
]
