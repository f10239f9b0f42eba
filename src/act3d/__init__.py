"""act3d: ACT (Autoencoders as Cross-Modal Teachers) for 3D point clouds in pure PyTorch."""

from typing import Any

from act3d.errors import Act3dError, CheckpointError, ConfigError, DataError, OpError, TrainingError

__version__ = "0.1.0"

__all__ = [
    "Act3dError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "OpError",
    "TrainingError",
    "__version__",
    "load_encoder",
]


def __getattr__(name: str) -> Any:
    # ``act3d.load_encoder`` pulls in torch and timm: import it on first use, not with the package.
    if name == "load_encoder":
        from act3d.api import load_encoder

        return load_encoder
    raise AttributeError(f"module 'act3d' has no attribute {name!r}")
