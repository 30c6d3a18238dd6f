"""Built-in job plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pcdkit.builtin import GeometryBackend
from pcdkit.contracts import (
    CorruptionProcess,
    DynamicsModel,
    ForwardOperator,
    HeadSet,
    ImageData,
    ImageScoreModel,
    Metric,
    PanelData,
    PointDenoiser,
    ScorePrior,
    SDEProcess,
    ShapeSequence,
    TrainableDenoiser,
    TrainableHeads,
)
from pcdkit.plugin import REQUIRED, Param, PluginSpec, Slot, hookimpl

#: upper bounds where a larger value can only be a typo (1e9 steps is decades on this CPU)
MAX_STEPS = 10 ** 9
MAX_BATCH = 4096


@hookimpl
def pcdkit_jobs() -> list[PluginSpec]:
    """evaluate, seeds, compare-denoisers, posterior-sample, train-denoiser, image-score,
    igo-alpha-sweep, train-dynamics."""
    return [
        PluginSpec(
            "job", "evaluate", "pcdkit.jobs.evaluate:EvaluateJob",
            doc="Corrupt every shape of a dataset, optionally run a backbone, score with the "
                "metrics under the unit-sphere protocol; per-shape CSV/Markdown and the mean.",
            params=(
                Param("limit", int | None, None, "evaluate only the first N shapes", minimum=1),
                Param("save_clouds", bool, False, "write input/output clouds as .xyz"),
                Param("score_input", bool, True,
                      "also score the corrupted input when a backbone runs"),
                Param("table_scale", float, 1e4, "factor for the Markdown table (papers: 1e4)"),
                Param("render", bool, False,
                      "write a PNG per shape: input / output / clean (needs matplotlib)"),
            ),
            slots=(
                Slot("dataset", "dataset", doc="shapes to evaluate", contract=ShapeSequence),
                Slot("corruption", "corruption", contract=CorruptionProcess, required=False,
                     doc="applied to each clean cloud (omit to score the clouds as given)"),
                Slot("backbone", "backbone", required=False, default="identity",
                     contract=PointDenoiser,
                     doc="denoiser applied to the corrupted cloud"),
                Slot("metrics", "metric", many=True, default=["chamfer", "p2m"], contract=Metric,
                     doc="metrics to report"),
            ),
        ),
        PluginSpec(
            "job", "seeds", "pcdkit.jobs.seeds:SeedsJob",
            doc="Run a pipeline for every variant x seed (each a resumable run of its own) and "
                "tabulate every figure's mean and spread over seeds.",
            params=(
                Param("pipeline", Path, REQUIRED, "the base pipeline file", is_input=True),
                Param("seeds", list[int], [0, 1, 2], "the seeds of every variant"),
                Param("variants", dict | None, None,
                      "name -> {dotted.key: value} overrides (default: the base pipeline as is)"),
                Param("common", dict | None, None,
                      "{dotted.key: value} overrides applied to every run first"),
                Param("figures", list[str] | None, None,
                      "figures to tabulate, e.g. interp_mse (default: every numeric one)"),
                Param("paired_with", str | None, None,
                      "a variant: also tabulate every other variant minus it within each seed "
                      "(paired.md / paired.csv: mean, std, paired t)"),
            ),
        ),
        PluginSpec(
            "job", "compare-denoisers", "pcdkit.jobs.compare:CompareJob",
            doc="Every backbone on every dataset (e.g. one per resolution) at every noise "
                "level, one table beside published numbers (the IGO paper's Table 1); "
                "resumable cell by cell.",
            params=(
                Param("noises", list[float], [0.01, 0.02],
                      "Gaussian noise stds relative to the unit-sphere radius"),
                Param("labels", list[str] | None, None,
                      "one name per backbone in the table (default: plugin names)"),
                Param("limit", int | None, None, "only the first N shapes of each dataset",
                      minimum=1),
                Param("table_scale", float, 1e4, "factor of the table (papers: 1e4)"),
                Param("published", Literal["igo-table1", "none"], "igo-table1",
                      "published numbers printed beside the results"),
            ),
            slots=(
                Slot("datasets", "dataset", many=True, contract=ShapeSequence,
                     doc="shapes, one dataset per resolution"),
                Slot("backbones", "backbone", many=True, contract=PointDenoiser,
                     doc="the denoisers compared (identity = the noisy input)"),
                Slot("metrics", "metric", many=True, default=["chamfer", "p2m"], contract=Metric,
                     doc="metrics to report"),
            ),
        ),
        PluginSpec(
            "job", "posterior-sample", "pcdkit.jobs.posterior:PosteriorJob",
            doc="Inverse problems on point clouds: measure each shape with a forward operator, "
                "sample p(x | y) by annealed Langevin dynamics with a learned score prior "
                "(SGILO's idea), score the samples and their spread beside simple baselines.",
            params=(
                Param("samples", int, 3, "posterior samples per measurement", minimum=1),
                Param("limit", int | None, None, "only the first N shapes", minimum=1),
                Param("baselines", bool, True, "also score the start, start + the prior's "
                      "denoiser, and midpoint insertion"),
                Param("render", bool, False, "a PNG per shape: measurement, samples, clean"),
                Param("denoise_samples", bool, False, "also score each sample after the prior "
                      "backbone's own denoiser (posterior+denoise), when it has one"),
                Param("sigma_max", float, 0.02, "largest noise level (unit-sphere frame)",
                      minimum=0.0),
                Param("sigma_min", float, 0.005, "smallest noise level", minimum=0.0),
                Param("levels", int, 5, "geometric noise levels", minimum=1),
                Param("steps", int, 10, "Langevin steps per level", minimum=1),
                Param("step", float, 0.2, "step size (times sigma^2 x the posterior score)",
                      minimum=0.0),
                Param("temperature", float, 1.0, "1: Langevin dynamics; 0: gradient ascent",
                      minimum=0.0),
                Param("prior_weight", float, 1.0, "weight of the prior score", minimum=0.0),
                Param("likelihood_weight", float, 1.0, "weight of grad log p(y | x)",
                      minimum=0.0),
                Param("tweedie", bool, True, "end with one noise-free step x + d(x)"),
                Param("refresh", Literal["level", "step"], "level",
                      "read the prior's context (patches, features) once per noise level, "
                      "when it can (frozen), or at every step"),
            ),
            slots=(
                Slot("dataset", "dataset", doc="clean shapes to measure", contract=ShapeSequence),
                Slot("operator", "operator", default="subsample", contract=ForwardOperator,
                     doc="how the measurement is made, and its likelihood"),
                Slot("prior", "backbone", default="score-denoise", contract=ScorePrior,
                     doc="the learned score of clean surfaces"),
                Slot("metrics", "metric", many=True, default=["chamfer", "p2m"], contract=Metric,
                     doc="metrics of samples and baselines"),
            ),
        ),
        PluginSpec(
            "job", "train-denoiser", "pcdkit.jobs.train_denoiser:TrainDenoiserJob",
            doc="Supervised score-matching training of the score-denoise backbone (reference "
                "loss), resumable, DDP under torchrun.",
            params=(
                Param("iterations", int, 1000, "optimiser steps in total", minimum=1,
                      maximum=MAX_STEPS),
                Param("cpu_minutes", float, 0.0, "stop once training has used this much CPU "
                      "time (over resumes; every thread counts); 0: no budget", minimum=0.0),
                Param("batch_size", int, 32, "patches per step (per process)", minimum=1,
                      maximum=MAX_BATCH),
                Param("lr", float, 1e-4, "Adam learning rate", minimum=0.0),
                Param("patch_size", int, 1000, "noisy points per patch", minimum=33),
                Param("patch_ratio", float, 1.2, "clean patch size / noisy patch size"),
                Param("noise_min", float, 0.005, "smallest noise std (unit sphere)"),
                Param("noise_max", float, 0.02, "largest noise std (unit sphere)"),
                Param("scale_range", float, 0.2, "random scale in [1 - s, 1 + s]"),
                Param("rotate", bool, True, "random rotations about x, y and z"),
                Param("log_every", int, 10, "steps between metrics.csv rows", minimum=1),
                Param("checkpoint_every", int, 100, "steps between checkpoints", minimum=1),
                Param("val_every", int, 200, "steps between validations", minimum=1),
                Param("val_noises", list[float], [0.01, 0.02],
                      "noise stds of the validation clouds (each shape denoised at each)"),
                Param("val_shapes", int, 2, "validation shapes used", minimum=0),
                Param("backend", GeometryBackend, "auto",
                      "neighbour-search / FPS backend of the patch extraction (the network's "
                      "own: backbone.backend)"),
                Param("alpha", float, 1.0, "IGO weight of the final iterate's loss "
                      "(1 - alpha goes to the intermediate iterates)", minimum=0.0, maximum=1.0),
                Param("freeze_batchnorm", bool, False,
                      "keep BatchNorm running statistics fixed (fine-tuning)"),
                Param("output_lr", float | None, None,
                      "Adam learning rate of the network's output layer and of IGO's D_tau "
                      "that replaces it (default: lr; needs a backbone whose network has "
                      "`output_layer`)",
                      minimum=0.0),
                Param("bn_recalibration", int, 0,
                      "training batches that re-estimate BatchNorm statistics before each "
                      "validation, kept in the model.pt of that step (0: running averages)",
                      minimum=0),
                Param("ema_decay", float, 0.0,
                      "exponential moving average of the weights (and BatchNorm statistics), "
                      "validated and exported instead of the raw weights; 0 = off",
                      minimum=0.0, maximum=0.99999),
                Param("warmup", int, 0, "steps of linear learning-rate warm-up", minimum=0),
                Param("lr_schedule", Literal["constant", "cosine"], "constant",
                      "after warm-up: constant, or cosine decay to lr_min at `iterations`"),
                Param("lr_min", float, 0.0, "final learning rate of the cosine schedule",
                      minimum=0.0),
                Param("grad_clip", float, 0.0, "clip the gradient's global norm (0 = off)",
                      minimum=0.0),
            ),
            slots=(
                Slot("backbone", "backbone", default="score-denoise",
                     contract=TrainableDenoiser,
                     doc="the network trained, with its loss; its `checkpoint` (if any) is "
                         "where training starts"),
                Slot("head", "head", required=False, contract=TrainableHeads,
                     doc="IGO heads (E_tau / D_tau); needs `corruption`"),
                Slot("corruption", "corruption", contract=CorruptionProcess, required=False,
                     doc="noise process for training (default: the reference's Gaussian); "
                         "must return intermediate iterates for IGO"),
                Slot("datasets", "dataset", many=True, contract=ShapeSequence,
                     doc="training shapes (several datasets, e.g. resolutions, are pooled)"),
                Slot("val_dataset", "dataset", required=False, contract=ShapeSequence,
                     default={"plugin": "generated-shapes", "seed": 1, "count": 3,
                              "resolution": 10000},
                     doc="validation shapes, denoised by the full schedule at each of "
                         "val_noises (default: 10K-point generated shapes of a seed no "
                         "training pipeline uses)"),
            ),
        ),
            PluginSpec(
            "job", "image-score", "pcdkit.jobs.image_score:ImageScoreJob",
            doc="Score-based image generation (IGO 4.1): train the U-Net under an SDE "
                "corruption (IGO loss with a head), sample by probability-flow ODE and reverse "
                "SDE, PNG grids, Frechet distance in pcdkit's own digit-classifier features.",
            params=(_ALPHA, *_IMAGE_SCORE,
                    Param("fd", bool, True, "train the feature classifier and report FD-MNIST")),
            slots=_IMAGE_SLOTS,
        ),
        PluginSpec(
            "job", "igo-alpha-sweep", "pcdkit.jobs.alpha_sweep:AlphaSweepJob",
            doc="IGO paper Fig. 2: image-score trained per alpha (same seed and budget); "
                "FD-MNIST table and plot against alpha.",
            params=(Param("alphas", list[float], [1.0, 0.9, 0.8, 0.6],
                          "weights of the final iterate's loss"), *_IMAGE_SCORE),
            slots=_IMAGE_SLOTS,
        ),
        PluginSpec(
            "job", "train-dynamics", "pcdkit.jobs.train_dynamics:TrainDynamicsJob",
            doc="Train a latent dynamics model on panel data; interpolation / extrapolation "
                "MSE (integrated through the observed window), figures, resumable.",
            params=(
                Param("iterations", int, 2000, "optimiser steps", minimum=1,
                      maximum=MAX_STEPS),
                Param("cpu_minutes", float, 0.0, "stop once training has used this much CPU "
                      "time (over resumes; every thread counts); 0: no budget", minimum=0.0),
                Param("batch_size", int, 50, "subjects per step", minimum=1,
                      maximum=MAX_BATCH),
                Param("optimizer", Literal["adamax", "adam"], "adamax",
                      "adamax (the reference) or adam"),
                Param("lr", float, 1e-3, "learning rate", minimum=0.0),
                Param("lr_decay", float, 0.999, "learning-rate factor per epoch", minimum=0.0),
                Param("warmup", int, 0, "steps of linear learning-rate warm-up", minimum=0),
                Param("time_unit", Literal["sequence", "frame"], "sequence",
                      "ODE time: the sequence spans [0, 1] (reference) or one unit per frame"),
                Param("codec_warmup", int, 0, "first steps train only the frame codec (frame "
                      "encoder + decoder as an autoencoder; image frames), then the ELBO",
                      minimum=0),
                Param("latent_warmup", int, 0, "then steps training the encoder and dynamics "
                      "alone to follow the frames' codes in latent space (codec fixed)",
                      minimum=0),
                Param("codec_hold", int, 0, "then ELBO steps that keep the frame codec fixed",
                      minimum=0),
                Param("grad_clip", float, 1.0, "gradient-norm clip (0: off)", minimum=0.0),
                Param("kl_anneal", int, 500, "steps of linear KL annealing 0 -> 1", minimum=0),
                Param("n_obs", int | None, None, "observed frames (default: half)", minimum=1),
                Param("obs_keep", float, 0.5, "training: chance the encoder sees a window "
                      "frame (the first always)", minimum=0.0, maximum=1.0),
                Param("test_fraction", float, 0.2, "last share of subjects held out",
                      minimum=0.0, maximum=1.0),
                Param("eval_every", int, 250, "steps between test evaluations", minimum=1),
                Param("log_every", int, 25, "steps between metrics.csv rows", minimum=1),
                Param("checkpoint_every", int, 250, "steps between checkpoints", minimum=1),
                Param("figures", int, 4, "test subjects drawn in predictions.png", minimum=0),
            ),
            slots=(
                Slot("dataset", "dataset", doc="panel data (hopper, rotating-mnist)",
                     contract=PanelData),
                Slot("model", "dynamics", default="me-node", doc="latent dynamics model",
                     contract=DynamicsModel),
            ),
        ),
    ]


_ALPHA = Param("alpha", float, 1.0, "IGO weight of the final iterate's loss (1 - alpha goes "
               "to the intermediate iterates; needs a head)", minimum=0.0, maximum=1.0)
_IMAGE_SCORE = (
    Param("iterations", int, 2000, "optimiser steps (0: only sample from init_checkpoint)",
          minimum=0, maximum=MAX_STEPS),
    Param("cpu_minutes", float, 0.0, "stop once training has used this much CPU "
          "time (over resumes; every thread counts); 0: no budget", minimum=0.0),
    Param("batch_size", int, 64, "images per step", minimum=1, maximum=MAX_BATCH),
    Param("lr", float, 1e-3, "Adam learning rate", minimum=0.0),
    Param("ema_decay", float, 0.999, "decay of the weight average used for sampling",
          minimum=0.0, maximum=1.0),
    Param("grad_clip", float, 1.0, "gradient-norm clip (0: off)", minimum=0.0),
    Param("log_every", int, 25, "steps between metrics.csv rows", minimum=1),
    Param("checkpoint_every", int, 250, "steps between checkpoints", minimum=1),
    Param("samples", int, 256, "images generated per sampler", minimum=2),
    Param("sampler", Literal["ode", "em", "pc", "both", "all"], "both",
          "probability-flow ODE (torchdiffeq dopri5), reverse-SDE Euler-Maruyama, "
          "predictor-corrector; both = ode + em, all = ode + em + pc"),
    Param("em_steps", int, 500, "Euler-Maruyama steps of the reverse SDE (also pc's "
          "predictor steps)", minimum=1),
    Param("pc_snr", float, 0.16, "pc: signal-to-noise ratio of the Langevin corrector "
          "(Song et al. 2021)", minimum=0.0),
    Param("pc_corrector_steps", int, 1, "pc: Langevin corrections per predictor step",
          minimum=1),
    Param("ode_rtol", float, 1e-5, "relative tolerance of dopri5", minimum=0.0),
    Param("ode_atol", float, 1e-5, "absolute tolerance of dopri5", minimum=0.0),
    Param("eps", float, 1e-3, "sampling stops at t = eps", minimum=0.0),
    Param("classifier_epochs", int, 3, "epochs of the FD feature classifier", minimum=1),
    Param("fd_bootstrap", int, 200, "bootstrap resamples of the generated features for a 95 % "
          "interval of each FD (0: the value only)", minimum=0),
    Param("init_checkpoint", Path | None, None, "start from this score-unet checkpoint",
          is_input=True),
)
_IMAGE_SLOTS = (
    Slot("dataset", "dataset", default={"plugin": "mnist"}, doc="28 x 28 training images",
         contract=ImageData),
    Slot("backbone", "backbone", default="score-unet", doc="time-conditioned score model",
         contract=ImageScoreModel),
    Slot("head", "head", required=False, doc="IGO heads (E_tau / D_tau), e.g. igo-unet",
         contract=HeadSet),
    Slot("corruption", "corruption", contract=SDEProcess,
         default={"plugin": "cat-map", "noise": 1.0, "sigma": 25.0},
         doc="forward SDE (cat-map: IGO 4.1; gaussian-ve: the score-SDE baseline)"),
)
