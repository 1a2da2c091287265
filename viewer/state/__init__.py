"""Qt-free evented state the widgets follow (psygnal), as napari separates its model from its Qt views.

Controllers change state; widgets subscribe to its events and render. Nothing here imports Qt, so the
logic is tested without a display (``tests/test_state_*.py``).

- :class:`SessionState` (``session.py``): the scanned series, the current one, measurements per series,
  the viewer settings.
- :class:`CameraState` (``camera.py``): one per view (``SessionState.camera(i)``): fitted, or the user's zoom/pan
  range in patient space; the views write into it and follow it.
- :class:`SeriesState` (``series.py``): one shown series; decoded slice data arrives only through it.
- :class:`OverlayLayer` (``layers.py``): a heat map over a series, each field its own event.
- :class:`AISettings` (``ai.py``): the installed models (:class:`~viewer.state.ai_models.ModelEntry`), the chosen
  one, method, device and each label's overlay settings (:class:`~viewer.state.ai_models.OverlaySettings`, one
  event per field) in force; :class:`AIRunState`: the run's progress (:class:`AIProgress`), the loaded model's
  methods, results and findings.
- :class:`~viewer.state.ai_control.AIControl` (``ai_control.py``, imported on use): the AI controller's decisions,
  changing only the states above.
- ``layer_inspector.py`` (imported on use): the layer inspector's selection and probe-job rules.
- :class:`ReviewContextState` (``review.py``): the reviewer, the image in view, the study on the worklist,
  its flags, the status line; Qt-free controllers ``review_control.ReviewControl`` (the panel's decisions) and
  ``review_viewer.ViewerReview`` (what the viewer shows: context, model facts, worklist, studies, regions).
"""

from viewer.state.ai import AIProgress, AIRunState, AISettings
from viewer.state.camera import CameraRange, CameraState
from viewer.state.layers import OverlayEvents, OverlayLayer
from viewer.state.review import ReviewContextState
from viewer.state.series import SeriesState
from viewer.state.session import SessionState

__all__ = ["AIProgress", "AIRunState", "AISettings", "CameraRange", "CameraState", "OverlayEvents",
           "OverlayLayer", "ReviewContextState", "SeriesState", "SessionState"]
