"""GUI-free reviewer workflow: the durable review store, its summary and its exports."""

from viewer.review.model import (
    ERROR_VERDICTS,
    Flag,
    HeaderAttributes,
    ImageContext,
    ModelInfo,
    Region,
    SliceGeometry,
    StudyHeader,
    Verdict,
    age_band,
)
from viewer.review.store import ReviewStore, ReviewStoreError, default_reviewer, default_store_path

__all__ = [
    "ERROR_VERDICTS", "Flag", "HeaderAttributes", "ImageContext", "ModelInfo", "Region", "ReviewStore",
    "ReviewStoreError", "SliceGeometry", "StudyHeader", "Verdict", "age_band", "default_reviewer",
    "default_store_path",
]
