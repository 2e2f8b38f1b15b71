"""Deterministic, scalable ITFlow-shaped sample sites for the demo, the tests and benchmarks."""

from flowsafe.sample.site import BENCH_SCALE, SampleSite, build_site, nightly_change

__all__ = ["BENCH_SCALE", "SampleSite", "build_site", "nightly_change"]
