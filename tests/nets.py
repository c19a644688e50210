"""The nets the generic tests run on, from the registry (gradcheck.depths over models.MODELS):
every kind, a kind with hidden layers at depths 1 and 2, so that a new kind is tested by itself."""

from mnistsoftmax.gradcheck import depths

NETS = depths("all", (6, 5))
NET_IDS = [f"{kind}-{'x'.join(map(str, widths)) or 'none'}" for kind, widths in NETS]
