"""Intermediate-iterate heads (IGO's E_tau / D_tau) attached to backbones."""
