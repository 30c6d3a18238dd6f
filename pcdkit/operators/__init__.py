"""Forward operators for inverse problems on point clouds (measurement + likelihood)."""
