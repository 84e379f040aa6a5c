"""attnseg: attention U-Nets from a PyTorch checkpoint to fast, validated OpenVINO inference.

Importing the package is cheap: torch, nncf, onnx and openvino are imported inside the
functions that need them, so ``attnseg.runtime`` works in an install without torch.
"""

from attnseg.errors import AttnsegError

__version__ = "0.1.0"

__all__ = ["AttnsegError", "__version__"]
