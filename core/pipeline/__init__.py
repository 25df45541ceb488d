"""One run: activations → metric → rows (``bench run``), checkpoint series and trajectory metrics."""
