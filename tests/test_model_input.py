"""viewer.ai.model_input: models always see MONOCHROME2 polarity, inverted over the stored range."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.conftest import pydicom_data_file, pydicom_test_file
from viewer.ai.model_input import ModelInput, model_input, stored_range_sums
from viewer.dicom import Volume, open_volume
from viewer.dicom.volume import SeriesInfo


def _volume(array: np.ndarray, **info: object) -> Volume:
    return Volume(array=array.astype(np.float32, copy=False), origin=np.zeros(3), spacing=np.ones(3),
                  direction=np.eye(3), sop_instance_uids=[f"1.2.{k}" for k in range(array.shape[0])], info=SeriesInfo(**info))


def test_real_cr_with_rescale_is_inverted_over_its_rescaled_stored_range() -> None:
    """pydicom's CR 6154: MONOCHROME1, BitsStored 12, slope 0.684, intercept 200."""
    path = pydicom_test_file("6154")
    vol = open_volume(path)
    raw = pydicom.dcmread(path).pixel_array.astype(np.float64)
    assert vol.info.monochrome1 and vol.info.bits_stored == 12 and not vol.info.pixel_signed
    assert vol.info.rescale == ((pytest.approx(0.684), pytest.approx(200.0)),)
    expected = 0.684 * (4095 - raw) + 200.0  # the stored value flipped, then rescaled
    np.testing.assert_allclose(model_input(vol)[0], expected, rtol=0, atol=1e-3)


def test_real_chest_radiograph_uses_bits_stored_not_the_data_range() -> None:
    """pydicom-data's RG1_UNCR: MONOCHROME1 chest PA, 15 bits stored; its data spans far less."""
    vol = open_volume(pydicom_data_file("RG1_UNCR.dcm"))
    arr = vol.array[0]
    assert vol.info.bits_stored == 15 and arr.min() > 0 and arr.max() < 2**15 - 1  # the two rules differ here
    x = model_input(vol)[0]
    assert x.dtype == np.float32 and x.shape == arr.shape
    np.testing.assert_array_equal(x, (2**15 - 1) - arr)
    assert vol.array[0] is not x and np.array_equal(vol.array[0], arr)  # the volume itself is untouched


@pytest.mark.parametrize("compression", [None, "jpeg2000"])
def test_a_radiograph_written_both_ways_gives_the_model_identical_input(tmp_path: Path, compression: str | None
                                                                       ) -> None:
    from phantom import make_chest_ct
    from phantom.radiograph import make_chest_radiograph
    from inference.training.recipes import cxr_params
    from viewer.dicom.synthetic import write_radiograph

    rad = make_chest_radiograph(make_chest_ct(cxr_params(4242, voxel_mm=8.0)), seed=3, pixel_spacing=2.0)
    inputs = {}
    for photometric in ("MONOCHROME1", "MONOCHROME2"):
        truth = write_radiograph(rad, tmp_path / f"{photometric}.dcm", modality="DX", photometric=photometric,
                                 bits=12, compression=compression)
        vol = open_volume(truth.path)
        assert vol.info.monochrome1 == (photometric == "MONOCHROME1")
        inputs[photometric] = model_input(vol)[0]
    m2 = inputs["MONOCHROME2"]
    assert 0 < m2.min() and m2.max() < 4095  # data min + max would shift the MONOCHROME1 version
    np.testing.assert_array_equal(inputs["MONOCHROME1"], m2)
    np.testing.assert_array_equal(m2, np.rint(np.clip(rad.image, 0, 1) * 4095))


def test_monochrome2_passes_through_without_a_copy() -> None:
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    view = model_input(_volume(arr, bits_stored=12, rescale=((1.0, 0.0),)))
    assert view.shape == (2, 3, 4) and len(view) == 2
    assert np.shares_memory(view[1], view.array) and np.array_equal(np.asarray(view), view.array)


def test_signed_and_per_slice_rescale_ranges() -> None:
    info = SeriesInfo(monochrome1=True, bits_stored=12, pixel_signed=True, rescale=((1.0, 0.0), (2.0, -1024.0)))
    # signed 12 bits: [-2048, 2047] -> lo + hi = -1; slope 2, intercept -1024: 2 * -1 - 2048
    np.testing.assert_allclose(stored_range_sums(info, 2), [-1.0, -2050.0])
    vol = _volume(np.array([[[5.0]], [[7.0]]]), **vars(info))
    np.testing.assert_allclose(np.asarray(model_input(vol))[:, 0, 0], [-6.0, -2057.0])
    one = replace(info, rescale=((1.0, 0.0),))
    np.testing.assert_allclose(stored_range_sums(one, 3), [-1.0] * 3)
    with pytest.raises(ValueError, match="3 rescale entries for 2 slices"):
        stored_range_sums(replace(info, rescale=((1.0, 0.0),) * 3), 2)


def test_without_bits_stored_each_slice_uses_its_own_data_range() -> None:
    arr = np.array([[[0.0, 10.0, 4.0]], [[100.0, 300.0, 120.0]]])
    for info in ({"bits_stored": None, "rescale": ((1.0, 0.0),)}, {"bits_stored": 12, "rescale": ()}):
        view = model_input(_volume(arr, monochrome1=True, **info))
        np.testing.assert_array_equal(view[0][0], [10.0, 0.0, 6.0])
        np.testing.assert_array_equal(view[1][0], [300.0, 100.0, 280.0])


def test_the_view_reads_slices_when_asked_and_checks_its_input() -> None:
    arr = np.zeros((3, 2, 2), dtype=np.float32)
    view = model_input(_volume(arr, monochrome1=True, bits_stored=8, rescale=((1.0, 0.0),)))
    arr[2] = 55.0  # decoded after the run started (the viewer's progressive load)
    np.testing.assert_array_equal(view[2], np.full((2, 2), 200.0))
    np.testing.assert_array_equal(view[-1], view[2])
    assert view[1:].shape == (2, 2, 2) and view[3:].shape == (0, 2, 2)
    assert view.ndim == 3 and view[[2, 0]].shape == (2, 2, 2)  # lists of slices (the layer inspector's examples)
    np.testing.assert_array_equal(view[np.array([2])][0], view[2])
    assert view[[]].shape == (0, 2, 2)
    with pytest.raises(TypeError):
        view[[0.5]]
    with pytest.raises(IndexError):
        view[3]
    with pytest.raises(ValueError, match="grey"):
        ModelInput(np.zeros((2, 2)))
    colour = Volume(array=np.zeros((1, 2, 2, 3), np.uint8), origin=np.zeros(3), spacing=np.ones(3),
                    direction=np.eye(3), sop_instance_uids=["1"], info=SeriesInfo(stack_id="s1"))
    with pytest.raises(ValueError, match="s1: colour"):
        model_input(colour)


def test_header_without_bits_stored_gives_none(tmp_path: Path) -> None:
    ds = pydicom.dcmread(pydicom_test_file("6154"))
    del ds.BitsStored
    ds.save_as(tmp_path / "nobits.dcm")
    vol = open_volume(tmp_path / "nobits.dcm")
    assert vol.info.bits_stored is None and vol.info.monochrome1
    x = model_input(vol)[0]
    np.testing.assert_allclose(x, float(vol.array.min()) + float(vol.array.max()) - vol.array[0], atol=1e-3)


def test_a_15_bit_film_reaches_a_12_bit_model_on_its_scale() -> None:
    """RG1_UNCR stores 15 bits; the CXR demo model's window is for 12-bit values (``input.stored_bits: 12``):
    without the scaling 94% of the film lies above 4095 and the model sees a white page."""
    from inference.package import read_card
    from viewer.ai.model_input import bit_depth_scale, card_bits

    vol = open_volume(pydicom_data_file("RG1_UNCR.dcm"))
    card = read_card(Path(__file__).resolve().parents[1] / "resources" / "models" / "cxr-nodule-demo")
    assert card_bits(card) == 12 and card_bits(None) is None
    plain, scaled = model_input(vol)[0], model_input(vol, card_bits(card))[0]
    np.testing.assert_allclose(scaled, plain * (4095.0 / 32767.0), rtol=1e-6)
    assert 0.0 <= scaled.min() and scaled.max() <= 4095.0
    assert (plain > 4095).mean() > 0.9 and (scaled >= 4095).mean() < 0.01
    assert 0.3 < float(np.median(scaled)) / 4095 < 0.95  # a film's grey range, not saturated
    info = vol.info
    assert bit_depth_scale(info, 15) == 1.0 and bit_depth_scale(info, None) == 1.0
    assert bit_depth_scale(replace(info, rescale=((1.0, -1024.0),)), 12) == 1.0  # modality units: any depth
    assert bit_depth_scale(replace(info, pixel_signed=True), 12) == 1.0
    assert bit_depth_scale(replace(info, bits_stored=10), 12) == pytest.approx(4095 / 1023)


def test_the_cxr_model_sees_the_real_film_unsaturated_and_still_calls_it_unlike_its_phantoms() -> None:
    """The real PA film against the phantom-trained CXR demo: scaled to 12 bits its OOD distance falls from
    about 12 to about 3.4 times the threshold (the defect was the saturated input), and it stays flagged:
    a real film is unlike the synthetic radiographs the model learnt from."""
    from inference.runner import Runner
    from viewer.ai.model_input import card_bits

    runner = Runner(Path(__file__).resolve().parents[1] / "resources" / "models" / "cxr-nodule-demo", device="cpu")
    assert runner.ood is not None
    vol = open_volume(pydicom_data_file("RG1_UNCR.dcm"))

    def ratio(x: np.ndarray) -> float:
        (res,) = runner.run(np.asarray(x, dtype=np.float32)[None], method="none")
        return float(res.ood[0]) / runner.ood.threshold

    before = ratio(model_input(vol)[0])
    after = ratio(model_input(vol, card_bits(runner.card))[0])
    assert before > 8 and 1.0 < after < before / 2, (before, after)
