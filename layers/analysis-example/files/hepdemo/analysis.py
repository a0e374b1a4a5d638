"""The analysis itself: write, read, select, histogram."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import hist
import numpy as np
import uproot
from coffea import processor
from coffea.analysis_tools import PackedSelection

from hepdemo import EDGES, N_EVENTS, muon_pts


def write_events(path: Path) -> None:
    pts = ak.Array([muon_pts(i) for i in range(N_EVENTS)])
    with uproot.recreate(path) as out:
        out["Events"] = {"Muon_pt": pts, "run": np.ones(N_EVENTS, dtype=np.int32)}


class DimuonCount(processor.ProcessorABC):
    """Counts events with at least two muons above 20 GeV, the coffea way."""

    def process(self, events: ak.Array) -> dict[str, int]:
        selection = PackedSelection()
        selection.add("two_muons", ak.num(events.Muon_pt[events.Muon_pt > 20.0]) >= 2)
        return {"events": len(events), "selected": int(ak.sum(selection.all("two_muons")))}

    def postprocess(self, accumulator: dict[str, int]) -> dict[str, int]:
        return accumulator


def run(workdir: Path) -> str:
    path = workdir / "hepdemo.root"
    write_events(path)
    with uproot.open(path) as handle:
        events = handle["Events"].arrays(["Muon_pt"])
    leading = ak.max(events.Muon_pt, axis=1)
    leading = leading[~ak.is_none(leading)]
    histogram = hist.Hist.new.Var(list(EDGES), name="pt", label="leading muon pT [GeV]").Int64()
    histogram.fill(pt=ak.to_numpy(leading))
    counts = [int(c) for c in histogram.values()]
    result = DimuonCount().postprocess(DimuonCount().process(events))
    return f"counts {counts} | coffea {result['events']} events, {result['selected']} selected"
