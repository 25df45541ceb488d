"""Many runs, resumably (``bench grid``): selection, the plan, and the executors that run it."""
