"""Corner annotation text of a view, with a switch that hides identifying fields."""

from __future__ import annotations

from dataclasses import dataclass

from viewer.dicom.volume import SeriesInfo
from viewer.display.orientation import has_patient_geometry
from viewer.display.windowing import window_text


@dataclass(frozen=True)
class ViewState:
    """What the corner text reports about a view."""

    plane: str
    slice_index: int
    n_slices: int
    position_mm: float | None
    center: float
    width: float
    zoom: float
    pending: bool = False


def _date(d: str) -> str:
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d


def _name(n: str) -> str:
    return n.replace("^", " ").strip()


def corner_text(info: SeriesInfo, state: ViewState, hide_identifying: bool = False,
                compact: bool = False, patient: bool = True) -> dict[str, list[str]]:
    """Lines for the ``top_left``, ``top_right``, ``bottom_left`` and ``bottom_right`` corners.

    With ``hide_identifying`` the patient's name, ID, age, sex and the study date are left out.
    ``compact`` (narrow MPR views) keeps one line on top: the patient's name (only when ``patient``) and the
    plane.
    """
    if compact:
        name = "(anonymised)" if hide_identifying else _name(info.patient_name)
        full = corner_text(info, state, hide_identifying)
        return {"top_left": [name] if patient and name else [], "top_right": [state.plane.capitalize()],
                "bottom_left": full["bottom_left"], "bottom_right": full["bottom_right"]}
    top_left: list[str] = []
    if hide_identifying:
        top_left.append("(anonymised)")
    else:
        if info.patient_name:
            top_left.append(_name(info.patient_name))
        pid = " ".join(x for x in (info.patient_id, info.patient_sex, info.patient_age) if x)
        if pid:
            top_left.append(pid)
        if info.study_date:
            top_left.append(_date(info.study_date))
    if info.study_description:
        top_left.append(info.study_description)

    top_right = [x for x in (info.manufacturer, info.model_name) if x][:1]
    series = " ".join(x for x in (f"S{info.series_number}" if info.series_number is not None else "",
                                   info.modality, info.description) if x)
    if series:
        top_right.append(series)
    top_right.append(state.plane.capitalize())

    bottom_left = [f"Im {state.slice_index + 1}/{state.n_slices}" + ("  (loading)" if state.pending else "")]
    if state.position_mm is not None and has_patient_geometry(info):  # frames never placed have no position
        bottom_left.append(f"Pos {state.position_mm:.1f} mm")
    bottom_right = [window_text(state.center, state.width), f"Zoom {state.zoom * 100:.0f}%"]
    return {"top_left": top_left, "top_right": top_right, "bottom_left": bottom_left, "bottom_right": bottom_right}
