"""Reading the IMDB-WIKI metadata (``wiki.mat`` / ``imdb.mat``) into a pandas table.

The .mat file holds one MATLAB struct (``wiki`` or ``imdb``) whose fields are
row arrays with one value per photo. Dates of birth are MATLAB datenums;
Python's ``date.fromordinal(dob - 366)`` is the same day. The dataset authors
assume every photo was taken on 1 July of ``photo_taken``, so the age in whole
years is ``photo_taken - birth_year``, minus one when the birthday is in July
or later.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io

# date.toordinal() of 1970-01-01, the zero of numpy's datetime64[D].
_UNIX_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MAX_ORDINAL = date.max.toordinal()
# MATLAB counts days from year 0; Python's ordinal 1 is 0001-01-01.
MATLAB_ORDINAL_OFFSET = 366


def datenum_to_birth_dates(dob) -> pd.Series:
    """MATLAB datenums -> datetime64[s] Series; NaT where the date is impossible (year <= 0 or beyond 9999)."""
    dob = np.asarray(dob, dtype=np.float64).ravel()
    ordinal = dob - MATLAB_ORDINAL_OFFSET
    valid = np.isfinite(ordinal) & (ordinal >= 1) & (ordinal <= _MAX_ORDINAL)
    days = np.where(valid, ordinal, _UNIX_EPOCH_ORDINAL).astype(np.int64) - _UNIX_EPOCH_ORDINAL
    dates = days.astype("datetime64[D]").astype("datetime64[s]")
    dates[~valid] = np.datetime64("NaT")
    return pd.Series(dates, dtype="datetime64[s]")


def age_at_photo(birth_dates: pd.Series, photo_taken) -> np.ndarray:
    """Age in whole years on 1 July of ``photo_taken`` (float, NaN where the birth date is unknown).

    Negative or huge ages are kept: they flag bad records for the filter.
    """
    birth_dates = pd.Series(birth_dates)
    years = birth_dates.dt.year.to_numpy(dtype=np.float64, na_value=np.nan)
    months = birth_dates.dt.month.to_numpy(dtype=np.float64, na_value=np.nan)
    photo_taken = np.asarray(photo_taken, dtype=np.float64).ravel()
    return photo_taken - years - (months >= 7)


def _cell_strings(cells) -> list[str]:
    """MATLAB cell of strings -> list of str; empty cells become ""."""
    out = []
    for cell in np.asarray(cells, dtype=object).ravel():
        values = np.asarray(cell).ravel()
        out.append(str(values[0]) if values.size else "")
    return out


def _face_box(cell) -> np.ndarray:
    """One face_location entry -> 4 floats; a box of the wrong length becomes NaN (an invalid box)."""
    try:
        values = np.asarray(cell, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        values = np.zeros(0)
    return values if values.size == 4 else np.full(4, np.nan)


def _nullable_int(values: np.ndarray) -> pd.Series:
    """Whole numbers as pandas ``Int64``, with <NA> where the value is NaN or infinite."""
    finite = np.isfinite(values)
    return pd.Series(pd.arrays.IntegerArray(np.where(finite, values, 0).astype(np.int64), ~finite))


def _struct_name(contents: dict, mat_path) -> str:
    names = [k for k in contents if not k.startswith("__")]
    for preferred in ("wiki", "imdb"):
        if preferred in names:
            return preferred
    if len(names) == 1:
        return names[0]
    raise ValueError(f"{mat_path}: expected one struct named 'wiki' or 'imdb', found {names}")


def read_imdb_wiki_metadata(mat_path) -> pd.DataFrame:
    """Read ``wiki.mat`` or ``imdb.mat`` -> one row per photo.

    Columns: full_path, name, gender (1 male, 0 female, NaN unknown),
    face_score, second_face_score, face_x1/y1/x2/y2, photo_taken, dob (raw
    datenum, Int64 with <NA> when missing), birth_date (NaT if impossible),
    age (float; NaN if the birth date or photo year is missing or impossible,
    possibly negative or > 100 for bad records) and, for IMDB, celeb_id. A
    face_location that is not 4 numbers gives a NaN box, which the crop step
    counts as an invalid face box.
    """
    mat_path = Path(mat_path)
    if not mat_path.exists():
        raise FileNotFoundError(f"metadata file not found: {mat_path}")
    try:
        contents = scipy.io.loadmat(str(mat_path))
    except Exception as error:  # scipy raises several types for damaged files
        raise ValueError(f"{mat_path} is not a readable MATLAB file ({error}); "
                         "delete it and download the dataset again") from error
    struct = contents[_struct_name(contents, mat_path)][0, 0]
    required = ("dob", "photo_taken", "full_path", "gender", "name",
                "face_location", "face_score", "second_face_score")
    missing = [f for f in required if f not in struct.dtype.names]
    if missing:
        raise ValueError(f"{mat_path} lacks the fields {missing}")

    def row(field_name):
        return np.asarray(struct[field_name]).ravel()

    dob = row("dob").astype(np.float64)
    photo_taken = row("photo_taken").astype(np.float64)
    boxes = np.stack([_face_box(b) for b in row("face_location")]) if len(dob) else np.zeros((0, 4))
    birth_dates = datenum_to_birth_dates(dob)
    table = pd.DataFrame({
        "full_path": _cell_strings(row("full_path")),
        "name": _cell_strings(row("name")),
        "gender": row("gender").astype(np.float64),
        "face_score": row("face_score").astype(np.float64),
        "second_face_score": row("second_face_score").astype(np.float64),
        "face_x1": boxes[:, 0], "face_y1": boxes[:, 1],
        "face_x2": boxes[:, 2], "face_y2": boxes[:, 3],
        # Nullable integers: a NaN year or datenum stays missing instead of becoming int64's minimum.
        "photo_taken": _nullable_int(photo_taken),
        "dob": _nullable_int(dob),
        "birth_date": birth_dates,
    })
    table["age"] = age_at_photo(birth_dates, photo_taken)
    if "celeb_id" in struct.dtype.names:
        table["celeb_id"] = row("celeb_id").astype(np.int64)
    return table
