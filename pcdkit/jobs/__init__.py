"""Jobs: what ``pcdkit run`` executes (evaluate, denoise, train, ...)."""
