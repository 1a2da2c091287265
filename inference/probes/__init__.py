"""Layer probes: look inside a model layer by layer (the viewer's layer inspector runs these on its
inference worker thread; nothing here imports Qt, the viewer or pydicom).

- `tap`: `GraphTap` (activations of any layer from the FX graph, ``.pt2`` included), `layer_tree`.
- `activations`: channel ranking, `layer_stats` (histogram, dead channels).
- `weights`: first-convolution kernels as tiles, `weight_stats`.
- `maps`: per-slice channel maps and layer-wise Grad-CAM on the native grid.
- `featurevis`: activation maximisation (Fourier parameterisation + jitter), `FeatureVisCache`.
- `examples`: the slices that most activate a channel; `sanity_maps`: randomisation check with maps.
"""

from inference.probes.activations import LayerStats, as_maps, channel_means, layer_stats, top_channels
from inference.probes.examples import Example, channel_examples
from inference.probes.featurevis import (FeatureVis, FeatureVisCache, FeatureVisParams, ProbeCancelled,
                                         cached_visualisation, channel_activation, visualise_channel)
from inference.probes.maps import activations, layer_gradcam, to_native
from inference.probes.sanity_maps import SanityResult, sanity_check
from inference.probes.tap import TORCHSCRIPT_NOTE, GraphTap, LayerInfo, layer_tree
from inference.probes.weights import WeightStats, first_conv_kernels, kernel_tiles, weight_stats

__all__ = ["Example", "FeatureVis", "FeatureVisCache", "FeatureVisParams", "GraphTap", "LayerInfo", "LayerStats",
           "ProbeCancelled", "SanityResult", "TORCHSCRIPT_NOTE", "WeightStats", "activations", "as_maps",
           "cached_visualisation", "channel_activation", "channel_examples", "channel_means", "first_conv_kernels",
           "kernel_tiles", "layer_gradcam", "layer_stats", "layer_tree", "sanity_check", "to_native",
           "top_channels", "visualise_channel", "weight_stats"]
