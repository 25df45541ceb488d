"""Numerics that know no plugin: the ridge engine and its backends, statistics, half-times and
cortical maps."""
