"""Finds, names, builds and guards plugins: plugin discovery (the pluggy manager), the registry of
specs, and the guards that check what a plugin returns."""
