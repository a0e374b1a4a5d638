"""``lamina unpack``: the unpacked.cern.ch (DUCC) layout of an image, built locally.

:mod:`~lamina.unpack.source` finds the manifests, :mod:`~lamina.unpack.layers` applies layer
tarballs safely, :mod:`~lamina.unpack.singularity` writes ``/.singularity.d`` and
:mod:`~lamina.unpack.layout` places flats and links as CVMFS does.
"""
