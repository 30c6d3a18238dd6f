"""pcdkit: plugin-based PyTorch toolkit for score-based point-cloud denoising and latent dynamics."""

__version__ = "0.1.0"
