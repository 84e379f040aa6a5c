"""Training on the CPU through oneDNN (torch): loop, losses, acceleration."""

from attnseg.train.acceleration import AccelerationPlan, Precision, has_native_bf16, plan_acceleration
from attnseg.train.loop import TrainConfig, TrainResult, evaluate_model, train
from attnseg.train.losses import SegmentationLoss

__all__ = ["AccelerationPlan", "Precision", "SegmentationLoss", "TrainConfig", "TrainResult", "evaluate_model",
           "has_native_bf16", "plan_acceleration", "train"]
