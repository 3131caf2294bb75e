"""Calibrates the image scorers' default thresholds on real photographs (scikit-image samples).

usage: .venv/bin/python bench/calibrate_scorers.py [--side 1024] [--repeat 5]

Every colour photograph that scikit-image ships (offline) is resized to a long side of 1024 px
and scored as it is and degraded: Gaussian blur, over- and under-exposure, greyscale, hue
rotation (against a palette made of the original's dominant colours) and near-duplicates (JPEG
q70, 90 % size, 5 % brighter). For each scorer it prints min / median / max over the photos
per variant, then the margin between the worst original and the best degraded version, which
is where each default threshold must lie, and the time each scorer takes on a 1024² image.
Last, the local provider's masters, built from a brand palette's colours and their blends, are
scored against that palette, as are their hue-rotated copies.
No database is used. tests/review/test_scorer_calibration.py imports the photos and
degradations from here, so the tests check exactly what was calibrated.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0], the project is not
    sys.path.insert(0, str(ROOT))

# The colour photographs among scikit-image's samples that load without a download.
PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "stereo_motorcycle",
)
SIDE = 1024


def say(text: str = "") -> None:
    print(text, flush=True)  # noqa: T201 - a command-line tool


@functools.cache
def load_photo(name: str, side: int = SIDE) -> Image.Image:
    """Return the sample photo ``name`` as RGB with its long side resized to ``side`` px."""
    from skimage import data

    pixels = getattr(data, name)()
    if isinstance(pixels, tuple):  # stereo_motorcycle: (left, right, disparity)
        pixels = pixels[0]
    image = Image.fromarray(pixels).convert("RGB")
    factor = side / max(image.size)
    size = (round(image.width * factor), round(image.height * factor))
    return image.resize(size, Image.Resampling.LANCZOS)


# --- degradations; sizes are given at 1024 px and scale with the image ------------------------


def blur(image: Image.Image, radius_at_1024: float) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius_at_1024 * max(image.size) / SIDE))


def brightness(image: Image.Image, factor: float) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(factor)


def greyscale(image: Image.Image) -> Image.Image:
    return image.convert("L").convert("RGB")


def hue_rotate(image: Image.Image, degrees: float) -> Image.Image:
    hue, saturation, value = image.convert("HSV").split()
    shift = round(degrees / 360 * 256)
    hue = hue.point(lambda h: (h + shift) % 256)
    return Image.merge("HSV", (hue, saturation, value)).convert("RGB")


def jpeg(image: Image.Image, quality: int = 70) -> Image.Image:
    buffer = BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(BytesIO(buffer.getvalue())).convert("RGB")


def rescale(image: Image.Image, factor: float) -> Image.Image:
    size = (round(image.width * factor), round(image.height * factor))
    return image.resize(size, Image.Resampling.LANCZOS)


def crop(image: Image.Image, left: float, top: float, fraction: float) -> Image.Image:
    """Return the ``fraction``-sized crop whose top-left corner is at (left, top) of the free
    room: 0, 0 is the top-left corner crop, 0.5, 0.5 the centre one."""
    width, height = round(image.width * fraction), round(image.height * fraction)
    x, y = round((image.width - width) * left), round((image.height - height) * top)
    return image.crop((x, y, x + width, y + height))


def corner_crops(image: Image.Image, fraction: float = 0.6) -> list[Image.Image]:
    return [crop(image, left, top, fraction) for left in (0, 1) for top in (0, 1)]


VARIANTS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "original": lambda image: image,
    "blur r=3": lambda image: blur(image, 3),
    "blur r=6": lambda image: blur(image, 6),
    "over ×1.8": lambda image: brightness(image, 1.8),
    "under ×0.3": lambda image: brightness(image, 0.3),
    "greyscale": greyscale,
    "washed out (colour ×0.15)": lambda image: ImageEnhance.Color(image).enhance(0.15),
    "hue +120°": lambda image: hue_rotate(image, 120),
    "hue +180°": lambda image: hue_rotate(image, 180),
    "JPEG q70": jpeg,
    "resize 90 %": lambda image: rescale(image, 0.9),
    "bright ×1.05": lambda image: brightness(image, 1.05),
    "centre crop 60 %": lambda image: crop(image, 0.5, 0.5, 0.6),
}
NEAR_DUPLICATES = ("JPEG q70", "resize 90 %", "bright ×1.05")


def mean_luma(name: str, side: int = SIDE) -> float:
    return float(np.asarray(load_photo(name, side).convert("L"), dtype=np.float64).mean())


def colourfulness(name: str, side: int = SIDE) -> float:
    from review.scoring.analysis import rgb_array
    from review.scoring.colourfulness import colourfulness as measure_colourfulness

    return measure_colourfulness(rgb_array(load_photo(name, side)))[0]


def too_dark_to_overexpose(name: str, side: int = SIDE) -> bool:
    """×1.8 leaves a photo whose mean luma is under 71 darker than mid-grey: not over-exposed."""
    return mean_luma(name, side) * 1.8 < 128


def near_neutral(name: str, side: int = SIDE) -> bool:
    """Below 15 ("slightly colourful" for Hasler and Süsstrunk) a hue rotation changes little."""
    return colourfulness(name, side) < 15


@dataclass(frozen=True)
class Expectation:
    """The variants that must pass and those that must fail at a scorer's default threshold;
    ``exempt`` names photos on which the failing variants are no degradation for it."""

    passing: tuple[str, ...]
    failing: tuple[str, ...]
    exempt: Callable[[str, int], bool] | None = None


EXPECTED: dict[str, Expectation] = {
    "sharpness": Expectation(("original",), ("blur r=3", "blur r=6")),
    "exposure": Expectation(("original",), ("over ×1.8",), too_dark_to_overexpose),
    "colourfulness": Expectation(("original",), ("greyscale",)),
    "palette": Expectation(
        ("original", "JPEG q70", "centre crop 60 %"), ("hue +120°", "hue +180°"), near_neutral
    ),
    "brand_consistency": Expectation(
        ("original", "JPEG q70"), ("hue +120°", "hue +180°", "greyscale")
    ),
    "duplicate": Expectation(("other photos",), NEAR_DUPLICATES),
}


def contexts(name: str, side: int):
    """Return the per-scorer contexts for photo ``name``: its palette, references, neighbours."""
    from review.scoring.base import ScoreContext
    from review.scoring.fingerprint import fingerprint, phash_hex
    from review.scoring.palette import dominant_colours, to_hex

    original = load_photo(name, side)
    palette = tuple(to_hex(colour) for colour, _ in dominant_colours(original))
    references = tuple(fingerprint(part) for part in corner_crops(original))
    return {
        "palette": ScoreContext(palette=palette),
        "brand_consistency": ScoreContext(references=references),
        "duplicate": ScoreContext(neighbours={name: phash_hex(original)}),
        "others": ScoreContext(
            neighbours={
                other: phash_hex(load_photo(other, side)) for other in PHOTOS if other != name
            }
        ),
    }


def measure(side: int) -> dict[str, dict[str, dict[str, float]]]:
    """Return value[scorer][variant][photo] for every image scorer."""
    from review.scoring.base import ScoreContext
    from review.scoring.registry import get_scorer

    scorers = {name: get_scorer(name) for name in EXPECTED}
    values: dict[str, dict[str, dict[str, float]]] = {name: {} for name in scorers}
    for photo in PHOTOS:
        ctxs = contexts(photo, side)
        original = load_photo(photo, side)
        for variant, make in VARIANTS.items():
            image = make(original)
            for name, scorer in scorers.items():
                ctx = ctxs.get(name, ScoreContext())
                values[name].setdefault(variant, {})[photo] = scorer.score(image, ctx).value
        values["duplicate"].setdefault("other photos", {})[photo] = (
            scorers["duplicate"].score(original, ctxs["others"]).value
        )
        # An unrelated photo against this photo's references: how far "off-brand" reads.
        for other in PHOTOS:
            if other != photo:
                value = scorers["brand_consistency"].score(
                    load_photo(other, side), ctxs["brand_consistency"]
                )
                values["brand_consistency"].setdefault("other photos", {})[f"{other}→{photo}"] = (
                    value.value
                )
                value = scorers["palette"].score(load_photo(other, side), ctxs["palette"])
                values["palette"].setdefault("other photos", {})[f"{other}→{photo}"] = value.value
    return values


def timings(side: int, repeat: int) -> dict[str, float]:
    """Return the median ms per scorer on the astronaut at side × side px."""
    from review.scoring.base import ScoreContext
    from review.scoring.registry import get_scorer

    image = load_photo("astronaut", side).resize((side, side))
    ctxs = contexts("astronaut", side)
    result = {}
    for name in EXPECTED:
        scorer = get_scorer(name)
        ctx = ctxs.get(name, ScoreContext())
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            scorer.score(image, ctx)
            runs.append((time.perf_counter() - started) * 1000)
        result[name] = statistics.median(runs)
    return result


def fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.3f}"


def extreme(per_photo: dict[str, float], pick) -> str:
    photo = pick(per_photo, key=per_photo.__getitem__)
    return f"{fmt(per_photo[photo])} {photo}"


def report(
    values: dict[str, dict[str, dict[str, float]]], times: dict[str, float], side: int
) -> None:
    from review.scoring.registry import get_scorer

    # One row per variant, one column per scorer: median (min–max) over the photos.
    names = list(values)
    variants = [v for v in (*VARIANTS, "other photos") if any(v in values[n] for n in names)]
    say("median (min–max) over the photos:")
    say()
    say(f"| variant | {' | '.join(names)} |")
    say(f"|---|{'---:|' * len(names)}")
    for variant in variants:
        cells = []
        for name in names:
            numbers = list(values[name].get(variant, {}).values())
            cells.append(
                f"{fmt(statistics.median(numbers))} ({fmt(min(numbers))}–{fmt(max(numbers))})"
                if numbers
                else ""
            )
        say(f"| {variant} | {' | '.join(cells)} |")
    say()
    say(
        "| scorer | direction | must pass: worst | must fail: best | margin | default | "
        f"exempt from failing | ms at {side}² |"
    )
    say("|---|---|---|---|---|---:|---|---:|")
    for name, expectation in EXPECTED.items():
        scorer = get_scorer(name)
        exempt = sorted(
            photo for photo in PHOTOS if expectation.exempt and expectation.exempt(photo, side)
        )
        passing = {
            f"{photo} {variant}": value
            for variant in expectation.passing
            for photo, value in values[name][variant].items()
        }
        failing = {
            f"{photo} {variant}": value
            for variant in expectation.failing
            for photo, value in values[name][variant].items()
            if photo not in exempt
        }
        if scorer.higher_is_better:
            worst, best = min, max
        else:
            worst, best = max, min
        worst_pass, best_fail = worst(passing.values()), best(failing.values())
        default = scorer.default_threshold
        margin = "none"
        if scorer.passes(worst_pass, best_fail) and not scorer.passes(best_fail, worst_pass):
            margin = f"{fmt(min(worst_pass, best_fail))} – {fmt(max(worst_pass, best_fail))}"
        ok = (
            default is not None
            and scorer.passes(worst_pass, default)
            and not scorer.passes(best_fail, default)
        )
        say(
            f"| {name} | {'higher' if scorer.higher_is_better else 'lower'} is better | "
            f"{extreme(passing, worst)} | {extreme(failing, best)} | {margin} | "
            f"{fmt(default or 0)}{'' if ok else ' **outside**'} | {', '.join(exempt) or '–'} | "
            f"{times[name]:.1f} |"
        )
    say()
    say("Unrelated photos (each photo against every other photo's palette / references):")
    say()
    for name in ("palette", "brand_consistency"):
        scorer = get_scorer(name)
        pairs = values[name]["other photos"]
        passing = sorted(
            pair for pair, value in pairs.items() if scorer.passes(value, scorer.default_threshold)
        )
        say(f"- {name}: {len(passing)} of {len(pairs)} pairs pass ({', '.join(passing) or 'none'})")


# --- images built from a palette: the local provider's masters ---------------------------------

# The palette of tests/factories.py, the one of tests/review/test_scorers.py and two more.
LOCAL_PALETTES = (
    ("#0B3D91", "#FC3D21", "#F5F5F0"),
    ("#E63946", "#1D3557", "#F1FAEE", "#A8DADC"),
    ("#264653", "#2A9D8F", "#E9C46A", "#F4A261", "#E76F51"),
    ("#000000", "#FFD400"),
)
LOCAL_SEEDS = 10


def local_master(palette: tuple[str, ...], seed: int, side: int = SIDE) -> Image.Image:
    """Return the local provider's master for ``seed``: gradients, shapes and tints of
    ``palette`` only, so on-palette by construction."""
    from generation.providers.base import GenerationRequest
    from generation.providers.local import LocalImageProvider

    request = GenerationRequest(
        prompt=f"calibration brief {seed}",
        negative_prompt="",
        width=side,
        height=side,
        seed=seed,
        model="procedural-v1",
        palette=palette,
    )
    return Image.open(BytesIO(LocalImageProvider().generate(request).image_bytes)).convert("RGB")


def measure_local(side: int) -> dict[str, dict[str, list[float]]]:
    """Return value[scorer][variant] over the local masters of every palette.

    Brand consistency uses the first half of a palette's masters as its references and scores
    the second half; near-duplicates compare each master with the others of its palette.
    """
    from review.scoring.base import ScoreContext
    from review.scoring.fingerprint import fingerprint, phash_hex
    from review.scoring.registry import get_scorer

    names = ("sharpness", "exposure", "colourfulness", "palette", "brand_consistency")
    values: dict[str, dict[str, list[float]]] = {name: {} for name in (*names, "duplicate")}
    for palette in LOCAL_PALETTES:
        masters = [local_master(palette, seed, side) for seed in range(LOCAL_SEEDS)]
        half = LOCAL_SEEDS // 2
        references = tuple(fingerprint(master) for master in masters[:half])
        hashes = [phash_hex(master) for master in masters]
        for index, master in enumerate(masters):
            ctx = ScoreContext(
                palette=palette,
                references=references,
                neighbours={str(i): h for i, h in enumerate(hashes) if i != index},
            )
            variants = {"local master": master}
            variants.update({f"hue +{d}°": hue_rotate(master, d) for d in (120, 180)})
            for variant, image in variants.items():
                for name in names:
                    if name == "brand_consistency" and index < half:
                        continue
                    if variant != "local master" and name not in ("palette", "brand_consistency"):
                        continue
                    value = get_scorer(name).score(image, ctx).value
                    values[name].setdefault(variant, []).append(value)
            value = get_scorer("duplicate").score(master, ctx).value
            values["duplicate"].setdefault("local master", []).append(value)
    return values


def report_local(values: dict[str, dict[str, list[float]]]) -> None:
    from review.scoring.registry import get_scorer

    say(
        f"Palette-built masters (LocalImageProvider, {len(LOCAL_PALETTES)} palettes × "
        f"{LOCAL_SEEDS} seeds; brand consistency: seeds 5–9 against 0–4 as references):"
    )
    say()
    say("| scorer | variant | min | median | max | pass at the default |")
    say("|---|---|---:|---:|---:|---:|")
    for name, variants in values.items():
        scorer = get_scorer(name)
        for variant, numbers in variants.items():
            passing = sum(scorer.passes(v, scorer.default_threshold) for v in numbers)
            say(
                f"| {name} | {variant} | {fmt(min(numbers))} | {fmt(statistics.median(numbers))}"
                f" | {fmt(max(numbers))} | {passing} of {len(numbers)} |"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=SIDE, help="Long side of the photos, px.")
    parser.add_argument("--repeat", type=int, default=5, help="Runs per scorer timing.")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brandforge.settings")
    import django

    django.setup()
    import review.scoring  # noqa: F401 - registers the scorers

    say(f"Scorer calibration on {len(PHOTOS)} scikit-image photos at {args.side} px: {PHOTOS}")
    say()
    report(measure(args.side), timings(args.side, args.repeat), args.side)
    say()
    report_local(measure_local(args.side))
    return 0


if __name__ == "__main__":
    sys.exit(main())
