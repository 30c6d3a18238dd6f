"""Score-based point-cloud denoising (Luo & Hu, ICCV 2021): network, checkpoints, denoising."""
