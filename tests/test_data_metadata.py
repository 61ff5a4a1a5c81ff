"""Reading IMDB-WIKI metadata: MATLAB dates, the 1 July age rule and the cleaning funnel."""
import struct
import zlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io

from course_utils.data import filter_faces, read_imdb_wiki_metadata
from course_utils.data.metadata import age_at_photo, datenum_to_birth_dates
from course_utils.data.mini_wiki import cell_row


def datenum(year, month, day):
    """MATLAB datenum, computed independently of the code under test."""
    return date(year, month, day).toordinal() + 366


def write_real_layout_mat(path, rows, struct_name="wiki", celeb=False, date_dtype=None):
    """A .mat laid out like the real wiki.mat: one struct of 1xN rows, cells for strings and boxes."""
    n = len(rows)
    struct = {
        "dob": np.array([[r["dob"] for r in rows]], dtype=date_dtype or np.int32),
        "photo_taken": np.array([[r["photo_taken"] for r in rows]], dtype=date_dtype or np.uint16),
        "full_path": cell_row(np.array([r["full_path"]]) for r in rows),
        "gender": np.array([[r["gender"] for r in rows]], dtype=np.float64),
        "name": cell_row(np.array([r["name"]]) if r["name"] else np.array([], dtype="<U1") for r in rows),
        "face_location": cell_row(np.array([r["box"]], dtype=np.float64) for r in rows),
        "face_score": np.array([[r["face_score"] for r in rows]], dtype=np.float64),
        "second_face_score": np.array([[r["second"] for r in rows]], dtype=np.float64),
    }
    if celeb:
        struct["celeb_id"] = np.arange(1, n + 1, dtype=np.uint16)[None, :]
        struct["celeb_names"] = cell_row(np.array([f"Celeb {i}"]) for i in range(n))
    scipy.io.savemat(str(path), {struct_name: struct})
    return path


def row(i, born=(1980, 3, 1), taken=2010, score=3.0, second=np.nan, gender=1.0, name=None, dob=None):
    return {"dob": datenum(*born) if dob is None else dob, "photo_taken": taken,
            "full_path": f"{i % 100:02d}/{1000 + i}_x_{taken}.jpg", "gender": gender,
            "name": f"Person {i}" if name is None else name, "box": [10.0 + i, 20.0, 110.0, 140.0],
            "face_score": score, "second": second}


def test_datenum_matches_matlab():
    # MATLAB: datenum(2000, 1, 1) == 730486, datenum(1981, 5, 5) == 723671.
    dates = datenum_to_birth_dates([730486, 723671])
    assert list(dates.dt.date) == [date(2000, 1, 1), date(1981, 5, 5)]


@pytest.mark.parametrize("born, taken, expected", [
    ((1981, 1, 1), 2009, 28),
    ((1981, 6, 30), 2009, 28),   # birthday before 1 July: already had it
    ((1981, 7, 1), 2009, 27),    # July or later counts as not yet
    ((1981, 12, 31), 2009, 27),
    ((2009, 8, 1), 2009, -1),    # born after the assumed photo date: negative, kept for the filter
])
def test_age_follows_the_1_july_rule(born, taken, expected):
    ages = age_at_photo(datenum_to_birth_dates([datenum(*born)]), [taken])
    assert ages[0] == expected


def test_impossible_dates_give_nan_not_errors():
    # year 0 / negative ordinals (seen in imdb.mat) and beyond year 9999
    dates = datenum_to_birth_dates([0, 366, 10, datenum(9999, 12, 31) + 5, datenum(11, 3, 4)])
    assert dates.isna().tolist() == [True, True, True, True, False]
    ages = age_at_photo(dates, [2000] * 5)
    assert np.isnan(ages[:4]).all()
    assert ages[4] == 1989  # year 11: absurd but computable, removed later by the age filter


def test_reads_real_layout_including_empty_names_and_imdb_fields(tmp_path):
    rows = [row(0), row(1, name=""), row(2, born=(1990, 7, 15), taken=2015, gender=np.nan)]
    path = write_real_layout_mat(tmp_path / "imdb.mat", rows, struct_name="imdb", celeb=True)
    table = read_imdb_wiki_metadata(path)
    assert len(table) == 3
    assert table["name"].tolist() == ["Person 0", "", "Person 2"]
    assert table["full_path"].tolist()[0] == "00/1000_x_2010.jpg"
    assert table.loc[0, ["face_x1", "face_y1", "face_x2", "face_y2"]].tolist() == [10.0, 20.0, 110.0, 140.0]
    assert table["age"].tolist() == [30.0, 30.0, 24.0]
    assert np.isnan(table.loc[2, "gender"])
    assert table["celeb_id"].tolist() == [1, 2, 3]
    assert table.loc[1, "dob"] == datenum(1980, 3, 1)
    for column in ("second_face_score", "photo_taken", "birth_date", "face_score"):
        assert column in table


def test_missing_or_wrong_file_gives_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_imdb_wiki_metadata(tmp_path / "nope.mat")
    bad = tmp_path / "bad.mat"
    bad.write_bytes(b"not a mat file at all" * 20)
    with pytest.raises(ValueError, match="not a readable MATLAB file"):
        read_imdb_wiki_metadata(bad)


def crafted_rows():
    """40 photos with known defects, mirroring the real wiki.mat's kinds."""
    rows = [row(i) for i in range(20)]                                    # 20 good
    rows[0] = row(0, born=(1910, 3, 1), taken=2010)                       # age exactly 100: kept
    rows[1] = row(1, born=(2010, 2, 1), taken=2010)                       # age exactly 0: kept
    rows[2] = row(2, name="")                                              # empty name: kept
    rows += [{**row(20 + i, score=-np.inf), "box": [1.0, 1.0, 1.0, 1.0]} for i in range(5)]  # no face
    rows += [row(25 + i, score=0.5) for i in range(3)]                     # low score
    rows += [row(28 + i, second=1.7) for i in range(3)]                    # second face
    rows += [row(31, second=2.1, born=(2012, 1, 1), taken=2010)]           # second face AND bad age
    rows += [row(32, born=(2012, 1, 1), taken=2010), row(33, born=(2011, 9, 1), taken=2011)]  # age < 0
    rows += [row(34, born=(11, 5, 3)), row(35, born=(1905, 1, 1), taken=2010)]  # age > 100
    rows += [row(36, dob=0)]                                               # impossible date
    rows += [row(37 + i, gender=np.nan) for i in range(3)]                 # unknown gender
    return rows


def test_funnel_counts_on_a_real_layout_mat(tmp_path):
    table = read_imdb_wiki_metadata(write_real_layout_mat(tmp_path / "wiki.mat", crafted_rows()))
    assert len(table) == 40
    kept, funnel = filter_faces(table, require_gender=True)
    assert list(funnel.columns) == ["rule", "removed", "remaining"]
    assert funnel["rule"].tolist() == ["all entries", "no face", "low face score", "second face",
                                       "age invalid or outside 0-100", "unknown gender"]
    assert funnel["removed"].tolist() == [0, 5, 3, 4, 5, 3]
    assert funnel["remaining"].tolist() == [40, 35, 32, 28, 23, 20]
    assert len(kept) == 20 and kept["age"].between(0, 100).all()

    kept_any_gender, funnel = filter_faces(table)
    assert len(kept_any_gender) == 23 and funnel["rule"].iloc[-1].startswith("age")


def test_filter_options(tmp_path):
    table = read_imdb_wiki_metadata(write_real_layout_mat(tmp_path / "wiki.mat", crafted_rows()))
    kept, funnel = filter_faces(table, min_face_score=0.0, single_face=False, age_range=(0, 200))
    # low scores and second faces kept; out: no face (5), age < 0 (3), year-11 birth (age 1999), dob 0
    assert "second face" not in funnel["rule"].tolist()
    assert len(kept) == 40 - 5 - 3 - 2
    with pytest.raises(ValueError, match="empty"):
        filter_faces(table, age_range=(50, 10))


def test_reading_is_vectorised_and_fast(tmp_path):
    import time

    rows = crafted_rows() * 250  # 10,000 rows
    path = write_real_layout_mat(tmp_path / "wiki.mat", rows)
    started = time.perf_counter()
    table = read_imdb_wiki_metadata(path)
    assert len(table) == 10_000
    assert time.perf_counter() - started < 2.0
    assert isinstance(table["birth_date"].dtype, type(pd.Series(dtype="datetime64[s]").dtype))


def test_nan_dates_scores_and_wrong_length_boxes_are_counted_defects(tmp_path):
    rows = [row(i) for i in range(6)]
    rows += [row(6, dob=np.nan), row(7, taken=np.nan)]                    # NaN dob / NaN photo_taken
    rows += [row(8, score=np.nan), row(9, score=np.inf)]                  # NaN / +inf face score
    rows += [{**row(10), "box": [1.0, 2.0, 3.0]}, {**row(11), "box": [1.0, 2.0, 3.0, 4.0, 5.0]}]
    table = read_imdb_wiki_metadata(write_real_layout_mat(tmp_path / "wiki.mat", rows, date_dtype=np.float64))
    assert len(table) == 12
    assert table.loc[6, "dob"] is pd.NA and table.loc[7, "photo_taken"] is pd.NA  # not int64's minimum
    assert table["dob"].dropna().min() > 0 and np.isnan(table.loc[6, "age"]) and np.isnan(table.loc[7, "age"])
    assert table.loc[[10, 11], ["face_x1", "face_y1", "face_x2", "face_y2"]].isna().all().all()
    kept, funnel = filter_faces(table)
    removed = funnel.set_index("rule")["removed"]
    assert removed["low face score"] == 2 and removed["age invalid or outside 0-100"] == 2
    assert sorted(kept.index) == [0, 1, 2, 3, 4, 5, 10, 11]
    assert np.isfinite(kept["face_score"]).all()


# ---------------------------------------------------------------- hostile and malformed .mat files

def mat_element(kind: int, data: bytes, pad: bool = True) -> bytes:
    """One MAT v5 data element: type, byte count, data (padded to 8 bytes, as inside arrays)."""
    return struct.pack("<II", kind, len(data)) + data + (bytes(-len(data) % 8) if pad else b"")


def mat_array(array_class: int, dims, body: bytes = b"", name: bytes = b"") -> bytes:
    """An miMATRIX element: flags (class), dimensions, name, then ``body`` (cells, fields or data)."""
    header = (mat_element(6, struct.pack("<II", array_class, 0)) + mat_element(5, struct.pack(f"<{len(dims)}i", *dims))
              + mat_element(1, name))
    return mat_element(14, header + body)


EMPTY_ARRAY = struct.pack("<II", 14, 0)  # an empty array is its tag alone (8 bytes; loadmat makes an object of it)
CELL, STRUCT, DOUBLE = 1, 2, 6


def compressed_wiki_mat(path, fields: dict) -> Path:
    """A wiki.mat written by hand: one compressed 1x1 struct ``wiki`` with the given field arrays."""
    names = b"".join(name.encode().ljust(32, b"\0") for name in fields)
    body = mat_element(5, struct.pack("<i", 32)) + mat_element(1, names) + b"".join(fields.values())
    variable = mat_array(STRUCT, (1, 1), body, name=b"wiki")
    header = b"MATLAB 5.0 MAT-file, written by a test".ljust(116) + bytes(8) + struct.pack("<H", 0x0100) + b"IM"
    path.write_bytes(header + mat_element(15, zlib.compress(variable, 9), pad=False))
    return path


def test_a_handwritten_mat_reads_like_a_scipy_one(tmp_path):
    """The writer below is faithful: scipy reads what it writes."""
    doubles = mat_array(DOUBLE, (1, 2), mat_element(9, struct.pack("<2d", 1.5, 2.5)))
    path = compressed_wiki_mat(tmp_path / "wiki.mat", {"dob": doubles, "full_path": mat_array(CELL, (1, 2),
                                                                                              EMPTY_ARRAY * 2)})
    wiki = scipy.io.loadmat(str(path))["wiki"][0, 0]
    assert wiki["dob"].tolist() == [[1.5, 2.5]] and wiki["full_path"].shape == (1, 2)


@pytest.mark.parametrize("shape", ["5 million entries", "5 million nested arrays"])
def test_a_small_mat_claiming_millions_of_arrays_is_refused_before_it_is_read(tmp_path, shape):
    import time

    if shape == "5 million entries":
        full_path = mat_array(CELL, (1, 5_000_000), EMPTY_ARRAY * 5_000_000)
    else:  # 1000 cells of 5000 each: no array too long, too many arrays
        inner = mat_array(CELL, (1, 5000), EMPTY_ARRAY * 5000)
        full_path = mat_array(CELL, (1, 1000), inner * 1000)
    path = compressed_wiki_mat(tmp_path / "wiki.mat", {"full_path": full_path})
    assert path.stat().st_size < 1_000_000
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"wiki\.mat.*(5,000,000 entries|more than 3,000,000 arrays).*not read"):
        read_imdb_wiki_metadata(path)
    assert time.perf_counter() - started < 5  # refused from its headers, not after building the arrays


def test_a_mat_that_unpacks_beyond_the_limit_is_refused(tmp_path, monkeypatch):
    from course_utils.data import metadata

    monkeypatch.setattr(metadata, "MAX_UNPACKED_BYTES", 1 << 20)
    zeros = mat_array(DOUBLE, (1, 200_000), mat_element(9, bytes(8 * 200_000)))
    path = compressed_wiki_mat(tmp_path / "wiki.mat", {"dob": zeros})
    with pytest.raises(ValueError, match=r"wiki\.mat unpacks to more than 1 MB"):
        read_imdb_wiki_metadata(path)


def malformed(kind, n=3):
    rows = [row(i) for i in range(n)]
    struct_fields = {
        "dob": np.array([[r["dob"] for r in rows]], dtype=np.float64),
        "photo_taken": np.array([[r["photo_taken"] for r in rows]], dtype=np.float64),
        "full_path": np.array([[np.array([r["full_path"]]) for r in rows]], dtype=object),
        "gender": np.ones((1, n)), "name": np.array([[np.array([r["name"]]) for r in rows]], dtype=object),
        "face_location": np.array([[np.array([r["box"]]) for r in rows]], dtype=object),
        "face_score": np.full((1, n), 3.0), "second_face_score": np.full((1, n), np.nan),
    }
    if kind == "fields of different lengths":
        struct_fields["name"] = struct_fields["name"][:, :2]
        struct_fields["face_score"] = np.full((1, 5), 3.0)
    elif kind == "dates as text":
        struct_fields["dob"] = np.array([["1980-03-01"] * n], dtype=object)
    elif kind == "an empty struct":
        return {"wiki": np.zeros((0, 0), dtype=[(name, object) for name in struct_fields])}
    elif kind == "numbers, not a struct":
        return {"wiki": np.arange(6.0).reshape(2, 3)}
    return {"wiki": struct_fields}


@pytest.mark.parametrize("kind", ["fields of different lengths", "dates as text", "an empty struct",
                                  "numbers, not a struct"])
def test_a_malformed_mat_is_a_value_error_that_names_the_file(tmp_path, kind):
    path = tmp_path / "wiki.mat"
    scipy.io.savemat(str(path), malformed(kind))
    with pytest.raises(ValueError, match=rf"{path}"):
        read_imdb_wiki_metadata(path)
