"""The framework: registry, settings, pipelines, runner, run directories, the job context and
the shared trainer. Nothing here knows about point clouds; domain code lives beside it."""
