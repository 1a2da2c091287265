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
from viewer.review.source import SourceError, context_at, context_from_dataset, context_from_stack
from viewer.review.store import (
    FlagConflict,
    NotPermitted,
    ReviewStore,
    ReviewStoreError,
    StoreReadOnly,
    StoreUnavailable,
    default_reviewer,
    default_store_path,
    make_flag,
    store_location,
)

__all__ = [
    "ERROR_VERDICTS", "Flag", "FlagConflict", "HeaderAttributes", "ImageContext", "ModelInfo", "NotPermitted",
    "Region", "ReviewStore", "ReviewStoreError", "SliceGeometry", "SourceError", "StoreReadOnly", "StoreUnavailable",
    "StudyHeader", "Verdict", "age_band", "context_at", "context_from_dataset", "context_from_stack",
    "default_reviewer", "default_store_path", "make_flag", "store_location",
]
