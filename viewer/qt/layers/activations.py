"""Activations tab: the selected layer's channels on the shown image, sorted; a channel over the image."""

from __future__ import annotations


import numpy as np

from viewer.display.channels import SORT_KEYS, channel_order, resize_to_native
from viewer.qt.qt import Qt, QtCore, QtGui, QtWidgets
from viewer.qt.layers.widgets import (HColorBar, colour_image, solid_lut)
from viewer.qt.layers.core import GRID_CHANNELS, TILE_PX, LayersCore

class ActivationsTab(LayersCore):
    """Activations tab: the selected layer's channels on the shown image, sorted; a channel over the image."""

    def _build_activations(self) -> QtWidgets.QWidget:
        W = QtWidgets
        w = W.QWidget()
        lay = W.QVBoxLayout(w)
        row = W.QHBoxLayout()
        row.addWidget(W.QLabel("Sort channels by"))
        self.sort_combo = W.QComboBox()
        self.sort_combo.addItems([f"{k} activation" for k in SORT_KEYS])
        self.sort_combo.currentIndexChanged.connect(lambda _i: self._show_grid())
        row.addWidget(self.sort_combo)
        row.addStretch(1)
        lay.addLayout(row)
        self.act_caption = W.QLabel("")
        self.act_caption.setWordWrap(True)
        lay.addWidget(self.act_caption)
        self.grid = W.QListWidget()
        self.grid.setViewMode(W.QListView.ViewMode.IconMode)
        self.grid.setIconSize(QtCore.QSize(TILE_PX, TILE_PX))
        self.grid.setResizeMode(W.QListView.ResizeMode.Adjust)
        self.grid.setMovement(W.QListView.Movement.Static)
        self.grid.setSpacing(4)
        self.grid.setUniformItemSizes(True)
        # the selected tile keeps its colours (a frame, not Qt's tinted fill)
        self.grid.setStyleSheet("QListWidget::item:selected { background: transparent; border: 2px solid #3af; "
                                "color: #6cf; }")
        self.grid.itemSelectionChanged.connect(self._on_grid_selection)
        lay.addWidget(self.grid, 1)
        self.act_bar = HColorBar("tiles: activation (one scale for all tiles)")
        lay.addWidget(self.act_bar)
        self.overlay_bar = HColorBar("over the image: selected channel")
        lay.addWidget(self.overlay_bar)
        self.overlay_check = W.QCheckBox("Show the selected channel over the image")
        self.overlay_check.setChecked(True)
        self.overlay_check.toggled.connect(lambda _v: self._show_channel_overlay())
        lay.addWidget(self.overlay_check)
        return w

    def _show_grid(self) -> None:
        maps = self.maps
        if maps is None:
            return
        key = SORT_KEYS[max(self.sort_combo.currentIndex(), 0)]
        order = channel_order(maps, key)[:GRID_CHANNELS]
        hi = float(max(maps.max(), 1e-12))
        lo = float(min(maps.min(), 0.0))
        lut = solid_lut("hot")
        means = maps.reshape(maps.shape[0], -1).mean(1)
        self.grid.blockSignals(True)
        self.grid.clear()
        for c in order:
            pix = QtGui.QPixmap.fromImage(colour_image(maps[c], lo, hi, lut)).scaled(
                TILE_PX, TILE_PX, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
            icon = QtGui.QIcon(pix)
            icon.addPixmap(pix, QtGui.QIcon.Mode.Selected)  # no tint: the frame marks the selection
            item = QtWidgets.QListWidgetItem(icon, f"#{c}  {means[c]:.3g}")
            item.setData(Qt.ItemDataRole.UserRole, int(c))
            item.setToolTip(f"channel {c}: mean {means[c]:.4g}, max {maps[c].max():.4g}")
            self.grid.addItem(item)
        self.grid.blockSignals(False)
        h, w = maps.shape[-2:]
        self.act_caption.setText(f"<b>{self.layer}</b> on {self.selection.slice_text}: {maps.shape[0]} channels of "
                                 f"{h} x {w}; top {len(order)} by {key} (caption: channel, mean)")
        self.act_bar.set_range(lo, hi, "tiles: activation (one scale for all tiles)", lut)
        channel = self.selection.shown_channel()  # until the user picks one: the most active here
        if channel is not None:
            self._select_channel(channel)

    def set_channel(self, channel: int) -> None:
        """Select a channel of the current layer (the user's choice: it stays when the slice changes)."""
        self.selection.pick_channel(channel)
        self._select_channel(channel)

    def _select_channel(self, channel: int) -> None:
        """Highlight ``channel`` and show its map over the image."""
        self.channel = int(channel)
        self.grid.blockSignals(True)
        for i in range(self.grid.count()):
            item = self.grid.item(i)
            item.setSelected(item.data(Qt.ItemDataRole.UserRole) == self.channel)
        self.grid.blockSignals(False)
        self._show_channel_overlay()
        self.channelChanged.emit(self.channel)

    def _on_grid_selection(self) -> None:
        items = self.grid.selectedItems()
        if items:
            self.set_channel(int(items[0].data(Qt.ItemDataRole.UserRole)))

    def _show_channel_overlay(self) -> None:
        target = self.shown_target
        if self.maps is None or self.channel is None or self.series is None or target is None:
            return
        if not self.overlay_check.isChecked():
            self._clear_overlay()
            return
        m = self.maps[self.channel]
        native = resize_to_native(m, target.shape)
        lo, hi = float(m.min()), float(m.max())
        span = hi - lo if hi > lo else 1.0
        self._overlay(np.clip((native - lo) / span, 0, 1), target, "hot", 0.65)
        self.overlay_bar.set_range(lo, hi, f"over the image: {self.layer} channel #{self.channel} "
                                           f"({target.text}, its own min .. max)", solid_lut("hot"))
