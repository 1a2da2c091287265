"""Qt-free display rules: MPR planes, orientation letters, scale bar."""

from __future__ import annotations

import numpy as np
import pytest

from viewer.dicom.volume import Volume
from viewer.display.orientation import direction_from_patient_orientation, direction_letters, edge_letters
from viewer.display.planes import Plane, clamp_slice, is_orthogonal
from viewer.display.scalebar import format_mm, scale_bar_length

AXIAL = np.eye(3)
# Sagittal acquisition: columns run posterior (+y), rows run inferior (-z), slices run left (+x).
SAGITTAL = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
# Coronal acquisition: columns run left (+x), rows inferior (-z), slices posterior... (x) cross (-z) = +y.
CORONAL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def _volume(direction: np.ndarray, shape=(7, 9, 11), spacing=(0.5, 0.8, 2.5)) -> Volume:
    arr = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    return Volume(arr, origin=(10.0, -20.0, 30.0), spacing=spacing, direction=direction,
                  sop_instance_uids=[""] * shape[0])


def test_letters_axis_and_oblique() -> None:
    assert direction_letters(np.array([1.0, 0, 0])) == "L"
    assert direction_letters(np.array([0, -1.0, 0])) == "A"
    assert direction_letters(np.array([0.8, -0.6, 0])) == "LA"
    assert direction_letters(np.array([0, 0, 0.0])) == ""
    assert edge_letters(np.array([1.0, 0, 0]), np.array([0, 1.0, 0])) == {
        "left": "R", "right": "L", "top": "A", "bottom": "P"}


@pytest.mark.parametrize("direction", [AXIAL, SAGITTAL, CORONAL], ids=["axial", "sagittal", "coronal"])
def test_views_follow_display_conventions(direction: np.ndarray) -> None:
    expected = {
        "axial": {"left": "R", "right": "L", "top": "A", "bottom": "P"},
        "coronal": {"left": "R", "right": "L", "top": "S", "bottom": "I"},
        "sagittal": {"left": "A", "right": "P", "top": "S", "bottom": "I"},
    }
    for name, letters in expected.items():
        assert Plane.for_view(name, direction).letters(direction) == letters, name


def test_flipped_acquisition_is_labelled_as_stored() -> None:
    flipped = np.diag([-1.0, 1.0, -1.0])  # columns run right, slices run inferior
    acq = Plane.for_view("acquisition", flipped)
    assert acq.letters(flipped) == {"left": "L", "right": "R", "top": "A", "bottom": "P"}
    axial = Plane.for_view("axial", flipped)
    assert axial.flip_col and not axial.flip_row
    assert axial.letters(flipped)["left"] == "R"


def test_oblique_letters_come_from_cosines() -> None:
    t = np.radians(30)
    rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1.0]])
    letters = Plane.for_view("acquisition", rot).letters(rot)
    assert letters["right"] == "LP" and letters["top"] == "AL"


@pytest.mark.parametrize("direction", [AXIAL, SAGITTAL, CORONAL], ids=["axial", "sagittal", "coronal"])
def test_plane_coordinates_roundtrip_to_the_same_voxel(direction: np.ndarray) -> None:
    vol = _volume(direction)
    ijk = np.array([3.0, 5.0, 2.0])  # i, j, k
    value = vol.array[2, 5, 3]
    for name in ("acquisition", "axial", "coronal", "sagittal"):
        plane = Plane.for_view(name, vol.direction)
        col, row, s = plane.index_to_plane(ijk, vol.shape)
        img = plane.image(vol.array, int(s))
        assert img[int(row), int(col)] == value, name
        np.testing.assert_allclose(plane.plane_to_index(col, row, s, vol.shape), ijk)
        # spacing: the screen x step is the spacing of the array axis running across
        sx, sy = plane.pixel_spacing(vol.spacing)
        right, down = plane.screen_vectors(vol.direction)
        p0 = vol.index_to_lps(plane.plane_to_index(col, row, s, vol.shape))
        p1 = vol.index_to_lps(plane.plane_to_index(col + 1, row, s, vol.shape))
        p2 = vol.index_to_lps(plane.plane_to_index(col, row + 1, s, vol.shape))
        np.testing.assert_allclose(p1 - p0, right * sx, atol=1e-9)
        np.testing.assert_allclose(p2 - p0, down * sy, atol=1e-9)


def test_axial_reformat_of_sagittal_puts_right_on_screen_left() -> None:
    vol = _volume(SAGITTAL)
    plane = Plane.for_view("axial", vol.direction)
    rows, cols = plane.image_shape(vol.shape)
    img = plane.image(vol.array, 0)
    assert img.shape == (rows, cols)
    # the LPS x of screen column 0 is smaller (more to the patient's right) than of the last column
    x0 = vol.index_to_lps(plane.plane_to_index(0, 0, 0, vol.shape))[0]
    x1 = vol.index_to_lps(plane.plane_to_index(cols - 1, 0, 0, vol.shape))[0]
    assert x0 < x1
    assert plane.pixel_spacing(vol.spacing) == (2.5, 0.5)  # slices across, columns (y) down


def test_colour_images_keep_their_channels() -> None:
    arr = np.zeros((2, 4, 5, 3), dtype=np.uint8)
    arr[1, 2, 3] = (255, 0, 0)
    plane = Plane.for_view("coronal", SAGITTAL)
    col, row, s = plane.index_to_plane(np.array([3, 2, 1]), arr.shape[:3])
    img = plane.image(arr, int(s))
    assert img.shape[-1] == 3 and tuple(img[int(row), int(col)]) == (255, 0, 0)


def test_unknown_view_is_refused() -> None:
    with pytest.raises(ValueError, match="known: acquisition"):
        Plane.for_view("oblique", AXIAL)


def test_clamp_slice() -> None:
    assert clamp_slice(-3.2, 5) == 0 and clamp_slice(2.6, 5) == 3 and clamp_slice(99, 5) == 4


def test_scale_bar_picks_round_lengths() -> None:
    assert scale_bar_length(0.5, 120) == (50.0, 100.0)
    assert scale_bar_length(1.0, 120)[0] == 100.0
    assert scale_bar_length(0.07, 120)[0] == 5.0
    assert format_mm(50) == "5 cm" and format_mm(5) == "5 mm"
    with pytest.raises(ValueError):
        scale_bar_length(0, 100)


def test_patient_orientation_of_a_pa_chest_film() -> None:
    d = direction_from_patient_orientation(["L", "F"])
    assert d is not None
    assert Plane.for_view("acquisition", d).letters(d) == {"left": "R", "right": "L", "top": "S",
                                                           "bottom": "I"}
    ap = direction_from_patient_orientation(["R", "F"])
    assert Plane.for_view("acquisition", ap).letters(ap)["left"] == "L"
    assert direction_from_patient_orientation(["LA", "F"])[:, 0] == pytest.approx([2**-0.5, -(2**-0.5), 0])
    assert direction_from_patient_orientation(None) is None
    assert direction_from_patient_orientation(["L", "L"]) is None
    assert direction_from_patient_orientation(["X", "F"]) is None


def test_gantry_tilt_is_detected() -> None:
    t = np.radians(15)
    tilted = np.array([[1.0, 0, 0], [0, 1.0, np.sin(t)], [0, 0, np.cos(t)]])
    assert is_orthogonal(np.eye(3)) and is_orthogonal(SAGITTAL) and not is_orthogonal(tilted)
    sagittal = Plane.for_view("sagittal", tilted)
    assert sagittal.letters(tilted) == {"left": "A", "right": "P", "top": "S", "bottom": "I"}  # drawn sheared
    assert sagittal.scene_matrix(tilted, np.array([0.5, 0.8, 2.0]))[0, 1] == pytest.approx(-2.0 * np.sin(t))
    coronal = Plane.for_view("coronal", tilted)  # an oblique plane: its vertical runs along the tilt
    assert coronal.letters(tilted)["top"] == "SP"


def test_slice_position_reads_the_patient_axis_whatever_the_acquired_order() -> None:
    """The axial view of a sagittal acquisition (rows run to the feet) reads z, superior positive, as the axial
    view of an axial series does at the same height; an axial series stored feet-to-head or head-to-feet too."""
    from viewer.display.planes import slice_position_mm

    sagittal = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # columns: i (P), j (F), k (R)
    origin = np.array([40.0, -100.0, 120.0])
    spacing = np.array([0.7, 0.8, 2.0])  # (column, row, slice) mm
    axial_view = Plane.for_view("axial", sagittal)
    # row j of the sagittal series lies at z = 120 - 0.8 j
    for j in (0, 10, 75):
        assert slice_position_mm(axial_view, origin, spacing, sagittal, j) == pytest.approx(120.0 - 0.8 * j)
    sagittal_view = Plane.for_view("sagittal", sagittal)  # slices k run to the right: x = 40 - 2 k
    assert slice_position_mm(sagittal_view, origin, spacing, sagittal, 5) == pytest.approx(40.0 - 10.0)
    for normal in (1.0, -1.0):  # IOP (1,0,0,0,1,0) with slices stacked upwards, and a flipped stack
        axial = np.diag([1.0, 1.0, normal])
        view = Plane.for_view("axial", axial)
        assert slice_position_mm(view, np.array([0.0, 0.0, 50.0]), np.array([0.7, 0.7, 2.5]), axial, 4) == \
            pytest.approx(50.0 + normal * 10.0)
