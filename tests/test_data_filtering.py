"""Age groups, class balancing and the split by identity."""
import numpy as np
import pandas as pd
import pytest

from course_utils.data import (DEFAULT_AGE_GROUPS, assign_age_groups, balance_classes, group_label_names,
                               identity_keys, split_by_identity)


def people_table(n_people=60, photos=(1, 6), seed=0, empty_names=8):
    rng = np.random.default_rng(seed)
    rows = []
    for person in range(n_people):
        for k in range(int(rng.integers(*photos))):
            rows.append({"name": f"Person {person}", "full_path": f"{person}_{k}.jpg",
                         "age": float(rng.integers(15, 80))})
    for k in range(empty_names):
        rows.append({"name": "", "full_path": f"unnamed_{k}.jpg", "age": 25.0})
    return pd.DataFrame(rows)


def test_default_groups_are_inclusive_and_drop_the_rest():
    df = pd.DataFrame({"age": [19, 20, 25, 30, 31, 39, 40, 45, 50, 51, np.nan, -3]})
    grouped = assign_age_groups(df)
    assert DEFAULT_AGE_GROUPS == ((20, 30), (40, 50))
    assert grouped["age"].tolist() == [20, 25, 30, 40, 45, 50]
    assert grouped["label"].tolist() == [0, 0, 0, 1, 1, 1]
    assert group_label_names() == ["20-30", "40-50"]


def test_custom_groups_and_bad_groups():
    df = pd.DataFrame({"age": [10, 18, 19, 29, 30, 39, 60, 99]})
    grouped = assign_age_groups(df, [(0, 18), (19, 29), (30, 39), (60, 100)])
    assert grouped["label"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="overlap"):
        assign_age_groups(df, [(20, 30), (30, 40)])
    with pytest.raises(ValueError, match="empty"):
        assign_age_groups(df, [(30, 20)])
    with pytest.raises(ValueError):
        assign_age_groups(df, [])


def test_balance_downsamples_to_the_smallest_class_reproducibly():
    df = pd.DataFrame({"label": [0] * 25 + [1] * 10, "x": range(35)})
    balanced = balance_classes(df, seed=3)
    assert balanced["label"].value_counts().to_dict() == {0: 10, 1: 10}
    assert balanced["x"].is_monotonic_increasing  # original order kept
    assert balanced.equals(balance_classes(df, seed=3))
    assert not balanced.equals(balance_classes(df, seed=4))
    assert set(balanced[balanced.label == 1]["x"]) == set(range(25, 35))


def test_identity_keys_make_empty_names_unique():
    df = pd.DataFrame({"name": ["A", "", "A", ""], "full_path": ["1", "2", "3", "4"]})
    keys = identity_keys(df)
    assert keys[0] == keys[2] and keys[1] != keys[3]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_by_identity_is_disjoint_and_sized(seed):
    df = people_table(seed=seed)
    train, val = split_by_identity(df, val_fraction=0.2, seed=seed)
    assert len(train) + len(val) == len(df)
    assert not set(identity_keys(train)) & set(identity_keys(val))
    assert not set(train["full_path"]) & set(val["full_path"])
    assert 0.1 < len(val) / len(df) < 0.3
    # deterministic for a seed
    again_train, again_val = split_by_identity(df, val_fraction=0.2, seed=seed)
    assert val["full_path"].tolist() == again_val["full_path"].tolist()


def test_split_rejects_bad_fraction():
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_identity(people_table(), val_fraction=1.5)
