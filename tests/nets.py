"""The nets the generic tests run on, from the registries (gradcheck.nets over models.MODELS and
activations.ACTIVATIONS): every kind, a kind with hidden layers at depths 1 and 2 under every
activation, so that a new kind or a new activation is tested by itself."""

from mnistsoftmax.gradcheck import net_label, nets

NETS = nets("all", (6, 5))
NET_IDS = [net_label(*net).replace(" ", "-") for net in NETS]
