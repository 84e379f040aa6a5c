"""Models (torch only): the U-Net family, SE U-Net, HybridSN, attention blocks, checkpoints."""

from attnseg.models.base import SegmentationModel, nearest_valid_sizes
from attnseg.models.blocks import (
    CBAM,
    Attention_block,
    ChannelAttention,
    DoubleConv,
    Recurrent_block,
    RRCNN_block,
    SELayer,
    SpatialAttention,
    conv_block,
    up_conv,
)
from attnseg.models.checkpoint import CheckpointInfo, load_checkpoint, save_checkpoint
from attnseg.models.hybridsn import HybridSN, HybridSN_SE
from attnseg.models.registry import (
    ModelCapabilities,
    create_model,
    get_model_class,
    list_models,
    model_capabilities,
    register_model,
)
from attnseg.models.se_unet import SE_UNet
from attnseg.models.unet import AttU_Net, R2AttU_Net, R2U_Net, U_Net

__all__ = [
    "CBAM",
    "AttU_Net",
    "Attention_block",
    "ChannelAttention",
    "CheckpointInfo",
    "DoubleConv",
    "HybridSN",
    "HybridSN_SE",
    "ModelCapabilities",
    "R2AttU_Net",
    "R2U_Net",
    "RRCNN_block",
    "Recurrent_block",
    "SELayer",
    "SE_UNet",
    "SegmentationModel",
    "SpatialAttention",
    "U_Net",
    "conv_block",
    "create_model",
    "get_model_class",
    "list_models",
    "load_checkpoint",
    "model_capabilities",
    "nearest_valid_sizes",
    "register_model",
    "save_checkpoint",
    "up_conv",
]
