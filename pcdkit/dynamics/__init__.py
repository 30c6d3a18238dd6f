"""Latent dynamics for panel data: ODE-RNN encoders, frame codecs, (mixed-effect) neural ODEs."""
