"""Denoiser backbones. A backbone object offers ``denoise(points, generator=None) -> points``."""
