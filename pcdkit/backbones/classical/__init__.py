"""Classical point-cloud denoisers (the baselines of the IGO paper's Table 1)."""
