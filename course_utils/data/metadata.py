"""Reading the IMDB-WIKI metadata (``wiki.mat`` / ``imdb.mat``) into a pandas table.

The .mat file holds one MATLAB struct (``wiki`` or ``imdb``) whose fields are
row arrays with one value per photo. Dates of birth are MATLAB datenums;
Python's ``date.fromordinal(dob - 366)`` is the same day. The dataset authors
assume every photo was taken on 1 July of ``photo_taken``, so the age in whole
years is ``photo_taken - birth_year``, minus one when the birthday is in July
or later.

A ``.mat`` file is sized up before scipy reads it (``check_mat_sizes``): no
array may hold more than ``MAX_ENTRIES`` values, a variable may hold at most
``MAX_ARRAYS`` arrays (cells included) and unpack to at most
``MAX_UNPACKED_BYTES``, so a small compressed file cannot claim gigabytes of
memory. Anything that is not laid out like IMDB-WIKI's metadata is a
``ValueError`` that names the file.
"""
from __future__ import annotations

import struct as binary
import zlib
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
# imdb.mat, the larger file, has 460,723 entries: 1.4 million arrays (cells of paths, names and face
# boxes), about 160 MB unpacked, and loadmat needs about 1 GB for it.
MAX_ENTRIES = 1_000_000
MAX_ARRAYS = 3_000_000
MAX_UNPACKED_BYTES = 512 << 20  # per variable, as stored in the file once decompressed
# MAT-file v5 element types and array classes (MathWorks, "MAT-File Format", 2019).
_MI_INT8, _MI_INT32, _MI_UINT32, _MI_MATRIX, _MI_COMPRESSED = 1, 5, 6, 14, 15
_MX_CELL, _MX_STRUCT = 1, 2
_CHUNK = 1 << 20


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


class _Variable:
    """The bytes of one top-level variable of a v5 MAT-file, decompressed (zlib) as they are read."""

    def __init__(self, file, nbytes: int, compressed: bool, order: str, mat_path):
        self.file, self.left, self.order, self.mat_path = file, nbytes, order, mat_path
        self.inflate = zlib.decompressobj() if compressed else None
        self.pending, self.unpacked = b"", 0
        self.arrays, self.unaligned = 0, b""

    def read(self, count: int) -> bytes:
        """The next ``count`` bytes (headers only: small)."""
        while len(self.pending) < count:
            self.pending += self._more()
        data, self.pending = self.pending[:count], self.pending[count:]
        self._count(count)
        return data

    def skip(self, count: int) -> None:
        while count > 0:
            if not self.pending:
                self.pending = self._more()
            taken = min(count, len(self.pending))
            self.pending, count = self.pending[taken:], count - taken
            self._count(taken)

    def _more(self) -> bytes:
        data = self.inflate.unconsumed_tail if self.inflate is not None else b""
        if not data:
            data = self.file.read(min(self.left, _CHUNK))
            self.left -= len(data)
            if not data:
                raise ValueError(f"{self.mat_path} is cut short inside a variable")
        data = self.inflate.decompress(data, _CHUNK) if self.inflate is not None else data
        self._count_arrays(data)
        return data

    def _count_arrays(self, data: bytes) -> None:
        """Count array tags: elements start on 8-byte boundaries, and an array's first word is miMATRIX.

        Data that happens to hold that word counts too: an upper bound, cheap enough for every byte.
        """
        data = self.unaligned + data
        whole = len(data) - len(data) % 8
        words = np.frombuffer(data, dtype=self.order + "u4", count=whole // 4)[::2]
        self.arrays += int(np.count_nonzero(words == _MI_MATRIX))
        self.unaligned = data[whole:]
        if self.arrays > MAX_ARRAYS:
            raise ValueError(f"{self.mat_path} holds more than {MAX_ARRAYS:,} arrays (imdb.mat holds 1.4 million); "
                             "it is not read")

    def _count(self, count: int) -> None:
        self.unpacked += count
        if self.unpacked > MAX_UNPACKED_BYTES:
            raise ValueError(f"{self.mat_path} unpacks to more than {MAX_UNPACKED_BYTES >> 20} MB, more than "
                             "IMDB-WIKI's metadata can be; it is not read")


def _element(variable: _Variable, order: str, keep: int = 64) -> tuple[int, int, bytes]:
    """Read one data element -> (type, byte count, its first ``keep`` bytes); the rest is skipped."""
    tag = variable.read(8)
    kind, nbytes = binary.unpack(order + "II", tag)
    if kind >> 16:  # small data element: the byte count in the upper half, its data in the tag's last 4 bytes
        nbytes, kind = kind >> 16, kind & 0xFFFF
        return kind, nbytes, tag[4:4 + nbytes]
    padded = nbytes + (-nbytes) % 8
    head = variable.read(min(keep, padded))
    variable.skip(padded - len(head))
    return kind, nbytes, head[:nbytes]


def _array_header(variable: _Variable, order: str, mat_path) -> tuple[int, int, tuple]:
    """Read an array's tag, flags and dimensions -> (its bytes still to read, array class, dims)."""
    kind, nbytes = binary.unpack(order + "II", variable.read(8))
    if kind != _MI_MATRIX:
        raise ValueError(f"{mat_path} holds an element of type {kind} where an array must be")
    if nbytes == 0:  # an empty array
        return 0, 0, (0, 0)
    start = variable.unpacked
    _, _, flags = _element(variable, order)
    kind, count, data = _element(variable, order)
    if len(flags) < 4 or kind != _MI_INT32 or not count or count % 4 or count > 64:
        raise ValueError(f"{mat_path} holds an array without valid flags or dimensions")
    dims = binary.unpack(order + f"{count // 4}i", data)
    return nbytes - (variable.unpacked - start), binary.unpack(order + "I", flags[:4])[0] & 0xFF, dims


def _entries(dims: tuple, mat_path, what: str) -> int:
    entries = 1
    for size in dims:
        entries *= max(size, 0)
    if entries > MAX_ENTRIES:
        raise ValueError(f"{mat_path}: {what} has {entries:,} entries, more than the {MAX_ENTRIES:,} an IMDB-WIKI "
                         "file can have (imdb.mat has 460,723); it is not read")
    return entries


def check_mat_sizes(mat_path) -> None:
    """Refuse a v5 ``.mat`` with an array (a variable, or a field of a struct) of more than ``MAX_ENTRIES``
    values, or a variable that unpacks beyond ``MAX_UNPACKED_BYTES``. The file is streamed, a chunk at a
    time: scipy.io.loadmat has no way to size a file up before building every array in memory.
    Files of other MAT versions are left to loadmat (v4 is never compressed; v7.3 it refuses).
    """
    with open(mat_path, "rb") as file:
        header = file.read(128)
        if len(header) < 128 or header[126:128] not in (b"IM", b"MI"):
            return
        order = "<" if header[126:128] == b"IM" else ">"
        while len(tag := file.read(8)) == 8:
            kind, nbytes = binary.unpack(order + "II", tag)
            end = file.tell() + nbytes
            if kind in (_MI_MATRIX, _MI_COMPRESSED):
                if kind == _MI_MATRIX:  # let the array reader see its tag
                    file.seek(-8, 1)
                    nbytes += 8
                _check_variable(_Variable(file, nbytes, kind == _MI_COMPRESSED, order, mat_path), order, mat_path)
            file.seek(end)


def _check_variable(variable: _Variable, order: str, mat_path) -> None:
    rest, array_class, dims = _array_header(variable, order, mat_path)
    count = _entries(dims, mat_path, "a variable")
    if array_class != _MX_STRUCT:
        variable.skip(rest)
        return
    _element(variable, order)  # the variable's name
    _, _, length = _element(variable, order)
    name_length = binary.unpack(order + "i", length[:4])[0] if len(length) >= 4 else 0
    _, names_bytes, _ = _element(variable, order)
    fields = names_bytes // name_length if name_length > 0 else 0
    _entries((count, fields), mat_path, "the struct's fields")
    for index in range(count * fields):
        field_rest, _, field_dims = _array_header(variable, order, mat_path)
        _entries(field_dims, mat_path, f"field {index % fields + 1} of the struct")
        variable.skip(field_rest)


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
        check_mat_sizes(mat_path)
        contents = scipy.io.loadmat(str(mat_path))
    except Exception as error:  # scipy and a damaged stream raise several types
        if isinstance(error, ValueError) and str(error).startswith(str(mat_path)):
            raise  # sized up and refused: the message says why
        raise ValueError(f"{mat_path} is not a readable MATLAB file ({error}); "
                         "delete it and download the dataset again") from error
    try:
        return _metadata_table(contents, mat_path)
    except (TypeError, IndexError, KeyError, AttributeError, ValueError, OverflowError) as error:
        if isinstance(error, ValueError) and str(error).startswith(str(mat_path)):
            raise
        raise ValueError(f"{mat_path} is not laid out like IMDB-WIKI's metadata ({type(error).__name__}: "
                         f"{error}); delete it and download the dataset again") from error


REQUIRED_FIELDS = ("dob", "photo_taken", "full_path", "gender", "name", "face_location", "face_score",
                   "second_face_score")


def _metadata_table(contents: dict, mat_path: Path) -> pd.DataFrame:
    variable = contents[_struct_name(contents, mat_path)]
    if not isinstance(variable, np.ndarray) or variable.dtype.names is None or variable.size != 1:
        raise ValueError(f"{mat_path}: its variable is not one struct (a {type(variable).__name__} of shape "
                         f"{getattr(variable, 'shape', None)})")
    struct = variable.reshape(-1)[0]
    missing = [f for f in REQUIRED_FIELDS if f not in struct.dtype.names]
    if missing:
        raise ValueError(f"{mat_path} lacks the fields {missing}")

    def row(field_name):
        return np.asarray(struct[field_name]).ravel()

    lengths = {name: len(row(name)) for name in REQUIRED_FIELDS + (("celeb_id",) if "celeb_id" in struct.dtype.names
                                                                  else ())}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{mat_path}: its fields have different lengths ({lengths}); one per photo is expected")
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
