"""show_image_rows: one titled grid per row, drawn from [-1, 1] images."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils.figures import show_image_rows  # noqa: E402


def test_each_row_is_a_titled_grid_of_its_images():
    plt.close("all")
    black, white = -torch.ones(3, 3, 8, 8), torch.ones(2, 3, 8, 8)
    show_image_rows([black, white], ["all black", "all white"], nrow=4)
    axes = plt.gcf().axes
    assert [ax.get_title(loc="left") for ax in axes] == ["all black", "all white"]
    first, second = (np.asarray(ax.get_images()[0].get_array()) for ax in axes)
    # make_grid pads with 0 (black): the black row is black everywhere, the white row white inside its tiles
    assert first.max() == 0
    assert second[1:9, 1:9].min() == 1 and second.shape[:2] == (10, 19)


def test_rows_and_titles_must_pair_up():
    with pytest.raises(ValueError, match="2 rows but 1 titles"):
        show_image_rows([torch.zeros(1, 3, 4, 4)] * 2, ["only one"])
