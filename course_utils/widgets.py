"""An interactive age slider: pick a face or upload a photo, then drag the age.

All callbacks live on ``AgeSliderApp`` so they can be unit-tested without a
browser: set ``app.slider.value`` (or the picker / upload value) and read
``app.image.value`` and ``app.status.value``.
"""
from __future__ import annotations

import io
import time
import warnings

import ipywidgets as widgets
import numpy as np
from PIL import Image, ImageDraw

from course_utils.aging import AgingResult, LatentCache, age_face, age_face_in_years
from course_utils.photo_aging import edit_photo
from course_utils.photo import FaceCrop, find_face

PANEL_GAP = 4  # white pixels between the three panels
BOX_COLOUR = (255, 60, 0)  # the detected face box drawn on an uploaded photo
OUTPUT_CHOICES = (("edit the photo", "edit"), ("redraw", "redraw"))


def years_to_position(age: float, age_groups) -> float:
    """Age in years -> group position (0 = first group), linear between group midpoints.

    Ages before the first midpoint or after the last are clamped to the ends.
    """
    midpoints = _midpoints(age_groups)
    return float(np.interp(age, midpoints, np.arange(len(midpoints))))


class AgeSliderApp:
    """Widgets that age a held-out face or an uploaded photo as the learner drags a slider.

    The first time a face is shown it is encoded (and refined for
    ``refine_steps``); its latent is cached, so moving the slider costs one
    generator pass. In an uploaded photo the face is found by
    ``photo.find_face`` (the largest, if several) and cropped like the training
    faces; the photo is shown with that face box drawn on it, next to the
    whole photo with the age change applied (``photo_aging.edit_photo``). A photo
    with no face found is refused with the reason in the status line. The
    ``output`` toggle chooses "edit the photo" (default: the photo plus the
    predicted age change) or "redraw" (the generator's own drawing). Without
    a ``classifier`` an uploaded face is assumed to be in the first age group
    (the status line says so). ``age_groups`` are the data's
    (``faces.age_groups`` of the face cache), one per generator group.
    ``group_means`` (``course.group_means(faces)``) lets the edit clean its
    change (``age_change.EditSettings``).
    """

    def __init__(
        self,
        generator,
        encoder,
        faces: np.ndarray,
        labels,
        age_groups,
        classifier=None,
        refine_steps: int = 50,
        display_size: int = 192,
        group_means=None,
    ):
        faces = np.asarray(faces)
        labels = np.asarray(labels).astype(int)
        if faces.dtype != np.uint8 or faces.ndim != 4 or faces.shape[-1] != 3 or len(faces) == 0:
            raise ValueError(f"faces must be a non-empty uint8 array (N, H, W, 3), got {faces.dtype} {faces.shape}")
        if labels.shape != (len(faces),):
            raise ValueError(f"need one label per face: {len(faces)} faces, labels of shape {labels.shape}")
        self._check_labels(generator, labels, age_groups)
        self.generator, self.encoder, self.classifier = generator, encoder, classifier
        self.faces, self.labels = faces, labels
        self.refine_steps = refine_steps
        self.group_means = group_means  # (K, 3, H, W) mean training faces: the edit's mask and blend
        self.display_size = display_size
        self.cache = LatentCache()
        self.last_render_ms: float | None = None
        self.last_result: AgingResult | None = None

        self._build_widgets(display_size)
        self._face: np.ndarray = faces[0]
        self._source: int | None = int(labels[0])
        self._face_name = "face 0"
        self._uploaded = False

        self.slider.observe(self._on_slider, names="value")
        self.picker.observe(self._on_pick, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.output.observe(self._on_slider, names="value")
        self._show_face(faces[0], int(labels[0]), "face 0")

    def _build_widgets(self, display_size: int) -> None:
        """The controls and views, laid out top to bottom."""
        low, high = self._slider_range()
        self.slider = widgets.FloatSlider(
            value=low, min=low, max=high, step=1,
            description="Age (years)", readout_format=".0f", continuous_update=True,
            style={"description_width": "initial"}, layout=widgets.Layout(width="60%"),
        )
        self.picker = widgets.Dropdown(
            options=[(f"face {i} ({self._group_name(label)} years)", i) for i, label in enumerate(self.labels)],
            value=0, description="Held-out face",
            style={"description_width": "initial"},
        )
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Your photo")
        self.image = widgets.Image(format="png", width=3 * display_size + 2 * PANEL_GAP)
        # Stable CSS hooks for the browser test (tests/test_browser.py).
        self.slider.add_class("age-slider")
        self.image.add_class("aged-image")
        self.caption = widgets.Label()
        self.status = widgets.Label()
        self.output = widgets.ToggleButtons(options=OUTPUT_CHOICES, value="edit", description="Output",
                                            style={"description_width": "initial"})
        # An uploaded photo: the face box found in it | the whole photo edited (hidden for dataset faces).
        self.photo_view = widgets.Image(format="png", layout=widgets.Layout(display="none"))
        self.photo_view.add_class("photo-image")
        self._photo: FaceCrop | None = None
        self._photo_note = ""
        self._widget = widgets.VBox([widgets.HBox([self.picker, self.upload]), self.slider, self.output,
                                     self.image, self.caption, self.photo_view, self.status])

    @property
    def widget(self) -> widgets.VBox:
        """The whole app, ready for ``display(app.widget)``."""
        return self._widget

    def _on_slider(self, change) -> None:
        self._render()

    def _on_pick(self, change) -> None:
        index = int(change["new"])
        self._show_face(self.faces[index], int(self.labels[index]), f"face {index}")

    def _on_upload(self, change) -> None:
        files = _uploaded_files(change["new"])
        if not files:
            return  # the value was cleared (also our own reset below)
        name, content = files[0]
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                found = find_face(content, size=self.faces.shape[1])
        except Exception as error:  # a bad upload (or one with no face) must never break the app
            self.status.value = f"Could not use '{name}': {error}"
            return
        finally:
            self._reset_upload()
        several = [str(w.message) for w in caught if "faces; using the largest" in str(w.message)]
        x1, y1, x2, y2 = found.box
        note = f"face found at ({x1:.0f}, {y1:.0f})–({x2:.0f}, {y2:.0f}), boxed on the photo"
        if several:
            note = f"{found.faces_found} faces found, aging the largest, boxed on the photo"
        source = None if self.classifier is not None else self._unknown_source
        self._show_face(found.face, source, f"'{name}'", uploaded=True, photo=found, note=note)

    def _show_face(self, face: np.ndarray, source: int | None, name: str, uploaded: bool = False,
                   photo: FaceCrop | None = None, note: str = "") -> None:
        previous = (self._face, self._source, self._face_name, self._uploaded, self._photo, self._photo_note)
        self._face, self._source, self._face_name, self._uploaded = face, source, name, uploaded
        self._photo, self._photo_note = photo, note
        if not self._render():
            (self._face, self._source, self._face_name, self._uploaded,
             self._photo, self._photo_note) = previous

    def _render(self) -> bool:
        """Age the current face to the slider's age and show it; False (and a status) on failure."""
        started = time.perf_counter()
        try:
            result = self._age(self._target(self.slider.value))
            photo_view = self._photo_panels(result) if self._photo is not None else None
        except Exception as error:  # show model/input problems as text, keep the last image
            self.status.value = f"Could not age {self._face_name}: {error}"
            return False
        self.image.value = compose_panels(
            [result.original, result.reconstruction, result.aged], self.display_size
        )
        if photo_view is not None:
            self.photo_view.value = photo_view
        self.photo_view.layout.display = None if photo_view is not None else "none"
        self.last_result = result
        self.last_render_ms = (time.perf_counter() - started) * 1000
        how = "photo edited" if result.output == "edit" else "redrawn"
        self.caption.value = (
            f"original | reconstruction | aged to {self.slider.value:.0f} years ({how})"
        )
        self.status.value = self._describe(result)
        return True

    def _photo_panels(self, result: AgingResult) -> bytes:
        """The uploaded photo with its face box drawn | the whole photo with the age change (edit only)."""
        found = self._photo
        panels = [draw_box(found.photo, found.box)]
        if result.output == "edit":
            panels.append(Image.fromarray(edit_photo(found.photo, found.box, result.change)))
        return compose_photos(panels, 2 * self.display_size)

    def _describe(self, result: AgingResult) -> str:
        group = self._group_name(result.source)
        if self._source is None:
            origin = f"the classifier puts it in {group} years"
        elif self._uploaded:
            origin = f"no age classifier given, so assumed to be {group} years"
        else:
            origin = f"dataset group {group} years"
        note = f"; {self._photo_note}" if self._photo is not None and self._photo_note else ""
        return f"{self._face_name}: {origin}{note}"

    # What a subclass may change (``YearsSliderApp``): the labels, the slider's range, the target.
    _unknown_source = 0  # an uploaded face's label when there is no classifier: the first group

    def _check_labels(self, generator, labels: np.ndarray, age_groups) -> None:
        self.age_groups = [tuple(group) for group in age_groups]
        n_classes = getattr(generator, "n_classes", len(self.age_groups))
        if n_classes != len(self.age_groups):
            raise ValueError(f"the generator has {n_classes} age groups but age_groups lists {len(self.age_groups)}")
        if labels.min() < 0 or labels.max() >= n_classes:
            raise ValueError(f"labels must be group indices in 0..{n_classes - 1}")

    def _slider_range(self) -> tuple[float, float]:
        """Years from the first group's midpoint to the last one's."""
        midpoints = _midpoints(self.age_groups)
        return midpoints[0], midpoints[-1]

    def _target(self, years: float) -> float:
        """What ``age_face`` gets as the target for the slider's years: a position between the groups."""
        return years_to_position(years, self.age_groups)

    def _age(self, target) -> AgingResult:
        return age_face(self._face, target, self.generator, self.encoder, source=self._source,
                        classifier=self.classifier, refine_steps=self.refine_steps, cache=self.cache,
                        output=self.output.value, group_means=self.group_means)

    def _group_name(self, group: int) -> str:
        low, high = self.age_groups[group]
        return f"{low}–{high}"

    def _reset_upload(self) -> None:
        """Clear the upload so choosing the same file again fires a new change."""
        try:
            self.upload.value = ()
        except Exception:  # older ipywidgets use a dict value; leaving it is harmless
            pass


def compose_panels(images, display_size: int) -> bytes:
    """uint8 (H, W, 3) images side by side, each scaled to display_size, as PNG bytes.

    Nearest-neighbour scaling shows the model's real 64-pixel resolution
    instead of smoothing it away.
    """
    count = len(images)
    canvas = Image.new("RGB", (count * display_size + (count - 1) * PANEL_GAP, display_size), "white")
    for i, array in enumerate(images):
        panel = Image.fromarray(np.asarray(array, dtype=np.uint8)).resize(
            (display_size, display_size), Image.Resampling.NEAREST
        )
        canvas.paste(panel, (i * (display_size + PANEL_GAP), 0))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", compress_level=1)  # speed over size: it is redrawn per slider step
    return buffer.getvalue()


def draw_box(photo: Image.Image, box) -> Image.Image:
    """A copy of ``photo`` with the face box (x1, y1, x2, y2) outlined."""
    image = photo.convert("RGB")  # always a copy
    width = max(2, round(max(image.size) / 200))
    ImageDraw.Draw(image).rectangle([round(v) for v in box], outline=BOX_COLOUR, width=width)
    return image


def compose_photos(photos, height: int) -> bytes:
    """PIL photos side by side, each scaled (smoothly) to ``height`` pixels high, as PNG bytes."""
    scaled = [photo.resize((max(1, round(photo.width * height / photo.height)), height),
                           Image.Resampling.LANCZOS) for photo in photos]
    canvas = Image.new("RGB", (sum(p.width for p in scaled) + PANEL_GAP * (len(scaled) - 1), height), "white")
    left = 0
    for photo in scaled:
        canvas.paste(photo, (left, 0))
        left += photo.width + PANEL_GAP
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _uploaded_files(value) -> list[tuple[str, bytes]]:
    """(name, content) pairs from a FileUpload value (ipywidgets 8 tuple, or 7's dict)."""
    if isinstance(value, dict):
        return [(name, bytes(item.get("content", b""))) for name, item in value.items()]
    return [(item.get("name", "upload"), bytes(item.get("content", b""))) for item in value or ()]


def _midpoints(age_groups) -> list[float]:
    groups = [tuple(group) for group in age_groups]
    if not groups or any(len(group) != 2 or group[0] > group[1] for group in groups):
        raise ValueError(f"age_groups must be a non-empty list of (low, high) years, got {age_groups!r}")
    midpoints = [(low + high) / 2 for low, high in groups]
    if any(b <= a for a, b in zip(midpoints, midpoints[1:])):
        raise ValueError(f"age_groups must be in increasing order, got {age_groups!r}")
    return midpoints


class YearsSliderApp(AgeSliderApp):
    """The age slider for a generator conditioned on the age itself (chapter 6): it moves in years.

    ``ages`` are the faces' ages in years (not group labels), and ``condition_of(years) -> (C,)``
    gives the generator's condition for any age, e.g. ``conditions.scheme_condition("thermometer")``.
    The slider spans ``age_range`` (the ages the generator was trained on); each position is an age,
    coded exactly as in training, with no mixing between group midpoints. ``judge``, if given, is a
    regressor of the age in years (``age_axis.AgeJudge``) that gives an uploaded face its source age;
    without one an uploaded face is assumed to be ``age_range[0]`` years old.
    """

    def __init__(self, generator, encoder, faces: np.ndarray, ages, condition_of, age_range=(15, 80),
                 judge=None, refine_steps: int = 50, display_size: int = 192):
        low, high = (float(age) for age in age_range)
        if not low < high:
            raise ValueError(f"age_range must be (youngest, oldest), got {age_range!r}")
        self.condition_of, self.age_range = condition_of, (low, high)
        self._unknown_source = int(round(low))
        super().__init__(generator, encoder, faces, ages, age_groups=None, classifier=judge,
                         refine_steps=refine_steps, display_size=display_size)

    def _check_labels(self, generator, labels: np.ndarray, age_groups) -> None:
        self.age_groups = None
        low, high = self.age_range
        if labels.min() < low or labels.max() > high:
            raise ValueError(f"ages must lie in the slider's range {low:.0f}-{high:.0f}, "
                             f"got {labels.min()}..{labels.max()}")

    def _slider_range(self) -> tuple[float, float]:
        return self.age_range

    def _target(self, years: float) -> float:
        return float(years)

    def _age(self, target) -> AgingResult:
        return age_face_in_years(self._face, target, self.generator, self.encoder, self.condition_of,
                                 source=self._source, judge=self.classifier, refine_steps=self.refine_steps,
                                 cache=self.cache, output=self.output.value)

    def _group_name(self, years) -> str:
        return f"{float(years):.0f}"
