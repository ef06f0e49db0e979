#!/usr/bin/env python3
"""Run OpenCV's CSRT or KCF tracker over an image sequence or video.

Comparison benchmark only -- this script is never a dependency of the product.
Requires /usr/bin/python3 with cv2 (Debian python3-opencv) and numpy; --video
additionally needs ffmpeg on PATH.

Examples:
  /usr/bin/python3 bench/opencv_trackers.py --tracker csrt --init 330,200,80,80 \\
      --frames /work/shared/data/us_seq_liver1/frames > csrt.csv
  /usr/bin/python3 bench/opencv_trackers.py --tracker kcf --init 100,80,40,40 \\
      --video clip.sonrec --size 1920x1080 --crop 0,0,960,1080 --threads 2

Output (stdout): CSV "frame,cx,cy,w,h,ok,ms", one row per frame including frame
0 (the init box, ok=1, ms = init time).  cx/cy are the box centre in full-frame
pixel coordinates.  ms is the wall time of that frame's update() call.  When
update() fails the last good box is repeated with ok=0.

Final stderr line: JSON {"tracker", "frames", "median_ms", "mean_ms", "threads",
"opencv", "api", "prime"}; the ms statistics cover update() calls only (frame 0 excluded).

Exit code 2 (message on stderr, no traceback) for bad arguments, missing
folder/file, no frames, frame size mismatch, init box outside the frame/crop,
ffmpeg missing or failing.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time


class UsageError(Exception):
    """A user-facing error: printed on stderr, exit code 2."""


def fail(msg):
    raise UsageError(msg)


# --------------------------------------------------------------------------
# argument parsing helpers

def parse_box(text, name):
    parts = text.split(",")
    if len(parts) != 4:
        fail(f"{name} must be X,Y,W,H (got {text!r})")
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        fail(f"{name} must be four numbers X,Y,W,H (got {text!r})")
    x, y, w, h = vals
    if w <= 0 or h <= 0:
        fail(f"{name} width and height must be > 0 (got {text!r})")
    return x, y, w, h


def parse_size(text):
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m:
        fail(f"--size must be WxH, e.g. 760x580 (got {text!r})")
    w, h = int(m.group(1)), int(m.group(2))
    if w <= 0 or h <= 0:
        fail(f"--size must be positive (got {text!r})")
    return w, h


def natural_key(name):
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower())
            for t in re.split(r"(\d+)", name) if t != ""]


# --------------------------------------------------------------------------
# frame sources: generators yielding 2-D uint8 numpy arrays

def frames_from_dir(cv2, folder):
    if not os.path.isdir(folder):
        fail(f"--frames folder not found: {folder}")
    names = [n for n in os.listdir(folder)
             if n.lower().endswith((".pgm", ".png"))
             and os.path.isfile(os.path.join(folder, n))]
    if not names:
        fail(f"no .pgm/.png frames in {folder}")
    names.sort(key=natural_key)

    def gen():
        for n in names:
            path = os.path.join(folder, n)
            img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
            if img is None:
                fail(f"cannot read image {path}")
            yield img
    return gen()


class FfmpegSource:
    """Decode a video to 8-bit gray frames through an ffmpeg child process."""

    def __init__(self, np, path, size):
        self.np = np
        self.w, self.h = size
        self.proc = None
        self.err_chunks = []
        self.killed = False
        if os.path.isdir(path):
            if not path.rstrip("/").lower().endswith(".sonrec"):
                fail(f"--video {path} is a folder but not a .sonrec recording")
            path = os.path.join(path, "video.nut")
        if not os.path.isfile(path):
            fail(f"--video file not found: {path}")
        self.path = path
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            fail("ffmpeg not found on PATH (needed for --video)")
        self._check_size_with_ffprobe()
        cmd = [ffmpeg, "-nostdin", "-v", "error", "-i", path,
               "-f", "rawvideo", "-pix_fmt", "gray", "-"]
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE,
                                         bufsize=0)
        except OSError as e:
            fail(f"cannot start ffmpeg: {e}")
        # drain stderr in the background so ffmpeg can never block on it
        self.err_thread = threading.Thread(target=self._drain_err, daemon=True)
        self.err_thread.start()

    def _check_size_with_ffprobe(self):
        """If ffprobe is available, reject a --size that does not match."""
        ffprobe = shutil.which("ffprobe")
        if ffprobe is None:
            return
        try:
            out = subprocess.run(
                [ffprobe, "-v", "error", "-select_streams", "v:0",
                 "-show_entries", "stream=width,height", "-of", "csv=p=0",
                 self.path],
                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=30)
        except (OSError, subprocess.SubprocessError):
            return
        m = re.match(r"\s*(\d+),(\d+)", out.stdout or "")
        if out.returncode != 0 or not m:
            msg = (out.stderr or "").strip().splitlines()
            fail(f"ffprobe cannot read {self.path}: "
                 f"{msg[-1] if msg else 'no video stream'}")
        vw, vh = int(m.group(1)), int(m.group(2))
        if (vw, vh) != (self.w, self.h):
            fail(f"size mismatch: --size {self.w}x{self.h} but "
                 f"{self.path} is {vw}x{vh}")

    def _drain_err(self):
        try:
            while True:
                chunk = self.proc.stderr.read(4096)
                if not chunk:
                    break
                if sum(len(c) for c in self.err_chunks) < 65536:
                    self.err_chunks.append(chunk)
        except (OSError, ValueError):
            pass

    def _read_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.proc.stdout.read(n - len(buf))
            if not chunk:
                break
            buf += chunk
        return bytes(buf)

    def __iter__(self):
        n = self.w * self.h
        while True:
            data = self._read_exact(n)
            if len(data) == n:
                yield self.np.frombuffer(data, dtype=self.np.uint8).reshape(
                    self.h, self.w)
                continue
            rc = self.proc.wait()
            self.err_thread.join(timeout=5)
            if rc != 0:
                msg = b"".join(self.err_chunks).decode(errors="replace").strip()
                fail(f"ffmpeg failed on {self.path} (exit {rc}): "
                     f"{msg or 'no message'}")
            if data:
                fail(f"size mismatch: ffmpeg output is not a whole number of "
                     f"{self.w}x{self.h} gray frames (check --size)")
            return

    def close(self):
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            self.killed = True
            p.kill()
        try:
            p.stdout.close()
        except OSError:
            pass
        p.wait()
        self.err_thread.join(timeout=5)
        self.proc = None


# --------------------------------------------------------------------------
# tracker

def make_tracker(cv2, kind):
    name = {"csrt": "TrackerCSRT_create", "kcf": "TrackerKCF_create"}[kind]
    fn = getattr(cv2, name, None)
    api = "cv2"
    if fn is None:
        legacy = getattr(cv2, "legacy", None)
        fn = getattr(legacy, name, None) if legacy is not None else None
        api = "cv2.legacy"
    if fn is None:
        fail(f"this OpenCV ({cv2.__version__}) has neither cv2.{name} nor "
             f"cv2.legacy.{name} (opencv-contrib tracking module missing)")
    return fn(), api


def run(args):
    import cv2
    import numpy as np

    init = parse_box(args.init, "--init")
    crop = parse_box(args.crop, "--crop") if args.crop else None
    if crop is not None:
        crop = tuple(int(round(v)) for v in crop)
    if args.threads < 0:
        fail("--threads must be >= 0")
    if args.max is not None and args.max < 1:
        fail("--max must be >= 1")
    if args.frames is None and args.video is None:
        fail("one of --frames DIR or --video FILE is required")
    if args.video is not None and not args.size:
        fail("--video needs --size WxH")

    cv2.setNumThreads(args.threads)
    tracker, api = make_tracker(cv2, args.tracker)

    source = None
    if args.frames is not None:
        frames = frames_from_dir(cv2, args.frames)
    else:
        source = FfmpegSource(np, args.video, parse_size(args.size))
        frames = iter(source)

    out = sys.stdout
    out.write("frame,cx,cy,w,h,ok,ms\n")
    times = []
    n = 0
    first_shape = None
    ox = oy = 0  # offset of the tracked region in the full frame
    try:
        for img in frames:
            if first_shape is None:
                first_shape = img.shape
                fh, fw = img.shape
                if crop is not None:
                    cx0, cy0, cw0, ch0 = crop
                    if cx0 < 0 or cy0 < 0 or cx0 + cw0 > fw or cy0 + ch0 > fh:
                        fail(f"--crop {args.crop} lies outside the "
                             f"{fw}x{fh} frame")
                    ox, oy = cx0, cy0
                    rw, rh = cw0, ch0
                else:
                    rw, rh = fw, fh
                x, y, w, h = init
                where = "crop" if crop is not None else f"{fw}x{fh} frame"
                if (x < ox or y < oy or x + w > ox + rw or y + h > oy + rh):
                    fail(f"--init {args.init} lies outside the {where}"
                         + (f" ({args.crop})" if crop is not None else ""))
            elif img.shape != first_shape:
                fail(f"size mismatch: frame {n} is {img.shape[1]}x"
                     f"{img.shape[0]}, frame 0 was {first_shape[1]}x"
                     f"{first_shape[0]}")

            region = img
            if crop is not None:
                region = img[oy:oy + rh, ox:ox + rw]
            bgr = cv2.cvtColor(region, cv2.COLOR_GRAY2BGR)

            if n == 0:
                x, y, w, h = init
                if api == "cv2":  # new API wants an integer cv::Rect
                    box0 = (int(round(x - ox)), int(round(y - oy)),
                            int(round(w)), int(round(h)))
                else:
                    box0 = (x - ox, y - oy, w, h)
                t0 = time.perf_counter()
                try:
                    r = tracker.init(bgr, box0)
                except cv2.error as e:
                    fail(f"tracker init failed: {str(e).strip()}")
                if r is False:  # legacy API returns bool
                    fail("tracker init returned false")
                if args.prime:
                    # OpenCV's KCF does no detection in the first update()
                    # after init (it only trains there), so motion between
                    # frames 0 and 1 would be lost; train on frame 0 instead.
                    tracker.update(bgr)
                ms = (time.perf_counter() - t0) * 1000.0
                last = tuple(float(v) for v in box0)
                ok = 1
            else:
                t0 = time.perf_counter()
                okb, box = tracker.update(bgr)
                ms = (time.perf_counter() - t0) * 1000.0
                times.append(ms)
                if okb:
                    last = tuple(float(v) for v in box)
                    ok = 1
                else:
                    ok = 0
            bx, by, bw, bh = last
            out.write(f"{n},{bx + ox + bw / 2:.3f},{by + oy + bh / 2:.3f},"
                      f"{bw:.3f},{bh:.3f},{ok},{ms:.3f}\n")
            n += 1
            if args.max is not None and n >= args.max:
                break
    finally:
        if source is not None:
            source.close()

    if n == 0:
        fail("no frames decoded" + (f" from {args.video}" if args.video else ""))
    out.flush()
    summary = {
        "tracker": args.tracker,
        "frames": n,
        "median_ms": round(statistics.median(times), 3) if times else None,
        "mean_ms": round(statistics.fmean(times), 3) if times else None,
        "threads": args.threads,
        "opencv": cv2.__version__,
        "api": api,
        "prime": bool(args.prime),
    }
    sys.stderr.write(json.dumps(summary) + "\n")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Run OpenCV CSRT/KCF over a frame folder or video and "
                    "write per-frame boxes as CSV (benchmark comparison only).",
        epilog="CSV on stdout: frame,cx,cy,w,h,ok,ms (full-frame coordinates; "
               "frame 0 = init box, ms = init time). Final stderr line: JSON "
               "summary with median/mean update() ms. Exit 2 on input errors.")
    ap.add_argument("--tracker", required=True, choices=["csrt", "kcf"],
                    help="OpenCV tracker to run")
    ap.add_argument("--init", required=True, metavar="X,Y,W,H",
                    help="initial box on frame 0, pixels, full-frame "
                         "coordinates (must lie inside the frame/crop)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--frames", metavar="DIR",
                     help="folder of .pgm/.png frames, natural name order, "
                          "read as 8-bit grayscale")
    src.add_argument("--video", metavar="FILE",
                     help="any video ffmpeg can read (decoded to gray via an "
                          "ffmpeg pipe); a *.sonrec folder means "
                          "FILE/video.nut. Needs --size")
    ap.add_argument("--size", metavar="WxH",
                    help="frame size of --video (e.g. 760x580)")
    ap.add_argument("--crop", metavar="X,Y,W,H",
                    help="track only inside this sub-rectangle of each frame "
                         "(e.g. one pane of a dual view); --init and the "
                         "output stay in full-frame coordinates")
    ap.add_argument("--threads", type=int, default=1, metavar="N",
                    help="cv2.setNumThreads(N) (default 1)")
    ap.add_argument("--max", type=int, metavar="N",
                    help="process at most N frames (including frame 0)")
    ap.add_argument("--prime", action="store_true",
                    help="after init, call update() once on frame 0 (counted "
                         "in the frame-0 ms). Off by default. OpenCV's KCF "
                         "only trains in its first update() and does not "
                         "detect, so without this the frame 0->1 motion is "
                         "lost and KCF stays offset by it")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except UsageError as e:
        sys.stderr.write(f"opencv_trackers: error: {e}\n")
        return 2
    except ImportError as e:
        sys.stderr.write(f"opencv_trackers: error: cannot import {e.name} "
                         f"(use /usr/bin/python3 with python3-opencv)\n")
        return 2
    except BrokenPipeError:
        # reader went away (e.g. piped into head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
