"""hepdemo: a small columnar analysis, the kind of package an analyst keeps on top of lamina's
notebook image. It writes a ROOT file with known content, reads it back with uproot, selects
with awkward and coffea's PackedSelection, and fills a hist histogram; ``python -m hepdemo``
prints the bin counts so the image test can assert them exactly."""

EDGES = (0.0, 20.0, 40.0, 60.0, 80.0, 100.0, 120.0)
N_EVENTS = 100


def muon_pts(event: int) -> list[float]:
    """Deterministic, uneven muon multiplicities and momenta (GeV) for event ``event``."""
    return [float((event * 37 + j * 53) % 113) + 0.5 for j in range(event % 4)]
