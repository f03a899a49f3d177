"""intsim: a bit-accurate integer inference simulator.

Layers, each in its own package: ``intsim.formats`` (number formats), ``intsim.rounding``
(rounding modes), and the layers built on them.
"""

__version__ = "0.1.0"
