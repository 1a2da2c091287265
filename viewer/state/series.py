"""One shown series: the (possibly still loading) volume, which slices have landed, the crosshair (an LPS
point), the window, overlay layers and measurements. Views and panels subscribe to its events; decoded
slices arrive only through :meth:`SeriesState.receive_slices` (or :meth:`finish_loading`)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from psygnal import Signal

from viewer.dicom.volume import VoiLut, Volume, WindowPreset
from viewer.display.coded import CodedVolume
from viewer.display.colormaps import mask_lut
from viewer.display.measure import MeasurementRecord
from viewer.display.windowing import display_mapping, initial_window, presets_for
from viewer.state.layers import OverlayLayer

DICOM_OVERLAY = "DICOM overlay"
"""Name of the layer holding the series' own overlay planes (60xx)."""


class SeriesState:
    """The state of one series as shown. Events (psygnal; ``connect``/``disconnect``/``emit`` as Qt's):

    ``sliceLoaded(k)``, ``loadFinished()``, ``windowChanged()``, ``crosshairChanged()``,
    ``overlaysChanged()`` (a layer was added/removed or any layer field changed), ``measurementsChanged()``.
    """

    sliceLoaded = Signal(int)
    loadFinished = Signal()
    windowChanged = Signal()
    crosshairChanged = Signal()
    overlaysChanged = Signal()
    measurementsChanged = Signal()

    def __init__(self, volume: Volume, loaded: np.ndarray | None = None,
                 measurements: list[MeasurementRecord] | None = None, parent: object = None) -> None:
        self.volume = volume
        n = volume.shape[0]
        self.loaded = np.ones(n, dtype=bool) if loaded is None else np.asarray(loaded, dtype=bool).copy()
        self.overlays: list[OverlayLayer] = []
        self.banner = ""
        """A persistent warning every view draws over the image (e.g. AI results outside intended use)."""
        self.measurements: list[MeasurementRecord] = measurements if measurements is not None else []
        self.invert = volume.info.shown_inverted
        self.center, self.width = 127.5, 255.0
        self.voi_function = "LINEAR_EXACT"
        """How the window maps values to grey (a header window's VOI LUT Function, or LUT with ``voi_lut``)."""
        self.voi_lut: VoiLut | None = None
        self._window_set = False
        self.presets: list[WindowPreset] = presets_for(volume.info)
        centre_ijk = (np.array(volume.shape[::-1], dtype=np.float64) - 1) / 2
        first = int(np.argmax(self.loaded)) if self.loaded.any() else 0
        if not self.loaded.all():
            centre_ijk[2] = first
        self.crosshair = volume.index_to_lps(centre_ijk)
        if self.loaded.any():
            self._initial_window(first if not self.loaded.all() else n // 2)
        if self.loaded.all():
            self._show_dicom_overlay()

    # -- loading -----------------------------------------------------------------------------
    @property
    def is_color(self) -> bool:
        return self.volume.is_color

    @property
    def fully_loaded(self) -> bool:
        return bool(self.loaded.all())

    def _initial_window(self, k: int) -> None:
        if self._window_set:
            return
        self._window_set = True
        if self.is_color:
            self.center, self.width = 127.5, 255.0
        else:
            w = initial_window(self.volume.info, self.volume.array[k])
            self.center, self.width, self.voi_function, self.voi_lut = w.center, w.width, w.function, w.lut
        self.windowChanged.emit()

    def set_slice_data(self, k: int, data: np.ndarray) -> None:
        """Store one decoded slice and tell the subscribers."""
        self.receive_slices([(k, data)])

    def receive_slices(self, batch: Iterable[tuple[int, np.ndarray]]) -> None:
        """Decoded slices from the loader (GUI thread): stored (unless the engine filled the volume's own
        array in place), marked loaded, one ``sliceLoaded`` each."""
        for k, data in batch:
            if data.base is not self.volume.array:
                if data.dtype != self.volume.array.dtype and not self.is_color:
                    # the loader's integer guess did not hold (values beyond int16): it decodes again as float32
                    self.volume.array = self.volume.array.astype(data.dtype)
                self.volume.array[k] = data
            self.loaded[k] = True
            self._initial_window(k)
            self.sliceLoaded.emit(k)

    def finish_loading(self, volume: Volume) -> None:
        """Swap in the complete volume (same grid) once every slice has decoded."""
        if volume.array.shape != self.volume.array.shape:
            raise ValueError(f"loaded volume {volume.array.shape} does not match {self.volume.array.shape}")
        self.volume = volume
        self.loaded[:] = True
        self.presets = presets_for(volume.info)
        self._initial_window(volume.shape[0] // 2)
        self._show_dicom_overlay()
        self.loadFinished.emit()

    # -- window ------------------------------------------------------------------------------
    def set_window(self, center: float, width: float, function: str | None = None, lut: VoiLut | None = None) -> None:
        """A new window. ``function`` None keeps the current VOI function (a dragged sigmoid stays a
        sigmoid) except a VOI LUT table, which a dragged window replaces by a plain linear one."""
        if function is None:
            function = "LINEAR_EXACT" if self.voi_function == "LUT" else self.voi_function
        self.center, self.width = float(center), max(float(width), 1e-3)
        self.voi_function, self.voi_lut = function, (lut if function == "LUT" else None)
        self._window_set = True
        self.windowChanged.emit()

    def apply_preset(self, preset: WindowPreset) -> None:
        self.set_window(preset.center, preset.width, preset.function, preset.lut)

    def display_mapping(self) -> tuple[tuple[float, float], np.ndarray | None]:
        """Display levels and optional grey table of the current window (see ``windowing.display_mapping``)."""
        return display_mapping(self.center, self.width, self.voi_function, self.voi_lut)

    def set_invert(self, invert: bool) -> None:
        self.invert = bool(invert)
        self.windowChanged.emit()

    # -- crosshair ---------------------------------------------------------------------------
    def set_crosshair(self, lps: np.ndarray) -> None:
        """Move the shared point (LPS mm), clamped inside the volume."""
        ijk = self.volume.lps_to_index(np.asarray(lps, dtype=np.float64))
        hi = np.array(self.volume.shape[::-1], dtype=np.float64) - 1
        ijk = np.clip(ijk, 0, hi)
        self.crosshair = self.volume.index_to_lps(ijk)
        self.crosshairChanged.emit()

    def crosshair_index(self) -> np.ndarray:
        """Continuous voxel index (i, j, k) of the crosshair."""
        return self.volume.lps_to_index(self.crosshair)

    def current_slice(self) -> int:
        """The acquisition slice (k) holding the crosshair."""
        k = int(np.floor(self.crosshair_index()[2] + 0.5))
        return int(np.clip(k, 0, self.volume.shape[0] - 1))

    def go_to(self, ijk: np.ndarray) -> None:
        """Move the crosshair to a voxel index (i, j, k)."""
        self.set_crosshair(self.volume.index_to_lps(np.asarray(ijk, dtype=np.float64)))

    def value_at(self, ijk: np.ndarray) -> float | tuple[int, ...] | None:
        """Voxel value at the nearest voxel, None outside the volume or on a slice not yet loaded."""
        i, j, k = (int(np.floor(v + 0.5)) for v in ijk)
        n, rows, cols = self.volume.shape
        if not (0 <= i < cols and 0 <= j < rows and 0 <= k < n) or not self.loaded[k]:
            return None
        v = self.volume.array[k, j, i]
        return tuple(int(c) for c in v) if self.is_color else float(v)

    # -- overlays ----------------------------------------------------------------------------
    def overlay(self, name: str) -> OverlayLayer | None:
        return next((o for o in self.overlays if o.name == name), None)

    def _show_dicom_overlay(self) -> None:
        """The series' own DICOM overlay planes (graphics marked on the scanner), drawn opaque in yellow
        above the image as the layer ``DICOM_OVERLAY``."""
        if self.volume.overlay is not None and self.overlay(DICOM_OVERLAY) is None:
            marks = self.volume.overlay  # 0/1 codes read at scale 1: the volume's own array, no copy
            ones = np.ones(marks.shape[0], dtype=np.float32)
            self.add_overlay(OverlayLayer(DICOM_OVERLAY, CodedVolume(marks, ones), mask_lut(), opacity=1.0))

    def set_banner(self, text: str) -> None:
        """Set (or clear with '') the warning every view shows; views repaint through ``overlaysChanged``."""
        if text != self.banner:
            self.banner = text
            self.overlaysChanged.emit()

    def add_overlay(self, overlay: OverlayLayer) -> None:
        """Add (or replace by name) a layer on this volume's grid; its field events also emit
        ``overlaysChanged``."""
        if overlay.array.shape != self.volume.shape:
            raise ValueError(f"overlay {overlay.name!r} has shape {overlay.array.shape}, volume {self.volume.shape}")
        for old in [o for o in self.overlays if o.name == overlay.name]:
            old.events.changed.disconnect(self._on_layer_changed)
        self.overlays = [o for o in self.overlays if o.name != overlay.name] + [overlay]
        overlay.events.changed.connect(self._on_layer_changed)
        self.overlaysChanged.emit()

    def remove_overlay(self, name: str) -> None:
        for old in [o for o in self.overlays if o.name == name]:
            old.events.changed.disconnect(self._on_layer_changed)
        self.overlays = [o for o in self.overlays if o.name != name]
        self.overlaysChanged.emit()

    def _on_layer_changed(self) -> None:
        self.overlaysChanged.emit()

    # -- measurements ------------------------------------------------------------------------
    def add_measurement(self, record: MeasurementRecord) -> None:
        self.measurements.append(record)
        self.measurementsChanged.emit()

    def remove_measurement(self, record: MeasurementRecord) -> None:
        """Delete a measurement (in place: the list is shared with the session's per-series store)."""
        self.measurements[:] = [m for m in self.measurements if m is not record]
        self.measurementsChanged.emit()

    def clear_measurements(self) -> None:
        self.measurements.clear()
        self.measurementsChanged.emit()
