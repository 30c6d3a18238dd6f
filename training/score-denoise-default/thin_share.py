"""Share of surface within 0.05 of another sheet: stand-in test meshes vs generated families.

    python training/score-denoise-default/thin_share.py [STAND_IN_MESH_FOLDER]

The measurement behind adding the ``thin`` family to the campaign's data (LOG.md, session 7);
the folder defaults to ../shared/data/punet/meshes_unverified/test.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pcdkit.datasets.generated import FAMILIES, generate_mesh
from pcdkit.geometry import near_sheet_share, normalize_unit_sphere
from pcdkit.io import read_mesh
from pcdkit.structures import Mesh

WITHIN, PER_FAMILY = 0.05, 8
STANDINS = "../shared/data/punet/meshes_unverified/test"


def main() -> None:
    """Print one line per stand-in mesh and per generated family (mean over its first shapes)."""
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else STANDINS)
    shares = []
    for path in sorted(folder.glob("*.off")):
        mesh = read_mesh(path)
        share = near_sheet_share(Mesh(normalize_unit_sphere(mesh.vertices)[0], mesh.faces), WITHIN)
        shares.append(share)
        print(f"stand-in  {path.stem:14s} {share:6.3f}")
    if shares:
        print(f"stand-in  {'mean':14s} {sum(shares) / len(shares):6.3f}")
    for family in sorted(FAMILIES):  # training shapes: seed 0, indices cycle over the families
        values = [near_sheet_share(generate_mesh(family, 0, i), WITHIN) for i in range(PER_FAMILY)]
        mean = sum(values) / len(values)
        print(f"generated {family:14s} {mean:6.3f}  (shapes 0-{PER_FAMILY - 1})")


if __name__ == "__main__":
    main()
