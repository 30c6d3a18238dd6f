"""MuJoCo Hopper panel data (IGO 4.2) through dm_control's hopper model, offline and seeded.

Initial state: ``qpos[:2] ~ U(0, root_range)``, ``qpos[2:] ~ U(-angle_range, angle_range)``,
``qvel ~ U(-vel_range, vel_range)`` (IGO: velocities from [-2, 2]; Latent ODE used 5). A frame is
recorded every ``steps_per_frame`` physics steps (dt 0.005 s; ME-NODE: 20), state = 7 qpos +
7 qvel. Features are standardised per dimension over the whole set (mean 0, std 1); the
normaliser is stored with the data so predictions map back to physical units. Needs the
``pcdkit[dynamics]`` extra: ``mujoco<4`` (mujoco 4 breaks dm_control's hopper) and dm-control.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from pcdkit.datasets.trajectories import Normalizer, Trajectories, cached
from pcdkit.errors import PcdkitError


def _hopper_model() -> tuple[object, object]:
    os.environ.setdefault("MUJOCO_GL", "disable")  # headless: physics only, no renderer
    try:
        import mujoco
        from dm_control import suite
    except ImportError as exc:
        raise PcdkitError(f"hopper needs MuJoCo and dm_control ({exc}); install them with "
                          "pip install 'pcdkit[dynamics]' (pins mujoco<4)") from None
    if int(mujoco.__version__.split(".")[0]) >= 4:
        raise PcdkitError(f"hopper: mujoco {mujoco.__version__} breaks dm_control's hopper "
                          "model; install mujoco<4 (pip install 'mujoco<4')")
    physics = suite.load("hopper", "stand").physics
    return mujoco, physics.model.ptr


def simulate_hopper(subjects: int, frames: int, steps_per_frame: int, root_range: float,
                    angle_range: float, vel_range: float, seed: int,
                    protocol: str = "pcdkit", speeds: int = 2, height: float = 1000.0
                    ) -> np.ndarray:
    """Raw states (subjects, frames, 14), raw ``mj_step`` on dm_control's hopper model.

    ``protocol="reference"`` draws the initial states as the ME-NODE data generator does: x = 0,
    height ``U(0, root_range) + height`` (far above the ground, so the hopper never touches
    it), joint angles ``U(-angle_range, angle_range)``, and every velocity component set to one
    constant per trajectory, cycling through ``speeds`` values evenly spaced in
    ``[-vel_range, vel_range]`` (the mixed effect).
    """
    mujoco, model = _hopper_model()
    data = mujoco.MjData(model)
    rng = np.random.default_rng(seed)
    nq, nv = model.nq, model.nv
    grid = np.linspace(-vel_range, vel_range, speeds)
    out = np.empty((subjects, frames, nq + nv), dtype=np.float64)
    for i in range(subjects):
        mujoco.mj_resetData(model, data)
        if protocol == "reference":
            data.qpos[0], data.qpos[1] = 0.0, rng.uniform(0, root_range) + height
            data.qpos[2:] = rng.uniform(-angle_range, angle_range, nq - 2)
            data.qvel[:] = grid[i % speeds]
        else:
            data.qpos[:2] = rng.uniform(0, root_range, 2)
            data.qpos[2:] = rng.uniform(-angle_range, angle_range, nq - 2)
            data.qvel[:] = rng.uniform(-vel_range, vel_range, nv)
        mujoco.mj_forward(model, data)
        for k in range(frames):
            out[i, k, :nq], out[i, k, nq:] = data.qpos, data.qvel
            for _ in range(steps_per_frame):
                mujoco.mj_step(model, data)
    if not np.isfinite(out).all():
        raise PcdkitError("hopper: the simulation produced non-finite states; lower vel_range "
                          "or steps_per_frame")
    return out


def hopper(subjects: int = 1000, frames: int = 6, steps_per_frame: int = 20,
           root_range: float = 0.5, angle_range: float = 2.0, vel_range: float = 2.0,
           seed: int = 0, cache: bool = True, protocol: str = "pcdkit", speeds: int = 2,
           height: float = 1000.0) -> Trajectories:
    """Hopper trajectories (cached by settings), standardised (``protocol="pcdkit"``) or, with
    ``protocol="reference"``, drawn and normalised as the ME-NODE reference does."""
    settings = {"subjects": subjects, "frames": frames, "steps_per_frame": steps_per_frame,
                "root_range": root_range, "angle_range": angle_range, "vel_range": vel_range,
                "seed": seed}
    if protocol != "pcdkit":  # older caches stay valid for the default protocol
        settings |= {"protocol": protocol, "speeds": speeds, "height": height}

    def make() -> Trajectories:
        raw = torch.from_numpy(simulate_hopper(subjects, frames, steps_per_frame, root_range,
                                               angle_range, vel_range, seed, protocol, speeds,
                                               height)).float()
        kind = "reference" if protocol == "reference" else "standard"
        norm = Normalizer.fit(raw.reshape(-1, raw.shape[-1]), kind)
        info = {"speed": torch.linspace(-vel_range, vel_range, speeds)[
            torch.arange(subjects) % speeds]} if protocol == "reference" else {}
        return Trajectories(norm(raw), torch.linspace(0, 1, frames), settings, norm, info)

    return cached("hopper", settings, make, cache)
