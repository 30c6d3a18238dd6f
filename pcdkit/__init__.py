"""pcdkit: a plugin-based PyTorch toolkit for score-based point-cloud denoising and dynamics."""

__version__ = "0.1.0"
