"""Reading and writing point clouds and meshes (.xyz/.txt, .ply, .off, .npy/.npz)."""

from pcdkit.io.files import read_mesh, read_points, write_mesh, write_points

__all__ = ["read_mesh", "read_points", "write_mesh", "write_points"]
