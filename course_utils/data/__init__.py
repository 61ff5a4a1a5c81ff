"""Data layer of the course: IMDB-WIKI metadata, cleaning, face crops, the cache and mini-wiki.

Typical use::

    from course_utils.data import load_face_cache
    faces = load_face_cache()          # mini-wiki unless FACE_AGING_DATASET says otherwise
    faces.images, faces.table, faces.funnel
"""
from .cache import FaceCache, latest_face_settings, load_face_cache
from .crops import DEFAULT_MARGIN, crop_faces, load_face_crop, square_crop_box
from .download import dataset_folder, download_dataset, safe_extract
from .filtering import (DEFAULT_AGE_GROUPS, assign_age_groups, balance_classes, filter_faces,
                        group_label_names, identity_keys, split_by_identity)
from .metadata import age_at_photo, datenum_to_birth_dates, read_imdb_wiki_metadata
from .mini_wiki import build_mini_wiki, read_sidecar, render_ground_truth
from .synthetic_faces import Identity, random_identity, render_photo

__all__ = [
    "DEFAULT_AGE_GROUPS", "DEFAULT_MARGIN", "FaceCache", "Identity", "age_at_photo", "assign_age_groups",
    "balance_classes", "build_mini_wiki", "crop_faces", "dataset_folder", "datenum_to_birth_dates",
    "download_dataset", "filter_faces", "group_label_names", "identity_keys", "latest_face_settings", "load_face_cache",
    "load_face_crop", "random_identity", "read_imdb_wiki_metadata", "read_sidecar", "render_ground_truth",
    "render_photo", "safe_extract", "split_by_identity", "square_crop_box",
]
