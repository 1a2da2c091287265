"""Qt-free display logic of the viewer: windowing, orientation, MPR planes, measurements,
scale bar, corner annotations, tag trees and settings. numpy only (no Qt, no torch), so every
rule here is tested with plain pytest and reused by the Qt widgets in ``viewer.qt``.
"""
