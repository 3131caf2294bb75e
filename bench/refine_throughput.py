"""Measures the CPU cost of refinement and renditions per master against the bare encodes."""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0], the project is not
    sys.path.insert(0, str(ROOT))

from bench.engine_throughput import calibrate, django_setup, git_commit, say  # noqa: E402

PALETTE = ("#1F3A5F", "#E07A5F", "#F2CC8F", "#81B29A", "#F4F1DE")
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = {"DejaVu Sans Bold": "DejaVuSans-Bold.ttf", "DejaVu Sans": "DejaVuSans.ttf"}
VARIABLES = {
    "brand": "Northwind Coffee",
    "locale": "en-GB",
    "headline": "Single-origin espresso, roasted slowly for calm autumn mornings",
    "cta": "Shop now",
}
# The refinement chain: grain on the master, then the brand's watermark (Brand defaults), which
# is a trailing overlay and so is applied per rendition after reframing, as the engine does.
CHAIN = [
    {"step": "film_grain", "params": {}},
    {
        "step": "watermark",
        "params": {"anchor": "bottom-right", "margin": 0.04, "opacity": 0.8, "scale": 0.18},
    },
]
PRINT_SIDE = 4096
PRINT_QUALITY = 90
PRINT_DPI = 300
RSS_TARGET_MB = 400
RATIO_TARGET = 1.5


@dataclass(frozen=True)
class Format:
    """A channel format, as ``render`` reads it from ``ChannelFormat``."""

    name: str
    width: int
    height: int
    file_format: str
    quality: int
    dpi: int | None = None

    @property
    def label(self) -> str:
        return f"{self.width}×{self.height} {self.file_format}"


FORMATS = (
    Format("square", 1080, 1080, "WEBP", 85),
    Format("story", 1080, 1920, "JPEG", 85),
    Format("landscape", 1920, 1080, "AVIF", 70),
)


@dataclass(frozen=True)
class DesignedLayout:
    """What ``rendition_image`` reads of a ``Layout``: its layers and design canvas."""

    layers: list[dict]
    width: int
    height: int


# --- inputs -----------------------------------------------------------------------------------


def layout_layers(width: int, height: int) -> list[dict]:
    """Image, a dark scrim at the bottom, a headline, a CTA button with its text, the logo."""

    def px(value: float) -> int:  # designed for a 1080 px wide canvas, as the demo's layouts
        return round(value * width / 1080)

    bottom = height - px(64)
    button = [px(64), bottom - px(100), px(484), bottom]
    return [
        {"type": "image"},
        {"type": "scrim", "box": [0, height // 2, width, height], "end_opacity": 0.7},
        {
            "type": "text",
            "box": [px(64), bottom - px(300), width - px(64), bottom - px(130)],
            "text": "{{headline}}",
            "font": "DejaVu Sans Bold",
            "size": px(84),
            "min_size": px(40),
            "colour": "#FFFFFF",
            "valign": "bottom",
            "max_lines": 2,
        },
        {"type": "shape", "box": button, "colour": 1, "radius": px(50)},
        {
            "type": "text",
            "box": button,
            "text": "{{cta}}",
            "font": "DejaVu Sans",
            "size": px(40),
            "colour": "#FFFFFF",
            "align": "center",
            "valign": "middle",
            "max_lines": 1,
        },
        {"type": "logo", "box": [px(64), px(64), px(304), px(160)], "anchor": "top-left"},
    ]


def make_layouts() -> dict[str, DesignedLayout]:
    from assets.layouts import validate_layers

    layouts = {}
    for fmt in FORMATS:
        layers = validate_layers(
            layout_layers(fmt.width, fmt.height),
            width=fmt.width,
            height=fmt.height,
            fonts=set(FONT_FILES),
            palette_size=len(PALETTE),
        )
        layouts[fmt.name] = DesignedLayout(layers, fmt.width, fmt.height)
    return layouts


def make_logo():
    """A 480×200 wordmark on transparency, stored and read back as the brand's logo is."""
    from PIL import Image, ImageDraw, ImageFont

    from brandforge.images import encode_image, open_untrusted_image

    logo = Image.new("RGBA", (480, 200), (0, 0, 0, 0))
    draw = ImageDraw.Draw(logo)
    draw.rounded_rectangle(
        [4, 4, 476, 196], radius=48, fill=PALETTE[0], outline=PALETTE[2], width=8
    )
    font = ImageFont.truetype(str(FONT_DIR / FONT_FILES["DejaVu Sans Bold"]), 96)
    draw.text((240, 100), "NWC", font=font, fill=PALETTE[4], anchor="mm")
    return open_untrusted_image(encode_image(logo, fmt="PNG"), formats=("PNG",))


def make_master_png(seed: int, size: int) -> bytes:
    """The PNG the local provider renders for this seed (gradient, shapes, dot grid, grain)."""
    from generation.providers.base import GenerationRequest
    from generation.providers.local import LocalImageProvider

    request = GenerationRequest(
        prompt=f"A cup of espresso on a marble counter, calm mood, take {seed}",
        negative_prompt="",
        width=size,
        height=size,
        seed=seed,
        model="procedural-v1",
        palette=PALETTE,
    )
    return LocalImageProvider().generate(request).image_bytes


def decode_master(data: bytes):
    """Decode as the engine does a downloaded master or a stored file (``file_open_image``)."""
    from brandforge.images import open_untrusted_image

    return open_untrusted_image(data, formats=("PNG", "JPEG", "WEBP", "AVIF"))


# --- timing -----------------------------------------------------------------------------------


class Clock:
    """CPU and wall seconds per named part, accumulated; ``label`` names the current format."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)
        self.label = ""

    @contextmanager
    def part(self, name: str):
        key = f"{name}:{self.label}" if self.label else name
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            self.cpu[key] += time.process_time() - cpu
            self.wall[key] += time.perf_counter() - wall


class _TimedStep:
    def __init__(self, step, clock: Clock) -> None:
        self._step, self._clock = step, clock
        self.overlay = step.overlay

    def run(self, image, params, ctx):
        with self._clock.part(self._step.name):
            return self._step.run(image, params, ctx)


@contextmanager
def instrumented(clock: Clock):
    """Time the parts of ``rendition_image`` (reframe, layout, overlay steps) while it runs
    unchanged, by wrapping the functions it looks up in its module."""
    from generation.services import refine

    names = ("reframe_to", "render_layout", "get_step")
    originals = {name: getattr(refine, name) for name in names}

    def timed(part: str, func):
        def wrapper(*args, **kwargs):
            with clock.part(part):
                return func(*args, **kwargs)

        return wrapper

    refine.reframe_to = timed("reframe", originals["reframe_to"])
    refine.render_layout = timed("layout", originals["render_layout"])
    refine.get_step = lambda name: _TimedStep(originals["get_step"](name), clock)
    try:
        yield
    finally:
        for name, func in originals.items():
            setattr(refine, name, func)


# --- one master -------------------------------------------------------------------------------


@dataclass
class Kit:
    """What every master shares: the brand's logo, fonts and layouts."""

    logo: Any
    fonts: dict[str, bytes]
    layouts: dict[str, DesignedLayout]


def refine_master(master, seed: int, kit: Kit, clock: Clock) -> dict[str, Any]:
    """Grain, then per format ``rendition_image`` and ``encode_image`` as ``render`` and
    ``rendition_create`` call them; return the renditions' pixels, bytes and encode inputs."""
    from assets.services import recipe_digest
    from brandforge.images import encode_image, provenance_xmp
    from generation.pipeline.base import StepContext
    from generation.pipeline.focal import find_focal_point
    from generation.pipeline.registry import get_step, validate_chain
    from generation.services.refine import LayoutInputs, rendition_image

    chain = validate_chain(CHAIN)
    ctx = StepContext(logo=kit.logo, palette=PALETTE, seed=seed)
    image = master
    for entry in chain:  # refine(): the steps up to the trailing overlays run on the master
        step = get_step(entry["step"])
        if step.overlay:
            break
        with clock.part(entry["step"]):
            image = step.run(image, entry["params"], ctx)
    trailing = 0  # render(): the trailing overlay steps are applied per rendition
    while trailing < len(chain) and get_step(chain[-1 - trailing]["step"]).overlay:
        trailing += 1
    overlays = chain[len(chain) - trailing :]
    recipe = {"provider": "local", "model": "procedural-v1", "seed": seed, "steps": chain}
    uid = str(uuid.UUID(int=seed))
    inputs = LayoutInputs(variables=VARIABLES, palette=PALETTE, fonts=kit.fonts, logo=ctx.logo)
    with clock.part("focal"):
        focal_point = find_focal_point(image)
    outputs = {}
    with instrumented(clock):
        for fmt in FORMATS:
            clock.label = fmt.name
            framed = rendition_image(
                image,
                width=fmt.width,
                height=fmt.height,
                focal_point=focal_point,
                overlays=overlays,
                ctx=ctx,
                layout=kit.layouts[fmt.name],
                layout_inputs=inputs,
                fill="auto",
            )
            xmp = provenance_xmp(recipe_id=uid, recipe_hash=recipe_digest(recipe))
            with clock.part("encode"):
                data = encode_image(
                    framed, fmt=fmt.file_format, quality=fmt.quality, dpi=fmt.dpi, xmp=xmp
                )
            outputs[fmt.name] = (framed, xmp, data)
            clock.label = ""
    return {"grained": image, "outputs": outputs}


def bare_encode(outputs: dict[str, tuple], clock: Clock) -> None:
    """Only ``encode_image`` of the final renditions: the same pixels, format, quality, XMP."""
    from brandforge.images import encode_image

    for fmt in FORMATS:
        framed, xmp, data = outputs[fmt.name]
        clock.label = fmt.name
        with clock.part("bare"):
            again = encode_image(
                framed, fmt=fmt.file_format, quality=fmt.quality, dpi=fmt.dpi, xmp=xmp
            )
        clock.label = ""
        if again != data:
            raise RuntimeError(f"{fmt.name}: the bare encode gave other bytes")


def store_node(image, clock: Clock) -> None:
    """The encodes ``asset_create`` does for the grain node (PNG, WebP thumbnail); not stored."""
    from brandforge.images import encode_image, thumbnail

    with clock.part("node_store"):
        encode_image(image, fmt="PNG")
        encode_image(thumbnail(image), fmt="WEBP", quality=80)


def run_master(seed: int, size: int, kit: Kit) -> dict[str, Any]:
    master = decode_master(make_master_png(seed, size))
    clock = Clock()
    cpu, wall = time.process_time(), time.perf_counter()
    result = refine_master(master, seed, kit, clock)
    pipeline_cpu, pipeline_wall = time.process_time() - cpu, time.perf_counter() - wall
    bare_encode(result["outputs"], clock)
    store_node(result["grained"], clock)
    bare_cpu = sum(v for k, v in clock.cpu.items() if k.startswith("bare:"))
    bare_wall = sum(v for k, v in clock.wall.items() if k.startswith("bare:"))
    return {
        "seed": seed,
        "pipeline_cpu_ms": 1000 * pipeline_cpu,
        "pipeline_wall_ms": 1000 * pipeline_wall,
        "bare_cpu_ms": 1000 * bare_cpu,
        "bare_wall_ms": 1000 * bare_wall,
        "ratio": pipeline_cpu / bare_cpu,
        "node_store_cpu_ms": 1000 * clock.cpu["node_store"],
        "parts_cpu_ms": {k: 1000 * v for k, v in clock.cpu.items()},
        "parts_wall_ms": {k: 1000 * v for k, v in clock.wall.items()},
        "bytes": {fmt.name: len(result["outputs"][fmt.name][2]) for fmt in FORMATS},
    }


def run_masters(args) -> list[dict[str, Any]]:
    kit = Kit(
        logo=make_logo(),
        fonts={family: (FONT_DIR / name).read_bytes() for family, name in FONT_FILES.items()},
        layouts=make_layouts(),
    )
    run_master(1000, args.size, kit)  # warm-up: font faces, codec set-up, first allocations
    profiler = cProfile.Profile() if args.profile else None
    results = []
    for n in range(args.masters):
        if profiler is not None:
            profiler.enable()
        results.append(run_master(n + 1, args.size, kit))
        if profiler is not None:
            profiler.disable()
        r = results[-1]
        say(
            f"   master {n + 1}: pipeline {r['pipeline_cpu_ms']:.0f} ms CPU, bare encode "
            f"{r['bare_cpu_ms']:.0f} ms, {r['ratio']:.2f}×"
        )
    if profiler is not None:
        profiler.dump_stats(args.profile)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        say(text.getvalue())
    return results


# --- the 4096² print upscale, in a fresh process -----------------------------------------------


def _memory_mb() -> dict[str, float]:
    """This process's RSS now, its peak (VmHWM) and ``ru_maxrss``, in MB (10⁶ bytes).

    ``ru_maxrss`` also holds the RSS of the process that spawned this one (exec records the old
    address space's peak), so a child of a large process reads it too high; VmHWM counts this
    program only. Started from a shell, the two agree.
    """
    status = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                status[key] = int(value.split()[0]) * 1024 / 1e6
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
    return {"rss_mb": status["VmRSS"], "peak_mb": status["VmHWM"], "ru_maxrss_mb": maxrss}


def print_upscale_child(path: str) -> int:
    """Upscale the master at ``path`` to 4096 px, render and encode the print rendition (JPEG
    q90, 300 dpi, XMP) as ``render``/``rendition_create`` would; print the RSS per stage."""
    django_setup()
    from assets.services import recipe_digest
    from brandforge.images import encode_image, provenance_xmp, thumbnail
    from generation.pipeline.base import StepContext
    from generation.pipeline.focal import find_focal_point
    from generation.pipeline.registry import get_step, validate_chain
    from generation.services.refine import rendition_image

    stages: list[dict[str, Any]] = []
    started = cpu = time.process_time()
    wall = wall_started = time.perf_counter()

    def mark(stage: str) -> None:
        nonlocal cpu, wall
        now_cpu, now_wall = time.process_time(), time.perf_counter()
        stages.append(
            {
                "stage": stage,
                "cpu_ms": 1000 * (now_cpu - cpu),
                "wall_ms": 1000 * (now_wall - wall),
                **_memory_mb(),
            }
        )
        cpu, wall = now_cpu, now_wall

    mark("imports (Django set up, pipeline loaded)")
    data = Path(path).read_bytes()
    logo = make_logo()
    master = decode_master(data)
    mark(f"master decoded ({master.width}×{master.height}), logo")
    chain = validate_chain(
        [{"step": "upscale_local", "params": {"long_side": PRINT_SIDE}}, CHAIN[1]]
    )
    ctx = StepContext(logo=logo, palette=PALETTE, seed=1)
    upscaled = get_step("upscale_local").run(master, chain[0]["params"], ctx)
    mark(f"upscale_local to {upscaled.width}×{upscaled.height}")
    framed = rendition_image(
        upscaled,
        width=upscaled.width,
        height=upscaled.height,
        focal_point=find_focal_point(upscaled),
        overlays=chain[1:],
        ctx=ctx,
        fill="auto",
    )
    mark("rendition_image (reframe, watermark)")
    recipe = {"provider": "local", "seed": 1, "steps": chain}
    xmp = provenance_xmp(recipe_id=str(uuid.UUID(int=1)), recipe_hash=recipe_digest(recipe))
    encoded = encode_image(framed, fmt="JPEG", quality=PRINT_QUALITY, dpi=PRINT_DPI, xmp=xmp)
    mark(f"encode_image JPEG q{PRINT_QUALITY} {PRINT_DPI} dpi + XMP ({len(encoded) / 1e6:.1f} MB)")
    print_peak = stages[-1]["peak_mb"]
    print_cpu = time.process_time() - started
    print_wall = time.perf_counter() - wall_started
    # Beyond the issue's figure: asset_create stores the upscale node too (PNG, thumbnail).
    encode_image(upscaled, fmt="PNG")
    encode_image(thumbnail(upscaled), fmt="WEBP", quality=80)
    mark("then asset_create's encodes of the upscale node (PNG + WebP thumbnail)")
    say(
        json.dumps(
            {
                "stages": stages,
                "baseline_mb": stages[0]["peak_mb"],
                "peak_mb": print_peak,
                "cpu_s": print_cpu,
                "wall_s": print_wall,
                "peak_with_node_store_mb": stages[-1]["peak_mb"],
            }
        )
    )
    return 0


def run_print_upscale(size: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".png") as fh:
        fh.write(make_master_png(1, size))
        fh.flush()
        done = subprocess.run(  # noqa: S603 - this script, no shell
            [sys.executable, str(Path(__file__).resolve()), "--print-upscale-child", fh.name],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the print upscale child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- report -----------------------------------------------------------------------------------


def _mean(results: list[dict], key: str) -> float:
    return statistics.fmean(r[key] for r in results)


def _part(results: list[dict], key: str) -> float:
    return statistics.fmean(r["parts_cpu_ms"].get(key, 0.0) for r in results)


def masters_table(results: list[dict]) -> str:
    lines = [
        "| master | pipeline CPU (ms) | pipeline wall (ms) | bare encode CPU (ms) "
        "| bare encode wall (ms) | ratio | + grain node store CPU (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['seed']} | {r['pipeline_cpu_ms']:.0f} | {r['pipeline_wall_ms']:.0f} "
            f"| {r['bare_cpu_ms']:.0f} | {r['bare_wall_ms']:.0f} | {r['ratio']:.2f}× "
            f"| {r['node_store_cpu_ms']:.0f} |"
        )
    for name, agg in (("mean", statistics.fmean), ("median", statistics.median)):
        values = [
            agg(r[key] for r in results)
            for key in (
                "pipeline_cpu_ms",
                "pipeline_wall_ms",
                "bare_cpu_ms",
                "bare_wall_ms",
                "ratio",
                "node_store_cpu_ms",
            )
        ]
        lines.append(
            f"| **{name}** | {values[0]:.0f} | {values[1]:.0f} | {values[2]:.0f} "
            f"| {values[3]:.0f} | {values[4]:.2f}× | {values[5]:.0f} |"
        )
    return "\n".join(lines)


def breakdown_table(results: list[dict]) -> str:
    """Mean CPU ms per master, per part and format."""
    total = _mean(results, "pipeline_cpu_ms")
    head = " | ".join(fmt.label for fmt in FORMATS)
    lines = [f"| part (CPU ms per master) | {head} | all | share |", "|---" + "|---:" * 5 + "|"]
    blank = " | ".join("" for _ in FORMATS)

    def row(name: str, cells: list[float] | None, value: float) -> None:
        shown = " | ".join(f"{c:.1f}" for c in cells) if cells else blank
        lines.append(f"| {name} | {shown} | {value:.1f} | {100 * value / total:.0f} % |")

    row("film_grain (on the master)", None, _part(results, "film_grain"))
    row("find_focal_point (once)", None, _part(results, "focal"))
    named = 0.0
    for part, name in (
        ("reframe", "reframe_to (fill auto)"),
        ("layout", "render_layout"),
        ("watermark", "watermark"),
        ("encode", "encode_image"),
    ):
        cells = [_part(results, f"{part}:{fmt.name}") for fmt in FORMATS]
        named += sum(cells)
        row(name, cells, sum(cells))
    named += _part(results, "film_grain") + _part(results, "focal")
    row("other (chain checks, XMP, recipe digest)", None, total - named)
    row("**pipeline total**", None, total)
    bare = [_part(results, f"bare:{fmt.name}") for fmt in FORMATS]
    row("bare encode (same outputs)", bare, sum(bare))
    row("asset_create's encodes of the grain node", None, _part(results, "node_store"))
    return "\n".join(lines)


def summary(results: list[dict], upscale: dict | None) -> dict[str, Any]:
    pipeline = sum(r["pipeline_cpu_ms"] for r in results)
    bare = sum(r["bare_cpu_ms"] for r in results)
    node = sum(r["node_store_cpu_ms"] for r in results)
    avif = [fmt.name for fmt in FORMATS if fmt.file_format == "AVIF"]
    encode = sum(_part(results, f"encode:{fmt.name}") for fmt in FORMATS)
    encode_avif = sum(_part(results, f"encode:{name}") for name in avif)
    bare_avif = sum(_part(results, f"bare:{name}") for name in avif)
    # The same ratio without the AVIF rendition: its encode is so slow that it hides the rest.
    avif_work = sum(
        _part(results, f"{part}:{name}")
        for part in ("reframe", "layout", "watermark", "encode")
        for name in avif
    )
    out = {
        "ratio": pipeline / bare,
        "ratio_without_avif": (pipeline / len(results) - avif_work)
        / (bare / len(results) - bare_avif),
        "ratio_with_node_store": (pipeline + node) / bare,
        "pipeline_cpu_ms": pipeline / len(results),
        "bare_cpu_ms": bare / len(results),
        "avif_share_of_encode": encode_avif / encode,
        "avif_share_of_bare": bare_avif / (bare / len(results)),
    }
    if upscale is not None:
        out["print_peak_mb"] = upscale["peak_mb"]
    return out


def avif_codecs() -> str:
    from PIL import _avif

    return f"libavif {_avif.libavif_version}, {_avif.codec_versions()}"


def upscale_table(upscale: dict) -> str:
    lines = [
        "| stage | CPU (ms) | wall (ms) | RSS after (MB) | peak RSS so far, VmHWM (MB) "
        "| ru_maxrss (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in upscale["stages"]:
        lines.append(
            f"| {s['stage']} | {s['cpu_ms']:.0f} | {s['wall_ms']:.0f} | {s['rss_mb']:.0f} "
            f"| {s['peak_mb']:.0f} | {s['ru_maxrss_mb']:.0f} |"
        )
    return "\n".join(lines)


def report(results: list[dict], upscale: dict | None, totals: dict, args) -> str:
    parts = [
        f"{args.masters} masters of {args.size}² (plus 1 warm-up), 3 renditions each: "
        + ", ".join(f"{fmt.label} q{fmt.quality}" for fmt in FORMATS)
        + ".",
        "",
        masters_table(results),
        "",
        breakdown_table(results),
        "",
        f"Pipeline / bare encode (CPU, all masters): **{totals['ratio']:.2f}×** (target ≤ "
        f"{RATIO_TARGET}×: {'met' if totals['ratio'] <= RATIO_TARGET else 'not met'}); with "
        f"asset_create's encodes of the grain node: {totals['ratio_with_node_store']:.2f}×; "
        f"without the AVIF rendition: {totals['ratio_without_avif']:.2f}×.",
        f"AVIF codec: {avif_codecs()}.",
        f"AVIF's share of the encode time: {100 * totals['avif_share_of_encode']:.0f} % in the "
        f"pipeline, {100 * totals['avif_share_of_bare']:.0f} % of the bare encode.",
    ]
    if upscale is not None:
        verdict = "met" if upscale["peak_mb"] <= RSS_TARGET_MB else "not met"
        increment = upscale["peak_mb"] - upscale["baseline_mb"]
        parts += [
            "",
            f"Print upscale ({args.size}² → {PRINT_SIDE}², fresh process):",
            "",
            upscale_table(upscale),
            "",
            f"Peak RSS **{upscale['peak_mb']:.0f} MB** (baseline after imports "
            f"{upscale['baseline_mb']:.0f} MB, so +{increment:.0f} MB for the work; "
            f"target ≤ {RSS_TARGET_MB} MB: {verdict}); "
            f"{upscale['cpu_s']:.2f} s CPU, {upscale['wall_s']:.2f} s wall. With the node's "
            f"PNG store after it: {upscale['peak_with_node_store_mb']:.0f} MB.",
        ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--masters", type=int, default=10, help="Masters timed (after 1 warm-up).")
    parser.add_argument("--size", type=int, default=1024, help="Side of the square master, px.")
    parser.add_argument("--skip-upscale", action="store_true", help="Skip the 4096² RSS part.")
    parser.add_argument("--profile", default="", help="Write cProfile stats of the timed masters.")
    parser.add_argument("--print-upscale-child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.print_upscale_child:
        return print_upscale_child(args.print_upscale_child)

    django_setup()
    stamp = datetime.now().strftime("%Y%m%d%H%M%S")
    commit = git_commit()
    say(
        f"BrandForge refinement + renditions at {commit}: {args.masters} masters of {args.size}², "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    speed = calibrate()
    say(f"   calibration: {speed:.0f} ms CPU for the fixed workload (lower is faster)")
    results = run_masters(args)
    speed_after = calibrate()
    upscale = None if args.skip_upscale else run_print_upscale(args.size)
    totals = summary(results, upscale)
    text = report(results, upscale, totals, args)
    text = f"Commit {commit}, calibration {speed:.0f} / {speed_after:.0f} ms.\n\n{text}"
    say("\n" + text)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"refine-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "commit": commit,
                "args": vars(args),
                "cpus": os.cpu_count(),
                "load": os.getloadavg(),
                "calibration_ms": [speed, speed_after],
                "formats": [asdict(fmt) for fmt in FORMATS],
                "chain": CHAIN,
                "summary": totals,
                "avif": avif_codecs(),
                "masters": results,
                "print_upscale": upscale,
                "table": text,
            },
            indent=2,
        )
    )
    say(f"\nkept {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
