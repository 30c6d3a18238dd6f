"""Built-in backbone plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pcdkit.builtin import GeometryBackend
from pcdkit.contracts import ImageScoreModel, PointDenoiser, ScorePrior, TrainableDenoiser
from pcdkit.plugin import Param, PluginSpec, hookimpl


@hookimpl
def pcdkit_backbones() -> list[PluginSpec]:
    """identity, score-denoise, bilateral, jet, score-unet."""
    return [
        PluginSpec("backbone", "identity", "pcdkit.backbones.identity:Identity",
            provides=(PointDenoiser,),
                   doc="Returns its input: scores the corrupted input itself (baseline)."),
        PluginSpec(
            "backbone", "score-denoise", "pcdkit.backbones.score_denoise.backbone:ScoreDenoiser",
            provides=(PointDenoiser, TrainableDenoiser, ScorePrior),
            doc="Score-based point-cloud denoising (Luo & Hu, ICCV 2021): dynamic-graph "
                "features + score network, patch-based gradient ascent.",
            params=(
                Param("checkpoint", Path | None, None,
                      "pcdkit checkpoint; denoising: default the embedded one trained by "
                      "pcdkit; train-denoiser: the starting weights (default: fresh)",
                      is_input=True),
                Param("allow_pickle", bool, False,
                      "unpickle arbitrary objects from the checkpoint (trusted files only)"),
                Param("passes", int, 1, "denoising passes (reference: 2 for 3 % noise)",
                      minimum=1),
                Param("steps", int, 30, "gradient-ascent steps per pass", minimum=1),
                Param("step_size", float, 0.2, "initial step size", minimum=0.0),
                Param("decay", float, 0.95, "step-size decay per step", minimum=0.0),
                Param("neighbours", int, 4, "current points each noisy point scores", minimum=1),
                Param("patch_size", int, 1000, "points per patch", minimum=17),
                Param("seed_k", float, 3.0, "patches per patch_size points (overlap)",
                      minimum=0.0),
                Param("batch_patches", int, 8, "patches processed at once (memory bound)",
                      minimum=1),
                Param("cluster_above", int, 50000,
                      "clouds larger than this are split by k-means", minimum=1),
                Param("cluster_size", int, 30000, "target points per k-means cluster",
                      minimum=1000),
                Param("backend", GeometryBackend, "auto", "neighbour-search / FPS backend"),
                Param("heads", Path | None, None,
                      "IGO heads checkpoint (checkpoints/heads.pt of an IGO training run)",
                      is_input=True),
                Param("tau", float | None, None,
                      "denoise through E_tau / D_tau of this tau instead of E_T / D_T"),
                Param("preset", Literal["fast", "faithful"], "fast",
                      "inference arithmetic: faithful = float32, the reference's; fast = the "
                      "hidden products' arithmetic measured fastest here (float32, bfloat16, or "
                      "int8 in the hand-fused kernel on AVX512-VNNI CPUs) and split feature "
                      "graphs (README \"Benchmarks\")"),
                Param("matmul_precision",
                      Literal["auto", "float32", "bfloat16", "bfloat16-rounded", "int8",
                              "int8-fused"], "auto",
                      "hidden products' arithmetic, overriding the preset; int8: int8 x int8 "
                      "-> int32 products (activations coded per channel, weights per output "
                      "channel); int8-fused: the same codes per tile of rows in one hand-fused "
                      "CPU kernel (AVX512-VNNI; built on first use); bfloat16-rounded: "
                      "bfloat16 inputs and results, multiplied in float32 (bfloat16's numbers "
                      "at float32 speed, to measure its effect on any CPU)"),
                Param("feature_layout", Literal["auto", "reference", "split"], "auto",
                      "denoising's feature graphs: reference = the reference's concatenated "
                      "edge features (bit-exact); split = per-point and per-edge parts of each "
                      "linear map, fewer passes over memory, rounded differently (inside the "
                      "quality rule, README \"Benchmarks\"); auto = split in the fast preset, "
                      "reference in the faithful one"),
                # training (train-denoiser): the network's loss and initialisation
                Param("num_points", int, 128, "training: frames per patch in the loss",
                      minimum=1),
                Param("frame_knn", int, 32, "training: noisy points per frame", minimum=1),
                Param("clean_neighbours", int, 4,
                      "training: clean points averaged for the target", minimum=1),
                Param("sigma", float, 0.01, "training: loss scale (dsm_sigma of the reference)"),
                Param("zero_init_output", bool, False,
                      "training from scratch: zero-initialise the output layer (the reference "
                      "does not; helps short CPU budgets)"),
                Param("compiled_training", bool, False,
                      "training: run the score network's training forward through "
                      "torch.compile"),
                Param("training_precision", Literal["float32", "bfloat16"], "float32",
                      "training: the score network's products in bfloat16 autocast (float32 "
                      "weights, sums and BatchNorm statistics; faster steps where the hardware "
                      "has bfloat16, README \"Training\")"),
                Param("compiled_inference", bool, False,
                      "denoising: run the score network's fused inference forward through "
                      "torch.compile (a one-off compilation, cached on disk; pays off over "
                      "many or large clouds, README \"Benchmarks\")"),
            ),
        ),
        PluginSpec(
            "backbone", "bilateral", "pcdkit.backbones.classical.bilateral:Bilateral",
            provides=(PointDenoiser,),
            doc="Bilateral filter for point clouds (Fleishman et al. 2003; Digne & de Franchis "
                "2017): PCA normals, spatial and height kernels, points moved along normals.",
            params=(
                Param("k", int, 30, "neighbours per point (normals and filter)", minimum=3),
                Param("sigma_d", float, 0.04, "spatial kernel std (unit-sphere frame)",
                      minimum=0.0),
                Param("sigma_n", float, 0.02, "height (range) kernel std (unit-sphere frame)",
                      minimum=0.0),
                Param("iterations", int, 2, "filter passes, normals re-estimated each",
                      minimum=1),
                Param("backend", GeometryBackend, "auto", "neighbour-search backend"),
            ),
        ),
        PluginSpec(
            "backbone", "jet", "pcdkit.backbones.classical.jet:Jet",
            provides=(PointDenoiser,),
            doc="Jet smoothing (Cazals & Pouget 2005, CGAL jet_smooth_point_set): each point "
                "projected onto a least-squares polynomial height field over its PCA plane.",
            params=(
                Param("k", int, 24, "neighbours per fit (CGAL's default for real scans)",
                      minimum=3),
                Param("degree", int, 2, "total degree of the fitted jet", minimum=1,
                      maximum=4),
                Param("iterations", int, 1, "smoothing passes", minimum=1),
                Param("backend", GeometryBackend, "auto", "neighbour-search backend"),
            ),
        ),
        PluginSpec(
            "backbone", "score-unet", "pcdkit.backbones.score_unet:ScoreUNet",
            provides=(ImageScoreModel,),
            doc="Time-conditioned U-Net score model for 28 x 28 images (Gaussian random-feature "
                "time embedding; the score-SDE tutorial architecture used by IGO 4.1).",
            params=(
                Param("channels", list[int], [32, 64, 128, 256], "channels of the 4 levels"),
                Param("embed_dim", int, 256, "time-embedding width", minimum=2),
                Param("fourier_scale", float, 30.0, "std of the random Fourier frequencies",
                      minimum=0.0),
            ),
        ),
    ]
