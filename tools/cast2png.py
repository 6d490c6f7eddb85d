#!/usr/bin/env python3
"""Render an asciinema v2 recording (.cast) to a PNG, or to an animated GIF.

    python3 tools/cast2png.py REC.cast OUT.png [--at SECONDS]
    python3 tools/cast2png.py REC.cast OUT.png --at-marker "step 3/3" --after 0.5
    python3 tools/cast2png.py REC.cast --gif OUT.gif --fps 4

The "o" events are replayed into a pyte screen of the header's size, up to
the chosen time (default: the end of the recording), and the screen is drawn
with DejaVu Sans Mono. Needs: python3 -m pip install pyte pillow
"""
import argparse
import json
import sys

try:
    import pyte
    from pyte.graphics import FG_BG_256
    from PIL import Image, ImageDraw, ImageFont
except ImportError as e:
    sys.exit(f"cast2png: {e.name} is missing: python3 -m pip install pyte pillow")

FONT_DIR = "/usr/share/fonts/truetype/dejavu/"
BACKGROUND = "#1e1e1e"
FOREGROUND = "#d4d4d4"
PAD = 12  # pixels of background around the terminal
# A dark-theme palette for the 16 ANSI colours, by pyte's names.
PALETTE = {
    "black": "#000000", "red": "#cd3131", "green": "#0dbc79", "brown": "#e5e510",
    "blue": "#2472c8", "magenta": "#bc3fbc", "cyan": "#11a8cd", "white": "#e5e5e5",
    "brightblack": "#666666", "brightred": "#f14c4c", "brightgreen": "#23d18b",
    "brightbrown": "#f5f543", "brightblue": "#3b8eea", "brightmagenta": "#d670d6",
    "brightcyan": "#29b8db", "brightwhite": "#ffffff",
}
# pyte turns 38;5;0..15 into xterm hex values: map those back to the palette.
XTERM16 = {FG_BG_256[i]: hex_ for i, hex_ in enumerate(PALETTE.values())}
# Box-drawing lines are drawn as rectangles, not glyphs, so they always join:
# each character's arms (left, right, up, down), light or heavy.
ARMS = ["lr", "ud", "rd", "ld", "ru", "lu", "udr", "udl", "lrd", "lru", "lrud"]
BOX = {**{c: (a, 1) for c, a in zip("─│┌┐└┘├┤┬┴┼", ARMS)},
       **{c: (a, 2) for c, a in zip("━┃┏┓┗┛┣┫┳┻╋", ARMS)},
       **{c: (a, 1) for c, a in zip("╭╮╰╯", ARMS[2:6])}}


def read_cast(path):
    """Return (width, height, events) of a v2 cast, or exit with a clear message."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        sys.exit(f"cast2png: cannot read {path}: {e.strerror}")
    try:
        header = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("version") != 2 or "width" not in header:
        sys.exit(f"cast2png: {path} is not an asciicast v2 file (no version 2 header line)")
    events = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            t, kind, data = json.loads(line)
            events.append((float(t), kind, data))
        except (ValueError, TypeError):
            sys.exit(f"cast2png: {path}:{n}: not a [time, type, data] event")
    return header["width"], header["height"], events


def load_fonts(size):
    try:
        return (ImageFont.truetype(FONT_DIR + "DejaVuSansMono.ttf", size),
                ImageFont.truetype(FONT_DIR + "DejaVuSansMono-Bold.ttf", size))
    except OSError:
        print(f"cast2png: warning: no DejaVu Sans Mono in {FONT_DIR}, using PIL's default font",
              file=sys.stderr)
        font = ImageFont.load_default(size)
        return font, font


def colour(name, default):
    """pyte's colour: "default", a name like "brightred", or hex (256-colour, truecolor)."""
    if name == "default":
        return default
    return PALETTE.get(name) or XTERM16.get(name) or "#" + name


class Renderer:
    def __init__(self, cols, rows, font_size):
        self.cols, self.rows = cols, rows
        self.font, self.bold = load_fonts(font_size)
        ascent, descent = self.font.getmetrics()
        self.cw = round(self.font.getlength("M"))
        self.ch = ascent + descent
        self.light = max(1, round(self.ch / 16))
        self.size = (cols * self.cw + 2 * PAD, rows * self.ch + 2 * PAD)

    def render(self, screen):
        img = Image.new("RGB", self.size, BACKGROUND)
        draw = ImageDraw.Draw(img)
        for y in range(self.rows):
            top = PAD + y * self.ch
            for x, cell in ((x, screen.buffer[y][x]) for x in range(self.cols)):
                left = PAD + x * self.cw
                fg, bg = colour(cell.fg, FOREGROUND), colour(cell.bg, BACKGROUND)
                if cell.reverse:
                    fg, bg = bg, fg
                if bg != BACKGROUND:
                    draw.rectangle((left, top, left + self.cw - 1, top + self.ch - 1), fill=bg)
                rects = self.shapes(cell.data, left, top)
                for rect in rects:
                    draw.rectangle(rect, fill=fg)
                if not rects and cell.data.strip():
                    draw.text((left, top), cell.data, fill=fg, font=self.bold if cell.bold else self.font)
                if cell.underscore:
                    draw.line((left, top + self.ch - 2, left + self.cw - 1, top + self.ch - 2), fill=fg)
        return img

    def shapes(self, char, left, top):
        """Box-drawing lines and block elements as exact rectangles, [] for other characters."""
        right, bottom = left + self.cw - 1, top + self.ch - 1
        code = ord(char) if len(char) == 1 else 0
        if char in BOX:
            arms, weight = BOX[char]
            t = self.light if weight == 1 else 3 * self.light
            x0, y0 = left + (self.cw - t) // 2, top + (self.ch - t) // 2  # the centre square
            x1, y1 = x0 + t - 1, y0 + t - 1
            spans = {"l": (left, y0, x1, y1), "r": (x0, y0, right, y1),
                     "u": (x0, top, x1, y1), "d": (x0, y0, x1, bottom)}
            return [spans[arm] for arm in arms]
        if 0x2581 <= code <= 0x2588:  # lower eighths, up to the full block
            return [(left, bottom + 1 - round(self.ch * (code - 0x2580) / 8), right, bottom)]
        if 0x2589 <= code <= 0x258F:  # left eighths, 7/8 down to 1/8
            return [(left, top, left - 1 + max(1, round(self.cw * (0x2590 - code) / 8)), bottom)]
        if code == 0x2580:  # upper half
            return [(left, top, right, top - 1 + self.ch // 2)]
        if code == 0x2590:  # right half
            return [(left + self.cw // 2, top, right, bottom)]
        return []


class Player:
    """Feeds the "o" events into a pyte screen, forward in time only."""

    def __init__(self, cols, rows, events):
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.Stream(self.screen)
        self.output = [(t, data) for t, kind, data in events if kind == "o"]
        self.next = 0

    def advance(self, until):
        while self.next < len(self.output) and self.output[self.next][0] <= until:
            self.stream.feed(self.output[self.next][1])
            self.next += 1


def pick_time(args, events):
    if args.at_marker is None:
        return args.at if args.at is not None else float("inf")
    for t, kind, data in events:
        if kind == "m" and data == args.at_marker:
            return t + args.after
    labels = sorted({data for _, kind, data in events if kind == "m"})
    sys.exit(f"cast2png: no marker {args.at_marker!r} in {args.cast}; "
             f"markers: {', '.join(map(repr, labels)) or 'none'}")


def save_gif(args, renderer, player, events):
    end = events[-1][0] if events else 0.0
    step = 1.0 / args.fps
    count = min(int(end / step) + 1, args.max_frames)
    if count == args.max_frames:
        step = end / (count - 1)  # spread the capped frames over the whole recording
    frames = []
    for i in range(count):
        player.advance(i * step if i < count - 1 else end)
        frames.append(renderer.render(player.screen))
    # One palette for every frame, so Pillow can store only what changed.
    palette = frames[-1].quantize(colors=64, dither=Image.Dither.NONE)
    frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    frames[0].save(args.gif, save_all=True, append_images=frames[1:], loop=0,
                   duration=round(step * 1000), optimize=True)
    print(f"cast2png: wrote {args.gif}: {count} frames, {step:.2f}s apart")


def main():
    p = argparse.ArgumentParser(description="Render an asciicast v2 recording to PNG or GIF.")
    p.add_argument("cast", help="the .cast file")
    p.add_argument("png", nargs="?", help="the PNG to write")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--at", type=float, help="render the screen at this time (default: the end)")
    when.add_argument("--at-marker", metavar="LABEL", help="render at the first marker with this label")
    p.add_argument("--after", type=float, default=0.0, help="seconds after --at-marker")
    p.add_argument("--font-size", type=int, default=16)
    p.add_argument("--gif", metavar="OUT.gif", help="also write an animated GIF of the whole recording")
    p.add_argument("--fps", type=float, default=4.0, help="GIF frames per second of cast time")
    p.add_argument("--max-frames", type=int, default=120, help="cap on the GIF's frames")
    args = p.parse_args()
    if not args.png and not args.gif:
        p.error("give a PNG to write, or --gif OUT.gif")

    cols, rows, events = read_cast(args.cast)
    renderer = Renderer(cols, rows, args.font_size)
    if args.png:
        player = Player(cols, rows, events)
        player.advance(pick_time(args, events))
        img = renderer.render(player.screen).quantize(colors=256, dither=Image.Dither.NONE)
        img.save(args.png, optimize=True)  # palette mode: a fraction of the RGB size
        print(f"cast2png: wrote {args.png} ({img.width}x{img.height})")
    if args.gif:
        save_gif(args, renderer, Player(cols, rows, events), events)


if __name__ == "__main__":
    main()
