"""act3d: ACT (Autoencoders as Cross-Modal Teachers) for 3D point clouds in pure PyTorch."""

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
]
