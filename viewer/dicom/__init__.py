"""GUI-free DICOM series engine: scan, group, sort, decode, geometry (no Qt, no torch).

Public API::

    from viewer.dicom import scan, load_volume, open_volume, ScanResult, Stack, FileError, Volume, SeriesInfo

    result = scan(paths, progress=None, cancel=None)
                                     # files, folders (recursive), .zip, DICOMDIR; headers only;
                                     #   progress(done, total) every 64 files; cancel: threading.Event
    result.stacks                    # list[Stack]: by study, then series; one series may split into
                                     #   several stacks (orientation/size change, localizer):
                                     #   stack.stack_id is the series UID, then "UID.2", "UID.3"...
    result.errors                    # list[FileError(path, error)]: DICOM files that cannot be used
    result.find(uid)                 # largest stack of a series UID (or stack id); largest overall if None

    stack.info (SeriesInfo), stack.n_slices, stack.rows, stack.columns,
    stack.spacing_zyx (slice, row, col mm), stack.warnings, stack.sop_instance_uids,
    stack.files, stack.frame_numbers, stack.origin / spacing (x, y, z) / direction (LPS, ITK)
    stack.read_header(k)             # full pydicom Dataset of slice k's file (no pixels), for tag browsers

    vol = load_volume(stack, on_slice=None, cancel=None, workers=None, first=0, integers=False)
        # parallel decode (threads); on_slice(k, slice) runs for slice `first` in the calling thread
        # before the rest starts, then from worker threads as each slice lands.
        # cancel: threading.Event -> raises LoadCancelled. integers=True: int16/uint16 when the
        # modality values are integers that fit (the viewer and convert), else float32.
    vol.missing / vol.interpolated  # per-slice masks: gaps kept in place, variable pitch resampled
    vol = open_volume(paths, series_uid=None)   # scan + find + load
    viewer.dicom.writers.write_volume(vol, "out.nii.gz" | ".nrrd" | ".mha" | ".npz")  # what `convert` writes

Errors: ``FileError(path, error)`` in ``result.errors`` for files that cannot be used (scan time:
truncated, absurd sizes, missing decoder...); ``DicomFileError`` (``.path``, ``.reason``) when a
stack cannot be decoded at all; a single failing slice is blanked and named in ``vol.warnings``.
Speed: ordinary little-endian headers are read by a small walker (:mod:`viewer.dicom.fastheader`),
uncompressed pixels straight from their file offset with numpy; python-gdcm is used only for
transfer syntaxes no other plugin decodes (it aborts the process on corrupt JPEG data).

Volumes are float32 in modality units (HU for CT) ``(k, j, i)`` (or the stored integers with
``integers=True``), or uint8 RGB ``(k, j, i, 3)``; slices are sorted by position along the slice normal
and sit on a uniform grid at their true positions (:mod:`viewer.dicom.grid`). MONOCHROME1 is flagged in
``info.monochrome1``, never inverted in the data; the header's VOI windows are ``info.windows``.
See :mod:`viewer.dicom.volume` for the geometry conventions and :mod:`viewer.dicom.stacks` for how
gantry tilt, gaps and duplicate positions are handled.
"""

from viewer.dicom.errors import DicomFileError, FileError, NoSeriesError
from viewer.dicom.loader import LoadCancelled, load_volume, open_volume
from viewer.dicom.scan import ScanResult, scan
from viewer.dicom.stacks import Stack
from viewer.dicom.volume import SeriesInfo, Volume, WindowPreset

__all__ = [
    "DicomFileError",
    "FileError",
    "LoadCancelled",
    "NoSeriesError",
    "ScanResult",
    "SeriesInfo",
    "Stack",
    "Volume",
    "WindowPreset",
    "load_volume",
    "open_volume",
    "scan",
]
