"""Compatibility names: the layer inspector lives in :mod:`viewer.qt.layers` (one module per tab)."""

from viewer.display.channels import channel_order, resize_to_native
from viewer.qt.layers import EXAMPLE_PX, GRID_CHANNELS, LAYER_OVERLAY, TILE_PX, LayersPanel, attach_layers, layers_panel
from viewer.qt.layers.probes import ProbeBridge, ProbeOutcome

__all__ = ["EXAMPLE_PX", "GRID_CHANNELS", "LAYER_OVERLAY", "TILE_PX", "LayersPanel", "ProbeBridge", "ProbeOutcome",
           "attach_layers", "channel_order", "layers_panel", "resize_to_native"]
