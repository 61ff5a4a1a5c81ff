"""Procedural face photos whose age shows, for the embedded mini-wiki dataset.

An *identity* is a set of stable face parameters (shape, colours, hair style,
glasses...) plus how this person ages. ``render_photo(identity, age, photo_seed)``
draws that person at any age; ``photo_seed`` fixes the photo itself (size,
framing, pose, light), so the same photo can be re-rendered at another age as
ground truth. Shapes are drawn as polygons in a face coordinate frame (so the
whole head can rotate) on a canvas twice the working size, then downsampled
for antialiasing.

Age cues follow rough schedules of real aging (the numbers marked ~ are
approximate readings of the sources, not fitted values), so that a 45-year-old
looks about 45: a few grey hairs at the temples at most, and light lines.

* Greying: onset is on average in the mid-30s with a spread of about a decade
  (Tobin & Paus 2001, "Graying: gerontobiology of the hair follicle pigmentary
  unit", Exp Gerontol), and at 50 only ~6-23% of people, depending on ancestry,
  have half or more of their hair grey (Panhard, Lozano & Loussouarn 2012,
  "Greying of the human hair: a worldwide survey, revisiting the '50' rule of
  thumb", Br J Dermatol 167(4):865-73). Here onset ~ N(35, 8) years (5 years later for the
  darkest skin tones), then the grey share grows by ~1/45 per year times a
  personal rate (log-normal, ~x0.55 to x1.8), about twice as fast at the
  temples; at 50 about one person in ten is half grey.
* Hairline recession (men): a slight recession at the temples is usual after
  adolescence, and patterned hair loss of some degree affects a share of men
  that grows with every decade, very roughly a fifth to a third in their
  30s and about half by 50 (~; Hamilton 1951, "Patterned loss of hair in
  man: types and incidence", Ann N Y Acad Sci; Norwood 1975, "Male pattern
  baldness: classification and incidence", South Med J). Here each man starts receding at
  an age uniform in 15-85 and reaches his own maximum over ~30 years. Women
  mostly keep the frontal hairline (pattern loss thins the crown instead:
  Ludwig 1977, "Classification of the types of androgenetic alopecia (common
  baldness) occurring in the female sex", Br J Dermatol), so theirs moves
  back only slightly and late (from 45-75).
* Forehead lines: faint or absent in most people in their 20s and moderate in
  their 40s, their grade rising steadily by roughly half to one grade (of
  five) per decade (~; Bazin & Doublet 2007, "Skin Aging Atlas. Volume 1,
  Caucasian Type"). Here they start at 24 and reach full depth ~50 years later.
* Crow's feet: appear from the late 20s to 30s and deepen at a similar pace
  (~; Bazin & Doublet 2007); start at 28, full depth ~45 years later.
* Nasolabial folds: already present, faintly, in young adults and deepening
  through life (~; Bazin & Doublet 2007); a faint fold from 18, full ~70 years later.
* Eye bags: lower-lid bags usually become noticeable from about 40 (~; Bazin &
  Doublet 2007); start at 36, full ~40 years later.
* Wrinkles differ between the sexes: men's are on average more marked than
  women's of the same age, and women's increase faster after menopause
  (Luebberding, Krueger & Kerscher 2014, "Quantification of age-related facial
  wrinkles in men and women using a three-dimensional fringe projection method
  and validated assessment scales", Dermatol Surg 40(1):22-32). Here men's lines run ~3
  years ahead, and women's gain pace after 50.
* Skin tone: skin becomes slowly duller and paler over decades (sun exposure
  speeds it up; Fisher et al. 2002, "Mechanisms of photoaging and
  chronological skin aging", Arch Dermatol 138(11):1462-70); here a small change from 30 on, a
  quarter of its full size at 45 (our rough choice).

People age at different speeds, as real people do (sun, smoking, genes):
every identity carries its own greying onset and rate, recession onset and
extent, a wrinkle shift (years ahead or behind, ~N(0, 4)) and a wrinkle rate
(log-normal, ~x0.8 to x1.25), drawn once in ``random_identity``, so the same
person ages consistently across photos. The forehead height (hairline at 20)
varies between people too.

``RENDERER_VERSION`` changes whenever a face would be drawn differently; the
mini-wiki builder records it, and a stale archive is rebuilt.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# Working resolution of the drawing before it is resized to the photo size.
WORK_SIZE = 256
SUPERSAMPLE = 2

SKIN_TONES = [
    (255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 144, 102),
    (170, 116, 78), (141, 90, 60), (110, 70, 45), (250, 210, 180),
]
HAIR_COLOURS = [
    (30, 22, 18), (55, 38, 26), (85, 56, 34), (120, 80, 45), (20, 20, 24),
    (150, 100, 55), (170, 130, 70), (110, 45, 25), (65, 45, 35),
]
EYE_COLOURS = [(60, 40, 25), (95, 65, 35), (70, 110, 150), (80, 120, 80), (40, 30, 25)]
BACKGROUNDS = [
    (70, 90, 130), (120, 140, 160), (200, 200, 190), (90, 110, 90), (160, 130, 110),
    (60, 60, 70), (180, 170, 150), (140, 160, 180), (100, 80, 90), (210, 190, 170),
]
CLOTHES = [(40, 50, 80), (120, 30, 40), (30, 30, 30), (200, 200, 205), (60, 90, 60), (150, 120, 80)]
HAIR_STYLES = ("short", "volume", "long", "bun", "side_part", "curly")
GREY_HAIR = np.array([205.0, 205.0, 210.0])
DARK_SKIN_TONES = (4, 5, 6)  # indices into SKIN_TONES whose greying starts later

# Bump when a face would be drawn differently: mini-wiki archives of another version are rebuilt.
RENDERER_VERSION = 2  # 2: age cues calibrated to real aging, per-person aging speeds


@dataclass
class Identity:
    """Stable appearance of one synthetic person (JSON-serialisable)."""

    gender: str
    face_width: float
    face_height: float
    jaw: float
    skin: list
    eye_size: float
    eye_spacing: float
    eye_colour: list
    brow_thickness: float
    brow_tilt: float
    nose_length: float
    nose_width: float
    mouth_width: float
    lip_colour: list
    hair_colour: list
    hair_style: str
    hair_volume: float
    recession_tendency: float
    grey_onset: float
    glasses: bool
    glasses_colour: list
    moustache: bool
    background: list
    clothes: list
    # How this person ages (see the module docstring); the defaults are an average person.
    grey_rate: float = 1.0
    recession_onset: float = 40.0
    wrinkle_shift: float = 0.0
    wrinkle_rate: float = 1.0
    hairline: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain dict for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Identity":
        """Inverse of :meth:`to_dict`."""
        return cls(**values)


def random_identity(rng: np.random.Generator, gender: str | None = None) -> Identity:
    """Draw a new identity; ``gender`` is "male", "female" or None (random)."""
    gender = gender or ("male" if rng.random() < 0.5 else "female")
    male = gender == "male"

    def pick(options):
        return [int(c) for c in options[int(rng.integers(len(options)))]]

    skin_index = int(rng.integers(len(SKIN_TONES)))

    def jitter(colour, amount):
        return [int(np.clip(c + rng.normal(0, amount), 0, 255)) for c in colour]

    styles = ("short", "short", "volume", "side_part", "curly") if male else (
        "long", "long", "bun", "volume", "side_part", "curly")
    return Identity(
        gender=gender,
        face_width=float(rng.uniform(0.86, 1.06) + (0.04 if male else 0.0)),
        face_height=float(rng.uniform(1.22, 1.42)),
        jaw=float(rng.uniform(0.05, 0.3) + (0.0 if male else 0.1)),
        skin=jitter(SKIN_TONES[skin_index], 8),
        eye_size=float(rng.uniform(0.85, 1.2)),
        eye_spacing=float(rng.uniform(0.36, 0.46)),
        eye_colour=pick(EYE_COLOURS),
        brow_thickness=float(rng.uniform(0.05, 0.1) + (0.02 if male else 0.0)),
        brow_tilt=float(rng.uniform(-0.06, 0.08)),
        nose_length=float(rng.uniform(0.28, 0.42)),
        nose_width=float(rng.uniform(0.13, 0.22)),
        mouth_width=float(rng.uniform(0.3, 0.46)),
        lip_colour=jitter((175, 80, 80) if male else (190, 70, 85), 15),
        hair_colour=jitter(pick(HAIR_COLOURS), 6),
        hair_style=str(styles[int(rng.integers(len(styles)))]),
        hair_volume=float(rng.uniform(0.8, 1.25)),
        recession_tendency=float(rng.uniform(0.4, 1.0) if male else rng.uniform(0.05, 0.2)),
        grey_onset=float(np.clip(rng.normal(35.0, 8.0) + (5.0 if skin_index in DARK_SKIN_TONES else 0.0),
                                 18.0, 75.0)),
        glasses=bool(rng.random() < 0.18),
        glasses_colour=pick([(20, 20, 20), (90, 60, 30), (150, 150, 160), (110, 20, 30)]),
        moustache=bool(male and rng.random() < 0.25),
        background=jitter(pick(BACKGROUNDS), 12),
        clothes=jitter(pick(CLOTHES), 10),
        grey_rate=float(np.exp(rng.normal(0.0, 0.3))),
        recession_onset=float(rng.uniform(15.0, 85.0) if male else rng.uniform(45.0, 75.0)),
        wrinkle_shift=float(rng.normal(0.0, 4.0) + (3.0 if male else 0.0)),
        wrinkle_rate=float(np.exp(rng.normal(0.0, 0.12))),
        hairline=float(rng.uniform(-0.06, 0.06)),
    )


# --- how age changes a face (all continuous in age; schedules in the module docstring) ---

GREY_YEARS = 45.0  # years from the first grey hair to white, at rate 1
TEMPLE_GREY = 2.0  # temples grey this much faster
RECESSION_YEARS = 30.0
WRINKLE_SCHEDULE = {  # cue: (starting age, years to full depth at rate 1, depth at the start)
    "forehead": (24.0, 50.0, 0.0),
    "crows_feet": (28.0, 45.0, 0.0),
    "folds": (18.0, 70.0, 0.1),
    "bags": (36.0, 40.0, 0.0),
}


def _ramp(age: float, start: float, years: float) -> float:
    return float(np.clip((age - start) / years, 0.0, 1.0))


def grey_fraction(age: float, onset: float = 35.0, rate: float = 1.0) -> float:
    """0 = natural hair colour, 1 = white; grows by ``rate / GREY_YEARS`` a year from ``onset``."""
    return _ramp(age, onset, GREY_YEARS / rate)


def recession(age: float, tendency: float, onset: float = 40.0) -> float:
    """How far the hairline has moved back, 0..``tendency``: from ``onset`` over ~30 years."""
    return _ramp(age, onset, RECESSION_YEARS) * tendency


def wrinkle_age(age: float, shift: float = 0.0, rate: float = 1.0, male: bool = False) -> float:
    """The age a person's skin looks: ``shift`` years ahead, ``rate`` times as fast from 20.

    Women's lines gain pace after 50 (menopause).
    """
    effective = 20.0 + (age - 20.0) * rate + shift
    if not male and age > 50:
        effective += 0.3 * (age - 50.0) * rate
    return effective


def wrinkle_depths(skin_age: float) -> dict:
    """Depth 0..1 of each wrinkle cue (and eye bags) at skin age ``skin_age``."""
    return {cue: start_depth + (1.0 - start_depth) * _ramp(skin_age, start, years)
            for cue, (start, years, start_depth) in WRINKLE_SCHEDULE.items()}


def _mix(a, b, t: float) -> tuple:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return tuple(int(round(v)) for v in np.clip(a + (b - a) * t, 0, 255))


def aged_skin(skin, age: float) -> tuple:
    """Skin gets slowly duller and paler with (skin) age: a small change from 30, full at 90."""
    skin = np.asarray(skin, float)
    pale = _ramp(age, 30.0, 60.0)
    grey = skin.mean() * np.array([1.0, 0.97, 0.95])
    duller = skin + (grey - skin) * 0.45 * pale
    return _mix(duller, (235, 225, 215), 0.15 * pale)


def aged_hair(hair, age: float, onset: float, rate: float = 1.0, temples: bool = False) -> tuple:
    """Hair colour blended towards grey-white (faster at the temples)."""
    grey = grey_fraction(age, onset, rate)
    return _mix(hair, GREY_HAIR, min(1.0, TEMPLE_GREY * grey) if temples else grey)


# --- drawing helpers -----------------------------------------------------------

class _Frame:
    """Maps face units (x right, y down, origin at the face centre) to canvas pixels."""

    def __init__(self, cx: float, cy: float, unit: float, angle_deg: float):
        self.cx, self.cy, self.unit = cx, cy, unit
        rad = math.radians(angle_deg)
        self.cos, self.sin = math.cos(rad), math.sin(rad)

    def __call__(self, points) -> list:
        out = []
        for x, y in points:
            out.append((self.cx + self.unit * (x * self.cos - y * self.sin),
                        self.cy + self.unit * (x * self.sin + y * self.cos)))
        return out

    def width(self, units: float) -> int:
        return max(1, int(round(units * self.unit)))


def _ellipse(cx, cy, rx, ry, start=0.0, stop=2 * math.pi, n=40) -> list:
    return [(cx + rx * math.cos(t), cy + ry * math.sin(t))
            for t in np.linspace(start, stop, n)]


def _curve(p0, p1, bend: float, n=12) -> list:
    """Quadratic curve from p0 to p1 bowed by ``bend`` face units to the left of p0->p1."""
    (x0, y0), (x1, y1) = p0, p1
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    dx, dy = x1 - x0, y1 - y0
    length = math.hypot(dx, dy) or 1.0
    cx, cy = mx - dy / length * bend, my + dx / length * bend
    ts = np.linspace(0, 1, n)
    return [((1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t ** 2 * x1,
             (1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t ** 2 * y1) for t in ts]


def _head_outline(rx: float, ry: float, jaw: float, n=60) -> list:
    """Egg-shaped head: the lower half narrows towards the chin by ``jaw``."""
    points = []
    for t in np.linspace(0, 2 * math.pi, n, endpoint=False):
        s = math.sin(t)
        narrowing = 1.0 - jaw * s * s if s > 0 else 1.0
        points.append((rx * math.cos(t) * narrowing, ry * s))
    return points


# --- the renderer --------------------------------------------------------------

@dataclass
class _Photo:
    size: int
    face_fraction: float
    offset_x: float
    offset_y: float
    angle: float
    yaw: float
    brightness: float
    side_light: float
    smile: float
    background_shift: list


def _photo_jitter(photo_seed: int) -> _Photo:
    rng = np.random.default_rng(photo_seed)
    return _Photo(
        size=int(rng.integers(500, 1001)),
        face_fraction=float(rng.uniform(0.27, 0.36)),
        offset_x=float(rng.uniform(-0.1, 0.1)),
        offset_y=float(rng.uniform(-0.05, 0.08)),
        angle=float(rng.uniform(-8, 8)),
        yaw=float(rng.uniform(-0.07, 0.07)),
        brightness=float(rng.uniform(0.85, 1.12)),
        side_light=float(rng.uniform(-0.18, 0.18)),
        smile=float(rng.uniform(-0.02, 0.06)),
        background_shift=[float(v) for v in rng.normal(0, 10, 3)],
    )


def render_photo(identity: Identity, age: float, photo_seed: int,
                 with_face: bool = True) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """Draw ``identity`` at ``age``; returns (RGB photo, face box x1, y1, x2, y2 in pixels).

    The photo (size, framing, pose, light) depends only on ``photo_seed``, so
    re-rendering with another age changes the person's age and nothing else.
    ``with_face=False`` draws the empty background (a "no face" photo).
    """
    ident = identity if isinstance(identity, Identity) else Identity.from_dict(identity)
    photo = _photo_jitter(photo_seed)
    canvas_size = WORK_SIZE * SUPERSAMPLE
    background = _mix(np.asarray(ident.background) + photo.background_shift, (0, 0, 0), 0)
    image = Image.new("RGB", (canvas_size, canvas_size), background)
    draw = ImageDraw.Draw(image)

    unit = photo.face_fraction * canvas_size / 2.0  # pixels per face unit
    cx = canvas_size * (0.5 + photo.offset_x)
    cy = canvas_size * (0.5 + photo.offset_y)
    frame = _Frame(cx, cy, unit, photo.angle)
    rx, ry = ident.face_width, ident.face_height

    if with_face:
        _draw_person(draw, frame, ident, age, photo, rx, ry)

    # Downsample for antialiasing, then soften slightly like a camera would.
    image = image.reduce(SUPERSAMPLE).filter(ImageFilter.GaussianBlur(0.6))
    image = _apply_lighting(image, photo)
    image = image.resize((photo.size, photo.size), Image.BILINEAR)

    # Face box as a detector would give it: cheek to cheek, upper forehead to chin.
    scale = photo.size / canvas_size
    centre_x, centre_y = frame([(0.0, 0.1 * ry)])[0]
    half_w, half_h = rx * unit, 0.9 * ry * unit
    box = ((centre_x - half_w) * scale, (centre_y - half_h) * scale,
           (centre_x + half_w) * scale, (centre_y + half_h) * scale)
    return image, tuple(round(float(v), 2) for v in box)


def _apply_lighting(image: Image.Image, photo: _Photo) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    width = pixels.shape[1]
    gradient = 1.0 + photo.side_light * np.linspace(-1, 1, width, dtype=np.float32)
    pixels = pixels * (photo.brightness * gradient)[None, :, None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _draw_person(draw, frame, ident: Identity, age, photo: _Photo, rx, ry) -> None:
    male = ident.gender == "male"
    skin_age = wrinkle_age(age, ident.wrinkle_shift, ident.wrinkle_rate, male)
    skin = aged_skin(ident.skin, skin_age)
    shadow = _mix(skin, (60, 40, 35), 0.25)
    hair = aged_hair(ident.hair_colour, age, ident.grey_onset, ident.grey_rate)
    temple_hair = aged_hair(ident.hair_colour, age, ident.grey_onset, ident.grey_rate, temples=True)
    rec = recession(age, ident.recession_tendency, ident.recession_onset)
    depths = wrinkle_depths(skin_age)
    lines = 0.5 * (depths["forehead"] + depths["crows_feet"])  # heavier lids, paler lips, thinner brows
    volume = 0.18 * ident.hair_volume
    # Faces fill out a little in youth and sag a little later (jowls widen the jaw).
    jaw = ident.jaw * (1.0 - 0.5 * _ramp(skin_age, 45.0, 40.0)) + 0.05 * np.clip((25 - age) / 10, 0, 1)
    yaw = photo.yaw

    # Clothes and neck.
    draw.polygon(frame(_ellipse(0, 2.35 * ry, 2.3, 1.1)), fill=tuple(ident.clothes))
    draw.polygon(frame([(-0.42 * rx, 0.5 * ry), (0.42 * rx, 0.5 * ry),
                        (0.5 * rx, 1.5 * ry), (-0.5 * rx, 1.5 * ry)]), fill=shadow)

    # Hair behind the head.
    style = ident.hair_style
    if style == "long":
        draw.polygon(frame(_ellipse(0, -0.1 * ry, rx + volume + 0.1, ry * 1.05, math.pi, 2 * math.pi)
                           + [(rx + volume + 0.15, 1.55 * ry), (-rx - volume - 0.15, 1.55 * ry)]), fill=hair)
    elif style == "curly":
        draw.polygon(frame(_ellipse(0, -0.2 * ry, rx + 0.4 * ident.hair_volume, ry + 0.25)), fill=hair)
    elif style == "bun":
        draw.polygon(frame(_ellipse(0, -ry - 0.25, 0.42, 0.34)), fill=hair)

    # Ears, then the head.
    for side in (-1, 1):
        draw.polygon(frame(_ellipse(side * rx * 0.98, 0.05 * ry, 0.16, 0.28)), fill=shadow)
    draw.polygon(frame(_head_outline(rx, ry, jaw)), fill=skin)

    # Soft shading down one side of the face.
    draw.polygon(frame(_ellipse(0.72 * rx, 0.15 * ry, 0.22 * rx, 0.6 * ry)), fill=_mix(skin, shadow, 0.15))

    _draw_hair_top(draw, frame, ident, hair, temple_hair, rec, volume, rx, ry)
    _draw_eyes_and_brows(draw, frame, ident, depths["bags"], lines, skin, hair, rx, ry, yaw)
    _draw_nose_mouth(draw, frame, ident, age, lines, skin, hair, rx, ry, yaw, photo.smile)
    _draw_wrinkles(draw, frame, ident, depths, skin, _hairline(ident, rec, ry), rx, ry, yaw)
    if ident.glasses:
        _draw_glasses(draw, frame, ident, rx, ry, yaw)


def _hairline(ident: Identity, rec: float, ry: float) -> float:
    """Height of the hairline at the forehead centre (face units, negative = up)."""
    return -ry * (0.48 + ident.hairline + 0.42 * rec)


def _draw_hair_top(draw, frame, ident: Identity, hair, temple_hair, rec, volume, rx, ry) -> None:
    # Hairline height at the forehead centre and how much the temples recede (M shape).
    hairline = _hairline(ident, rec, ry)
    temple_dip = 0.08 + (0.04 if ident.gender == "male" else 0.0) + 0.45 * rec
    outer = _ellipse(0, 0, rx + volume, ry + volume, math.pi * 1.02, math.pi * 1.98, n=30)
    inner = []
    for x in np.linspace(0.95 * rx, -0.95 * rx, 21):
        t = abs(x) / (0.95 * rx)
        y = hairline - temple_dip * ry * t ** 2 * 0.5
        # At the sides the hair comes down to the ears.
        y = y + (ry * 0.45) * max(0.0, (t - 0.8) / 0.2) ** 2
        inner.append((x, max(y, -ry * 0.99)))
    draw.polygon(frame(outer + inner), fill=hair)
    # Sideburns: greying starts at the temples, so they grey first.
    for side in (-1, 1):
        draw.polygon(frame(_ellipse(side * 0.97 * rx, -0.22 * ry, 0.06 + 0.25 * volume, 0.2 * ry)), fill=temple_hair)
    if ident.hair_style == "side_part" and rec < 0.5:
        # A fringe swept across one side of the forehead.
        fringe = _curve((-0.95 * rx, hairline + 0.05), (0.3 * rx, hairline - 0.05), -0.25) + \
            [(0.3 * rx, hairline - 0.1), (-0.9 * rx, hairline - 0.3)]
        draw.polygon(frame(fringe), fill=hair)
    # A few strands give the hair texture.
    darker = _mix(hair, (0, 0, 0), 0.25)
    for x in np.linspace(-0.6 * rx, 0.6 * rx, 5):
        draw.line(frame(_curve((x, -ry - volume * 0.2), (x * 1.2, hairline - 0.05), 0.08)),
                  fill=darker, width=frame.width(0.025))


def _draw_eyes_and_brows(draw, frame, ident, bags, lines, skin, hair, rx, ry, yaw) -> None:
    eye_y = -0.08 * ry
    brow_colour = _mix(hair, (0, 0, 0), 0.15)
    for side in (-1, 1):
        ex = side * ident.eye_spacing * rx + yaw
        erx, ery = 0.16 * ident.eye_size, 0.075 * ident.eye_size
        # Eye bags, usually from about 40.
        if bags > 0:
            draw.line(frame(_ellipse(ex, eye_y + ery * 1.2, erx * 0.9, ery * 1.4, 0.15 * math.pi, 0.85 * math.pi, 12)),
                      fill=_mix(skin, np.asarray(skin, float) * 0.5, 0.9 * bags), width=frame.width(0.035 + 0.03 * bags))
        draw.polygon(frame(_ellipse(ex, eye_y, erx, ery)), fill=(240, 240, 235))
        draw.polygon(frame(_ellipse(ex + yaw * 0.3, eye_y, ery * 0.95, ery * 0.95)), fill=tuple(ident.eye_colour))
        draw.polygon(frame(_ellipse(ex + yaw * 0.3, eye_y, ery * 0.45, ery * 0.45)), fill=(15, 15, 15))
        # Upper lid: heavier with age.
        draw.line(frame(_ellipse(ex, eye_y, erx, ery, math.pi, 2 * math.pi, 14)),
                  fill=(40, 30, 30), width=frame.width(0.025 + 0.02 * lines))
        # Brows thin slightly and follow the hair colour.
        by = eye_y - 0.2 * ry
        inner_x, outer_x = ex - side * 0.14, ex + side * 0.2
        draw.line(frame(_curve((inner_x, by + ident.brow_tilt * 0.5), (outer_x, by - ident.brow_tilt * 0.5),
                               -0.05 * side)),
                  fill=brow_colour, width=frame.width(ident.brow_thickness * (1 - 0.3 * lines)))


def _draw_nose_mouth(draw, frame, ident, age, lines, skin, hair, rx, ry, yaw, smile) -> None:
    nose_top, nose_tip = -0.02 * ry, (-0.02 + ident.nose_length) * ry
    nose_colour = _mix(skin, (60, 35, 30), 0.35)
    draw.line(frame([(yaw * 1.3, nose_top), (yaw * 1.6 + 0.04, nose_tip)]), fill=_mix(skin, (60, 35, 30), 0.18),
              width=frame.width(0.03))
    for side in (-1, 1):
        draw.polygon(frame(_ellipse(yaw * 1.5 + side * ident.nose_width * 0.5, nose_tip, 0.05, 0.03)),
                     fill=nose_colour)
    mouth_y = nose_tip + 0.28 * ry * 0.75
    half = ident.mouth_width * rx / 2
    lip = tuple(ident.lip_colour)
    lip = _mix(lip, skin, 0.35 * lines)  # lips lose colour with age
    upper = _curve((yaw - half, mouth_y), (yaw + half, mouth_y), 0.05 + smile)
    lower = _curve((yaw + half, mouth_y), (yaw - half, mouth_y), 0.1)
    draw.polygon(frame(upper[::-1] + lower[::-1]), fill=lip)
    draw.line(frame(_curve((yaw - half, mouth_y), (yaw + half, mouth_y), -smile)), fill=(90, 35, 40),
              width=frame.width(0.02))
    if ident.moustache:
        draw.polygon(frame(_curve((yaw - half * 1.1, mouth_y - 0.02), (yaw + half * 1.1, mouth_y - 0.02), -0.05)
                           + [(yaw + half * 0.8, mouth_y - 0.14), (yaw - half * 0.8, mouth_y - 0.14)]),
                     fill=_mix(hair, (0, 0, 0), 0.1))


def _crease(skin, depth: float) -> tuple:
    """Line colour: darker than the skin in proportion to depth, so lines show on every skin tone."""
    return _mix(skin, np.asarray(skin, float) * 0.35, depth)


def _draw_wrinkles(draw, frame, ident, depths, skin, top, rx, ry, yaw) -> None:
    # Forehead lines between brows and hairline; more of them with age.
    forehead = depths["forehead"]
    if forehead > 0.03:
        brow = -0.3 * ry
        count = 1 + int(round(3 * forehead))
        for i in range(count):
            y = brow - (i + 1) * (brow - top) / (count + 1.2)
            if y < top + 0.04:
                continue
            span = 0.55 * rx * (1 - 0.1 * i)
            draw.line(frame(_curve((-span + yaw, y), (span + yaw, y), 0.04)), fill=_crease(skin, forehead),
                      width=frame.width(0.025 + 0.04 * forehead))
    # Nasolabial folds from the nose wings to beyond the mouth corners.
    folds = depths["folds"]
    nose_tip = (-0.02 + ident.nose_length) * ry
    mouth_y = nose_tip + 0.21 * ry
    crows = depths["crows_feet"]
    for side in (-1, 1):
        start = (yaw + side * (ident.nose_width * 0.5 + 0.1), nose_tip - 0.02)
        end = (yaw + side * (ident.mouth_width * rx / 2 + 0.12), mouth_y + 0.12 + 0.1 * folds)
        draw.line(frame(_curve(start, end, side * 0.06)), fill=_crease(skin, folds),
                  width=frame.width(0.02 + 0.035 * folds))
        # Crow's feet at the outer eye corner.
        if crows > 0.03:
            ex = side * (ident.eye_spacing * rx + 0.17 * ident.eye_size) + yaw
            for dy in (-0.06, 0.0, 0.06):
                length = 0.08 + 0.08 * crows
                draw.line(frame([(ex + side * 0.03, -0.08 * ry + dy * 0.5), (ex + side * length, -0.08 * ry + dy * 1.6)]),
                          fill=_crease(skin, crows), width=frame.width(0.015 + 0.025 * crows))
        # Marionette lines below the mouth corners in later years.
        if folds > 0.65:
            corner = (yaw + side * ident.mouth_width * rx / 2, mouth_y + 0.02)
            draw.line(frame([corner, (corner[0] + side * 0.04, corner[1] + 0.4 * (folds - 0.6))]),
                      fill=_crease(skin, folds - 0.4), width=frame.width(0.02 + 0.035 * folds))


def _draw_glasses(draw, frame, ident, rx, ry, yaw) -> None:
    colour = tuple(ident.glasses_colour)
    eye_y = -0.08 * ry
    width = frame.width(0.035)
    centres = []
    for side in (-1, 1):
        ex = side * ident.eye_spacing * rx + yaw
        centres.append(ex)
        draw.line(frame(_ellipse(ex, eye_y, 0.26, 0.17, n=28)), fill=colour, width=width)
    draw.line(frame([(centres[0] + 0.26, eye_y - 0.03), (centres[1] - 0.26, eye_y - 0.03)]), fill=colour, width=width)
