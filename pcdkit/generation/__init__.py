"""Score-based image generation: samplers, sample-quality features and the Frechet distance."""
