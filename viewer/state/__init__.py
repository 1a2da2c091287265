"""Qt-free evented state the widgets follow (psygnal), as napari separates its model from its Qt views.

Controllers change state; widgets subscribe to its events and render. Nothing here imports Qt, so the
logic is tested without a display (``tests/test_state_*.py``).

- :class:`SessionState` (``session.py``): the scanned series, the current one, measurements per series,
  the viewer settings.
- :class:`SeriesState` (``series.py``): one shown series; decoded slice data arrives only through it.
- :class:`OverlayLayer` (``layers.py``): a heat map over a series, each field its own event.
- :class:`AISettings` (``ai.py``): the model, method, device and per-label thresholds in force;
  :class:`AIRunState`: the run's progress (:class:`AIProgress`) and the loaded model's methods.
- :class:`ReviewContextState` (``review.py``): the reviewer, the image in view, the study on the worklist,
  its flags, the status line; Qt-free controllers ``review_control.ReviewControl`` (the panel's decisions) and
  ``review_viewer.ViewerReview`` (what the viewer shows: context, model facts, worklist, studies, regions).
"""

from viewer.state.ai import AIProgress, AIRunState, AISettings
from viewer.state.layers import OverlayEvents, OverlayLayer
from viewer.state.review import ReviewContextState
from viewer.state.series import SeriesState
from viewer.state.session import SessionState

__all__ = ["AIProgress", "AIRunState", "AISettings", "OverlayEvents",
           "OverlayLayer", "ReviewContextState", "SeriesState", "SessionState"]
