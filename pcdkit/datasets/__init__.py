"""Dataset plugins: PU-Net layout, any folder of meshes, and procedurally generated shapes."""
