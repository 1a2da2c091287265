"""The layer inspector dock: what each layer of the network computes on the shown image.

:class:`LayersPanel` lives on the GUI thread and never calls torch. Every computation is a *probe*: a
closure over copied inputs that the AI layer's single inference worker runs with its loaded model
(``AIWorker.scheduler.submit_probe`` -> ``RunnerSession.probe``, after the series' own slices), with
a cancel token and progress reported through :class:`ProbeBridge` signals (queued to this thread).
The probes themselves are ``inference.probes``. A channel map or layer-wise Grad-CAM is shown over
the image as the views' overlay ``LAYER_OVERLAY``, resized to the native grid with the same
pixel-centre mapping as the AI heatmaps, so both line up exactly.

Structure: ``core.py`` (state, probe jobs, tree, overlay), one module per tab (``activations``, ``filters``,
``cam``, ``featurevis``, ``examples``, ``sanity``, ``stats``), ``widgets.py``, ``probes.py``, ``panel.py``.
``attach_layers(window, ai) -> LayersPanel`` adds the dock (hidden until opened: ``--panel layers``
or the Panels menu).
"""

from viewer.qt.layers.core import EXAMPLE_PX, GRID_CHANNELS, LAYER_OVERLAY, TILE_PX
from viewer.qt.layers.panel import LayersPanel, attach_layers, layers_panel

__all__ = ["EXAMPLE_PX", "GRID_CHANNELS", "LAYER_OVERLAY", "TILE_PX", "LayersPanel", "attach_layers", "layers_panel"]
