// The sonomics command line. Commands that report results take --json and then print exactly
// one JSON document on stdout (features always does); logs go to stderr.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, layoutProfile, loadConfig, resolveConfig, type SonomicsConfig } from '../core/config.js';
import { packageRoot, packageVersion } from '../core/paths.js';
import { DECISION_SUPPORT_NOTICE } from '../core/risk.js';
import { runDemo, type DemoSummary } from './demo.js';
import type { FeaturesOptions } from './features.js';
import { UsageError } from './errors.js';

export { UsageError };

const GLOBAL_HELP = `sonomics - live ultrasound radiomics at the bedside. ${DECISION_SUPPORT_NOTICE}

Usage: sonomics <command> [options]

Commands:
  demo        Run the built-in phantom scanner through the whole pipeline and serve the overlay
  run         Run the configured source (capture card, DICOM cine, recording) the same way
  features    PyRadiomics' 2D features of an image and mask (and rings around it) as JSON
  probe       What an input holds (kind, size, frames, rate, pixel spacing, colour) as JSON
  frames      Write an input's decoded frames as 8-bit PGM (gray) or PNG (colour)
  record      Record a session from any input (crash-safe, lossless)
  replay      Feed a recording through the pipeline and serve the overlay
  export      Trim a recording, or export it as a video file
  layout      Draw a layout profile over a captured frame (PNG), to check it
  track       Track a lesion through any input from an initial mask; CSV per frame
  perfusion   CEUS time-intensity curves of the tracked lesion, rings and a reference region:
              bolus fits (lognormal, gamma variate) and perfusion parameters per region
  segment     The lesion mask from one tap (or a rough box) on an image: PNG, or "no lesion found"
  train-segmenter  Train the one-tap segmenter (U-Net) from a cohort of images and masks, seeded
  fit         Fit a risk model (LASSO Rad-score, optional nomogram) from a cohort CSV: card + report
  eval        A model card's performance on a cohort (AUC with CI, calibration, ...): JSON, report, CSV
  import-sklearn  A model card from a scikit-learn StandardScaler + LogisticRegression export
  seal-card   Recompute an edited model card's sha256 (after checking the rest of it)
  audit-verify  Check an audit log's hash chain: every line there, unchanged, in order
  panel-sim   Play the bedside panel from the keyboard on a serial port (bedside testing)
  panel-firmware  Generate the panel firmware's C header and codec from a panel layout

Inputs: "phantom" (or phantom:SEED), a recording (NAME.sonrec), a DICOM file, or anything ffmpeg
reads: a capture card (/dev/video0), a file, a stream URL, a test pattern (--format lavfi).
A folder of PGM/PNG frames (no session.json) plays them in natural name order (--fps, default 30).

Options:
  sonomics --version          print the version
  sonomics <command> --help   help for a command
  --config FILE               (with demo) configuration file, JSON or YAML; defaults need none

Run 'sonomics <command> --help' for the options of a command.
`;

const DEMO_HELP = `Usage: sonomics demo [options]

Runs the phantom scanner (CEUS dual view, moving lesion, contrast bolus) through layout,
tracking, regions, features and risk models, and serves the live overlay in the browser.

Options:
  --port N        overlay HTTP/WebSocket port (default 8080; 0 picks a free port)
  --host ADDR     bind address (default 127.0.0.1). Any other address needs an access token:
                  SONOMICS_TOKEN, or a file (chmod 600) named by --token-file or overlay.tokenFile
  --token-file F  file holding the overlay's access token (never put the token in the config)
  --mqtt URL      send telemetry to this MQTT broker (mqtt:// or mqtts://; telemetry.url; docs/telemetry.md)
  --frames N      stop after N frames and print a summary
  --seed N        phantom seed (default 42)
  --fps N         phantom frame rate (default 30)
  --headless      serve without opening a browser
  --panel PATH    the bedside panel's serial port (default: the config's panel section;
                  docs/panel.md)
  --json          print the summary as one JSON document on stdout (logs on stderr)
  --config FILE   configuration file (JSON or YAML)
`;

const PANEL_FIRMWARE_HELP = `Usage: sonomics panel-firmware [--layout FILE] [--out DIR]

Checks a panel layout (default: the package's firmware-config/panel-layout.json) and writes what
the panel firmware compiles to DIR (default: generated/ beside the layout): panel_protocol.h,
panel_codec.h and panel_codec.c. Prints {files, layoutHash}. See docs/panel.md.
`;

const FEATURES_HELP = `Usage: sonomics features --image IMG --mask MASK [options]

Computes PyRadiomics' 2D features of the ROI (every non-zero mask pixel) and prints one JSON
object on stdout: "<class>_<Feature>": value, with PyRadiomics' names and null for NaN. With
--rings, one more key per ring ("ring3mm", ...) holds the ring's features, or {"error": ...}
when the ring fails PyRadiomics' mask checks. Images: binary 8-bit PGM (P5), PNG, JPEG, ...
(colour is converted to gray). See docs/radiomics.md.

Options:
  --image FILE         the image
  --mask FILE          the mask, same size as the image; every non-zero pixel is ROI
  --bin-width W        fixed bin width (default 25)
  --bin-count N        fixed number of bins instead of a bin width
  --params FILE        PyRadiomics parameter file (YAML or JSON): settings and feature classes
  --spacing SX,SY      pixel spacing in mm, x = columns (default 1,1)
  --rings R1,R2,...    also the rings around the ROI, radii in mm, increasing (e.g. 3,5,8)
  --ibsi               follow IBSI where PyRadiomics deviates
  --all                add PyRadiomics' deprecated features to the 102 default ones

--bin-width, --bin-count and --params exclude each other.
Exit codes: 0 done; 1 an input cannot be read, sizes differ, or the ROI fails PyRadiomics'
checks; 2 bad options or a parameter file sonomics cannot honour.
`;

const FIT_HELP = `Usage: sonomics fit --cohort COHORT.csv --out DIR --id ID [options]

Computes the lesion's and rings' features of every case with sonomics' engine, drops non-finite,
near-constant and correlated (|r| > 0.9) features, selects with LASSO logistic regression and
k-fold cross-validation (1-SE rule), optionally adds clinical variables (nomogram), and writes
DIR/card.json (a sealed model card), DIR/report.html + report.json (ROC with AUC and DeLong 95 %
CI, calibration, decision curve, Youden cutoff). Performance is nested
cross-validated. Prints a JSON summary. See docs/fit-eval.md.

Cohort CSV: image, mask (paths relative to the CSV), label (0/1), optional spacing_mm (one
number or sx;sy, all rows or none) and clinical variables by name.

Options:
  --cohort FILE         the cohort CSV
  --out DIR             where the card and report go
  --id ID               model id (lower case, digits, . _ -)
  --version V           card version (default 1.0.0)
  --task TEXT           what the model predicts (default "Malignancy (<label column>)")
  --label-column NAME   the 0/1 label column (default label)
  --clinical FILE       JSON array of clinical variable definitions: adds them as a nomogram
  --seed N              seed for the folds (default 20261122)
  --folds K             inner folds for lambda (default 5)
  --outer-folds K       outer folds for the performance estimate (default 5)
  --bin-width W         engine bin width (default 25)
  --rings R1,R2,...     ring radii: mm with spacing, else pixels (default 3,5,8 mm / 30,50,80 px)
  --pane bmode|contrast the pane the images show (default bmode)
  --clinical-use        mark the card for clinical use (default: research use only)
  --cohort-name TEXT    how the card names the cohort (default: the CSV's file name)
  --caveat TEXT         a known limit of the data or model, for the card and report (repeatable)
  --heldout FILE        write each case's nested cross-validated probability (CSV)
  --masks cohort|tap    cohort (default): the cohort's mask files. tap: each lesion segmented from one
                        tap at its mask's deepest point (the mask only places the tap), as live
`;

const EVAL_HELP = `Usage: sonomics eval --model CARD --cohort COHORT.csv [--out DIR] [--masks cohort|tap] [--json]

Applies a model card unchanged to a cohort (features computed with the card's engine settings)
and reports n, AUC with DeLong 95 % CI, calibration slope and intercept, the Youden cutoff and the
metrics at the card's cutoff. With --out: DIR/report.html, report.json and cases.csv (per-case
probability and linear predictor). Cases with a missing clinical value are excluded, not imputed.
  --label-column NAME   the 0/1 label column (default label)
  --masks cohort|tap    cohort (default): the cohort's mask files. tap: each lesion segmented from one
                        tap at its mask's deepest point (the mask only places the tap), as live;
                        images the segmenter was trained on get its fold model that never saw them
  --json                print the summary as one JSON document (default: a short text)
`;

const IMPORT_HELP = `Usage: sonomics import-sklearn --in EXPORT.json --out CARD.json --id ID [options]

EXPORT.json: {"feature_names": [...], "scaler": {"mean_": [...], "scale_": [...]},
"classifier": {"coef_": [[...]], "intercept_": [b], "classes_": [0, 1]}} from a scikit-learn
StandardScaler + LogisticRegression fitted on PyRadiomics features (docs/model-card.md shows the
Python that writes it). Names: [pane_][region_]original_<class>_<Feature>.
  --pane bmode|contrast   pane of names without one (default bmode)
  --region R              region of names without one: lesion, ring5mm, ring30px (default lesion)
  --version V, --task TEXT, --bin-width W (default 25), --spacing mm|pixel (default mm)
  --cutoff P              probability cutoff (default 0.5)
  --labels BELOW,ABOVE    category labels (default "lower risk,higher risk")
  --clinical-use          mark the card for clinical use (default: research use only)
`;

const INPUT_OPTIONS_HELP = `Input options (for ffmpeg inputs):
  --format F          ffmpeg input format: v4l2 (default for /dev/video*), lavfi, rawvideo, ...
  --pixel-format P    capture pixel format, e.g. yuyv422, uyvy422, mjpeg
  --size WxH          capture size (V4L2 and raw inputs)
  --fps N             capture frame rate (V4L2 and raw inputs)
`;

const PROBE_HELP = `Usage: sonomics probe INPUT [input options]

Prints one JSON object: kind (phantom, recording, dicom, media), width, height, frames (null when
endless or unknown), fps, pixelSpacingMm (null when unknown), colourModel, and what else the kind
tells (DICOM regions and transfer syntax, recording notes, codec).

${INPUT_OPTIONS_HELP}`;

const FRAMES_HELP = `Usage: sonomics frames INPUT --out DIR [--every N] [--max N] [input options]

Writes the decoded frames to DIR as frame-NNNNNN.pgm (8-bit gray) or .png (colour), numbered by
their position in the input, then prints a JSON summary. Files are read as fast as they decode.
  --every N   keep every Nth frame (default 1)
  --max N     stop after writing N frames (required for endless inputs: phantom, devices, streams)

${INPUT_OPTIONS_HELP}`;

const RECORD_HELP = `Usage: sonomics record --input SRC --out NAME.sonrec [options]

Records every frame as it arrives, with its timestamps, into a crash-safe, lossless recording
(docs/recording.md). Stops at the end of the input, after --seconds or --frames, or on Ctrl-C.
  --seconds S       stop after S seconds
  --frames N        stop after N frames
  --colour          record RGB (e.g. Doppler panes) instead of gray
  --layout NAME     store this layout profile with the recording (needs --config)
  --config FILE     configuration file (layout profiles)

${INPUT_OPTIONS_HELP}`;

const REPLAY_HELP = `Usage: sonomics replay NAME.sonrec [options]

Feeds a recording through the pipeline (tracking, regions, features, scores) and serves the
overlay, at the recorded timing or faster.
  --fast            as fast as the pipeline takes them (frames it cannot take are dropped, counted)
  --speed X         playback speed at recorded timing (default 1)
  --lesion MASK     lesion outline to lock on the first frame: an image the size of the screen or
                    of the B-mode pane, non-zero = lesion (without it tracking waits for a lock)
  --layout NAME     layout profile (when the recording has none, or to override it)
  --port N, --host ADDR, --token-file F, --mqtt URL, --headless, --panel PATH, --frames N, --json, --config FILE   as for demo
`;

const RUN_HELP = `Usage: sonomics run --config FILE [options]

Runs the source of the config (source.type: capture, dicom, replay or phantom) through the
pipeline and serves the overlay. A capture card that loses its signal is restarted with backoff;
the overlay keeps serving and shows 'no signal' meanwhile.
  --layout NAME     layout profile (default source.layout of the config)
  --lesion MASK     lesion outline to lock on the first frame (see replay --help)
  --port N, --host ADDR, --token-file F, --mqtt URL, --headless, --panel PATH, --frames N, --json   as for demo
`;

const EXPORT_HELP = `Usage: sonomics export NAME.sonrec --out OUT [--from S] [--to S]

OUT ending in .sonrec: a trimmed recording (lossless, times rebased to its first frame).
OUT ending in .mp4, .mkv, .mov or .avi: a video for viewing (H.264, the recording's frame rate).
--from and --to are seconds from the recording's first frame.
`;

const TRACK_HELP = `Usage: sonomics track --input SRC --init MASK.png [--layout NAME --config FILE] [--max N] [input options]

Tracks the lesion outlined by MASK.png (the screen's size, or the B-mode pane's; every non-zero
pixel is lesion) through the input from its first frame, and writes CSV to stdout:
  frame,x,y,scale,confidence,state
frame: position in the input; x, y: lesion centroid on the B-mode pane in frame pixels; scale:
relative to the mask; confidence: correlation with the locked lesion (0..1); state: tracking,
uncertain or lost (docs/tracking.md). A JSON summary (states, time per frame) goes to stderr.
Inputs without a layout (a folder of PGM/PNG frames, a video) are one B-mode pane.
  --max N          stop after N frames (required for endless inputs: phantom, devices, streams)
  --layout NAME    the screen's layout profile (needs --config)
  --config FILE    configuration file (layout profiles, pipeline.tracker settings)
  --model CARD     also score every tracked frame with this model card (repeatable): three more
                   columns per model, <id>_value (this frame), <id>_live (the aggregated value the
                   overlay shows) and <id>_status. Every frame is scored, in order, none dropped
                   (the batch mode for research). Cards with deep features are scored live only.
  --clinical NAME=VALUE  a clinical input for the models (repeatable)

${INPUT_OPTIONS_HELP}`;

const PERFUSION_HELP = `Usage: sonomics perfusion [--input SRC] [--init MASK.png] [--json] [--csv FILE] [options]

Tracks the lesion through every frame of the input (default: the phantom) and measures the contrast
pane's time-intensity curve of the lesion, each ring and a reference region on every tracked frame
(frames tracked as uncertain or lost, and repeated frames, are left out). Then it detects the bolus,
fits a lognormal and a gamma-variate model (Levenberg-Marquardt) and prints, per region, the state,
the goodness of fit and the parameters: AT, PE, TTP, RT, WiR, WiAUC, MTT, FT, WoR, AUC, and each
relative to the reference region (docs/perfusion.md). A curve without a clear wash-in, a saturated
pane or a poor fit gets a state ("no wash-in detected", ...), never parameters.
On the phantom the lesion is locked on its true outline, the reference goes where the phantom
suggests, and the JSON carries the phantom's true parameters and each relative error under "truth".
  --input SRC         phantom (default, or phantom:SEED), a recording, DICOM cine, video, ...
  --init MASK.png     the lesion on the first frame (required unless the input is the phantom)
  --reference X,Y,R   reference disc: centre in B-mode pane pixels on the first frame, radius mm
  --model NAME        lognormal (default) or gammaVariate: whose parameters are reported
  --dynamic-range DB  undo the display's log compression over DB decibels (phantom: its own 40 dB)
  --no-linearise      average the displayed gray levels as they are
  --json              the whole report as JSON on stdout (default: a table)
  --csv FILE          write the curve (every sample, measured and fitted) as CSV
  --max N             stop after N frames
  --layout NAME       the screen's layout profile (needs --config)
  --config FILE       configuration file (layout profiles, pipeline settings)
  Phantom only:
  --seconds S         seconds rendered (default 75)
  --size WxH --fps F  the phantom's frame size and rate (default 1280x720 at 30)
  --repeat-every N    deliver every Nth frame twice (a capture card faster than the scanner)
  --lose START,DUR    the probe leaves the lesion at START s for DUR s (tracking is lost there)

${INPUT_OPTIONS_HELP}`;

const SEGMENT_HELP = `Usage: sonomics segment --image IMG (--seed X,Y | --box X0,Y0,X1,Y1) --out MASK.png [--json]

Proposes the lesion's outline from one tap inside it (or a rough box around it) with the one-tap
segmenter (models/segmenter, a U-Net trained by 'sonomics train-segmenter') and writes the mask as
a PNG (255 inside). The mask is one connected region without holes. A tap outside anything
lesion-like gives "no lesion found" (exit status 3, no file written), never a random blob.
  --image IMG         the image (PNG, JPEG, PGM, ...; colour is converted to gray)
  --seed X,Y          a point inside the lesion, image pixels (0,0 = top left pixel)
  --box X0,Y0,X1,Y1   a rough box around the lesion (inclusive corners), instead of --seed
  --out MASK.png      where the mask goes
  --json              the result as JSON on stdout (area, box, confidence, time)
  --segmenter DIR     another segmenter directory (its segmenter.json)
Decision support only, not for diagnosis.`;

const TRAIN_SEGMENTER_HELP = `Usage: sonomics train-segmenter --cohort COHORT.csv --out DIR [options]

Trains the one-tap segmenter from a cohort CSV (image and mask columns, as for 'fit'): a small U-Net
on TF.js (wasm backend, one thread per model, seeded: the same data and options give the same
networks), exported to ONNX with its manifest DIR/segmenter.json. With --folds K it also trains K
cross-validation models on folds that keep near-duplicate images together; 'eval', 'fit' and the
segmenter benchmark use them for out-of-sample masks of the training images. The shipped model:
'npm run train:segmenter' (docs/segmentation.md).
  --cohort CSV        images and expert masks
  --label-column C    the 0/1 label column (stratifies the folds; default label)
  --out DIR           output directory
  --folds K           cross-validation models (default 5; 0 = none)
  --epochs N          epochs per model (default 24)
  --seed N            seed (default 1)
  --phantom N         phantom frames added to every training set (default 60)
  --box-negatives F   share of training examples that are taps well outside the lesion cropped
                      at a lesion's scale, as a box drawn around no lesion shows it: the network
                      learns to answer "no lesion found" for such boxes (0-0.5; default 0, as the
                      shipped model was trained)
  --refine            also train a refining network per model, which runs pass 2: the same U-Net
                      trained only on taps inside lesions cropped at the lesion's scale (twice
                      the training time)
  --jobs N            models trained at once (default 2)
Training variants (defaults: as the shipped model was trained):
  --negatives F       pass 1's network: share of examples that are taps well outside the lesion,
                      at the whole image's scale (0-0.9; default 0.15)
  --lesion-scale-share F
                      pass 1's network: share of the other examples cropped at a lesion's scale,
                      as pass 2 sees it, instead of the whole image (0-1; default 0.5)
  --refine-scale A,B  the refining networks' crops: A to B times the lesion's extent (default 1.5,3)
  --refine-epochs N   epochs per refining network (default: --epochs; the shipped model: 48)
A trial (a variant judged before anyone retrains every model):
  --trial-of DIR      the segmenter it varies (models/segmenter); --out gets a copy of it with the
                      networks of --trial-folds retrained with these options. The folds must hold
                      out the same images as DIR's (same cohort, --seed and --folds). Then:
                      npm run bench:segment-compare -- OUT
  --trial-folds K,..  the folds to retrain (1-based), e.g. 1,2 (one model per --jobs at a time);
                      'final' retrains the final model's networks too (the one the live system
                      runs; the comparison bench uses the folds)
  --refine-only       retrain only their refining networks (else only pass 1's; --refine: both)`;

const LAYOUT_HELP = `Usage: sonomics layout INPUT --out FILE.png [--layout NAME --config FILE] [--frame N]

Draws the layout profile (panes, scan sector, ruler points, spacing) over frame N (default 0)
of the input and writes a PNG, to check a profile by eye. Without --layout, the layout the
input knows (phantom, recording, DICOM regions) is drawn.

${INPUT_OPTIONS_HELP}`;

const inputOptions = {
  format: { type: 'string' }, 'pixel-format': { type: 'string' }, size: { type: 'string' }, fps: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const serveOptions = {
  port: { type: 'string' }, host: { type: 'string' }, 'token-file': { type: 'string' }, mqtt: { type: 'string' }, frames: { type: 'string' }, headless: { type: 'boolean' }, json: { type: 'boolean' },
  config: { type: 'string' }, layout: { type: 'string' }, lesion: { type: 'string' }, panel: { type: 'string' }, help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

function ffmpegOptionsOf(v: { format?: string; 'pixel-format'?: string; size?: string; fps?: string }) {
  let size: { width: number; height: number } | undefined;
  if (v.size !== undefined) {
    const m = /^(\d+)x(\d+)$/.exec(v.size.trim());
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1 || Number(m[1]) > 8192 || Number(m[2]) > 8192) throw new UsageError(`--size must be WxH, e.g. 1920x1080 (got "${v.size}")`);
    size = { width: Number(m[1]), height: Number(m[2]) };
  }
  return {
    ...(v.format !== undefined && { format: v.format }),
    ...(v['pixel-format'] !== undefined && { pixelFormat: v['pixel-format'] }),
    ...(size && size),
    ...(v.fps !== undefined && { fps: numOption('fps', v.fps, 0, 1000) }),
  };
}

function onePositional(cmd: string, positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`${cmd}: give exactly one ${what} (got ${positionals.length})`);
  return positionals[0];
}

const featuresOptions = {
  image: { type: 'string' }, mask: { type: 'string' }, 'bin-width': { type: 'string' }, 'bin-count': { type: 'string' },
  params: { type: 'string' }, spacing: { type: 'string' }, rings: { type: 'string' }, ibsi: { type: 'boolean' }, all: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const demoOptions = {
  port: { type: 'string' }, host: { type: 'string' }, 'token-file': { type: 'string' }, mqtt: { type: 'string' }, frames: { type: 'string' }, seed: { type: 'string' }, fps: { type: 'string' },
  headless: { type: 'boolean' }, json: { type: 'boolean' }, config: { type: 'string' }, panel: { type: 'string' }, help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** The config's overlay section with --port, --host and --token-file applied. */
function overlayOverrides(base: SonomicsConfig, v: { port?: string; host?: string; 'token-file'?: string }): SonomicsConfig['overlay'] {
  const port = intOption('port', v.port, 0, 65535);
  return {
    ...base.overlay, ...(port !== undefined && { port }), ...(v.host !== undefined && { host: v.host }),
    ...(v['token-file'] !== undefined && { tokenFile: v['token-file'] }),
  };
}

/** The config's telemetry section with --mqtt applied. */
function telemetryOverrides(base: SonomicsConfig, v: { mqtt?: string }): SonomicsConfig['telemetry'] {
  return { ...base.telemetry, ...(v.mqtt !== undefined && { url: v.mqtt }) };
}

function intOption(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer in [${min}, ${max}] (got "${v}")`);
  return n;
}

/** A number in (min, max], or in [min, max] with `minAllowed` (a share where 0 means none). */
function numOption(name: string, v: string | undefined, min: number, max: number, minAllowed = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (minAllowed ? n < min : n <= min) || n > max) {
    throw new UsageError(`--${name} must be a number in ${minAllowed ? '[' : '('}${min}, ${max}] (got "${v}")`);
  }
  return n;
}

/** A comma-separated list of numbers, each in (min, max]. */
function numListOption(name: string, v: string, what: string, min: number, max: number): number[] {
  const parts = v.split(',');
  const nums = parts.map((p) => (p.trim() === '' ? NaN : Number(p)));
  if (nums.some((n) => !Number.isFinite(n) || n <= min || n > max)) throw new UsageError(`--${name} must be ${what}, each in (${min}, ${max}] (got "${v}")`);
  return nums;
}

function featuresOptionsOf(v: ReturnType<typeof parse<typeof featuresOptions>>['values']): FeaturesOptions {
  if (v.image === undefined) throw new UsageError('features: --image FILE is required');
  if (v.mask === undefined) throw new UsageError('features: --mask FILE is required');
  const given = (['bin-width', 'bin-count', 'params'] as const).filter((k) => v[k] !== undefined);
  if (given.length > 1) {
    const flags = given.map((k) => `--${k}`);
    throw new UsageError(`features: ${flags.slice(0, -1).join(', ')} and ${flags[flags.length - 1]} exclude each other (give one)`);
  }
  let spacing = [1, 1];
  if (v.spacing !== undefined) {
    spacing = numListOption('spacing', v.spacing, 'two numbers "SX,SY" in mm', 0, 100);
    if (spacing.length !== 2) throw new UsageError(`--spacing must be two numbers "SX,SY" in mm (got "${v.spacing}")`);
  }
  let ringsMm: number[] = [];
  if (v.rings !== undefined) {
    ringsMm = numListOption('rings', v.rings, 'ring radii in mm "R1,R2,..."', 0, 50);
    if (ringsMm.length > 16) throw new UsageError(`--rings takes at most 16 radii (got ${ringsMm.length})`);
    if (ringsMm.some((r, i) => i > 0 && r <= ringsMm[i - 1])) throw new UsageError(`--rings radii must increase (got "${v.rings}")`);
  }
  return {
    image: v.image, mask: v.mask,
    binWidth: numOption('bin-width', v['bin-width'], 0, 1e9),
    binCount: intOption('bin-count', v['bin-count'], 1, 65536),
    params: v.params,
    spacingX: spacing[0], spacingY: spacing[1], ringsMm,
    ibsi: Boolean(v.ibsi), all: Boolean(v.all),
  };
}

/** `--masks cohort|tap` of fit and eval. */
function masksOption(cmd: string, v: string | undefined): 'cohort' | 'tap' {
  if (v === undefined || v === 'cohort' || v === 'tap') return v ?? 'cohort';
  throw new UsageError(`${cmd}: --masks must be cohort (the cohort's mask files, default) or tap (segmented from one tap; the mask only places it), not "${v}"`);
}

/** A named layout profile from the config file. */
function namedLayout(name: string | undefined, configPath: string | undefined) {
  if (name === undefined) return undefined;
  if (!configPath) throw new UsageError('--layout NAME needs --config FILE (layout profiles live in the config)');
  return { name, profile: layoutProfile(loadConfig(configPath), name, configPath) };
}

/** Runs a job that stops cleanly on Ctrl-C / SIGTERM. */
async function withInterrupt<T>(job: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await job(ac.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
}

function printDemoSummary(s: DemoSummary, out: (l: string) => void): void {
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '-');
  out(`frames ${s.frames} (source dropped ${s.source.dropped}); tracking mean error ${f(s.tracking.meanErrorPx)} px, max ${f(s.tracking.maxErrorPx)} px`);
  out('stage        p50 ms   p99 ms   max ms');
  for (const [name, l] of Object.entries(s.pipeline.stages)) out(`${name.padEnd(12)} ${f(l.p50).padStart(6)}   ${f(l.p99).padStart(6)}   ${f(l.max).padStart(6)}`);
  out(`end-to-end display p50 ${f(s.pipeline.endToEnd.display.p50)} ms, scores p50 ${f(s.pipeline.endToEnd.scores.p50)} ms`);
  out(`dropped: display ${s.pipeline.dropped.display}, features ${s.pipeline.dropped.features}, risk ${s.pipeline.dropped.risk}`);
  out(s.notice);
}

export async function main(argv: string[], io = { out: (l: string) => console.log(l), err: (l: string) => console.error(l) }): Promise<number> {
  try {
    const [cmd, ...rest] = argv;
    if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') { io.out(GLOBAL_HELP); return 0; }
    if (cmd === '--version') { io.out(packageVersion()); return 0; }
    if (cmd === 'demo') {
      const { values: v } = parse(rest, demoOptions);
      if (v.help) { io.out(DEMO_HELP); return 0; }
      const frames = intOption('frames', v.frames, 1, 1e9);
      const seed = intOption('seed', v.seed, 0, 2 ** 31);
      const fps = numOption('fps', v.fps, 0, 240);
      const base = loadConfig(v.config);
      const config: SonomicsConfig = resolveConfig({
        ...base,
        source: { ...base.source, phantom: { ...base.source.phantom, ...(seed !== undefined && { seed }), ...(fps !== undefined && { fps }) } },
        overlay: overlayOverrides(base, v),
        telemetry: telemetryOverrides(base, v),
      }, v.config ?? 'command line');
      const log = v.json ? io.err : io.out;
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const summary = await runDemo({ config, frames, headless: Boolean(v.headless), log, panel: v.panel }, ac.signal);
        if (v.json) io.out(JSON.stringify(summary));
        else printDemoSummary(summary, io.out);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
      return 0;
    }
    if (cmd === 'features') {
      const { values: v } = parse(rest, featuresOptions);
      if (v.help) { io.out(FEATURES_HELP); return 0; }
      const options = featuresOptionsOf(v);
      // Loaded here so the other commands start without the radiomics engine.
      const { computeFeatures, formatFeatures } = await import('./features.js');
      io.out(formatFeatures(await computeFeatures(options)));
      return 0;
    }
    if (cmd === 'probe') {
      const { values: v, positionals } = parse(rest, { ...inputOptions, help: { type: 'boolean', short: 'h' } }, true);
      if (v.help) { io.out(PROBE_HELP); return 0; }
      const { probe } = await import('./capture.js');
      io.out(JSON.stringify(await probe({ input: onePositional('probe', positionals, 'INPUT'), ffmpeg: ffmpegOptionsOf(v) }), null, 2));
      return 0;
    }
    if (cmd === 'frames') {
      const { values: v, positionals } = parse(rest, { ...inputOptions, out: { type: 'string' }, every: { type: 'string' }, max: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, true);
      if (v.help) { io.out(FRAMES_HELP); return 0; }
      if (!v.out) throw new UsageError('frames: --out DIR is required');
      const { writeFrames } = await import('./capture.js');
      const summary = await withInterrupt((signal) => writeFrames({
        input: onePositional('frames', positionals, 'INPUT'), ffmpeg: ffmpegOptionsOf(v), out: v.out!,
        every: intOption('every', v.every, 1, 1e9) ?? 1, max: intOption('max', v.max, 1, 1e9),
      }, signal));
      io.out(JSON.stringify(summary));
      return 0;
    }
    if (cmd === 'record') {
      const { values: v } = parse(rest, {
        ...inputOptions, input: { type: 'string' }, out: { type: 'string' }, seconds: { type: 'string' }, frames: { type: 'string' }, colour: { type: 'boolean' },
        layout: { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      });
      if (v.help) { io.out(RECORD_HELP); return 0; }
      if (!v.input) throw new UsageError('record: --input SRC is required');
      if (!v.out) throw new UsageError('record: --out NAME.sonrec is required');
      const layout = namedLayout(v.layout, v.config);
      const { record } = await import('./capture.js');
      const summary = await withInterrupt((signal) => record({
        input: v.input!, out: v.out!, ffmpeg: ffmpegOptionsOf(v), seconds: numOption('seconds', v.seconds, 0, 1e7),
        max: intOption('frames', v.frames, 1, 1e9), colour: Boolean(v.colour), layout,
      }, io.err, signal));
      io.out(JSON.stringify(summary));
      return 0;
    }
    if (cmd === 'export') {
      const { values: v, positionals } = parse(rest, { out: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, true);
      if (v.help) { io.out(EXPORT_HELP); return 0; }
      if (!v.out) throw new UsageError('export: --out FILE is required');
      const fromS = v.from === undefined ? undefined : numOption('from', v.from, -1e-9, 1e9);
      const { exportCommand } = await import('./capture.js');
      io.out(JSON.stringify(await exportCommand({ input: onePositional('export', positionals, 'recording'), out: v.out, fromS, toS: numOption('to', v.to, 0, 1e9) })));
      return 0;
    }
    if (cmd === 'layout') {
      const { values: v, positionals } = parse(rest, {
        ...inputOptions, out: { type: 'string' }, layout: { type: 'string' }, config: { type: 'string' }, frame: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      }, true);
      if (v.help) { io.out(LAYOUT_HELP); return 0; }
      if (!v.out) throw new UsageError('layout: --out FILE.png is required');
      const { renderLayout } = await import('./capture.js');
      io.out(JSON.stringify(await renderLayout({
        input: onePositional('layout', positionals, 'INPUT'), ffmpeg: ffmpegOptionsOf(v), out: v.out, frame: intOption('frame', v.frame, 0, 1e9) ?? 0,
        layout: namedLayout(v.layout, v.config),
      })));
      return 0;
    }
    if (cmd === 'track') {
      const { values: v } = parse(rest, {
        ...inputOptions, input: { type: 'string' }, init: { type: 'string' }, layout: { type: 'string' }, config: { type: 'string' }, max: { type: 'string' },
        model: { type: 'string', multiple: true }, clinical: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' },
      });
      if (v.help) { io.out(TRACK_HELP); return 0; }
      if (!v.input) throw new UsageError('track: --input SRC is required');
      if (!v.init) throw new UsageError('track: --init MASK.png is required');
      const config = v.config ? loadConfig(v.config) : undefined;
      const { trackCommand } = await import('./track.js');
      const { loadRiskModel } = await import('../core/models.js');
      const models = await Promise.all((v.model ?? []).map((m) => loadRiskModel(m)));
      const clinical = Object.fromEntries((v.clinical ?? []).map((kv) => {
        const m = /^([a-z][a-z0-9_]*)=(.*)$/.exec(kv);
        if (!m) throw new UsageError(`track: --clinical ${kv} must be NAME=VALUE`);
        return [m[1], m[2]];
      }));
      if (v.clinical?.length && !models.length) throw new UsageError('track: --clinical needs --model');
      const summary = await withInterrupt((signal) => trackCommand({
        input: v.input!, init: v.init!, ffmpeg: ffmpegOptionsOf(v), layout: namedLayout(v.layout, v.config), tracker: config?.pipeline.tracker,
        max: intOption('max', v.max, 1, 1e9), models, clinical, binWidth: config?.pipeline.binWidth,
      }, io.out, io.err, signal));
      io.err(JSON.stringify(summary));
      return 0;
    }
    if (cmd === 'perfusion') {
      const { values: v } = parse(rest, {
        ...inputOptions, input: { type: 'string' }, init: { type: 'string' }, reference: { type: 'string' }, model: { type: 'string' },
        'dynamic-range': { type: 'string' }, 'no-linearise': { type: 'boolean' }, json: { type: 'boolean' }, csv: { type: 'string' },
        max: { type: 'string' }, layout: { type: 'string' }, config: { type: 'string' }, seconds: { type: 'string' }, 'repeat-every': { type: 'string' }, lose: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      });
      if (v.help) { io.out(PERFUSION_HELP); return 0; }
      const nums = (flag: string, text: string | undefined, n: number): number[] | undefined => {
        if (text === undefined) return undefined;
        const xs = text.split(',').map(Number);
        if (xs.length !== n || xs.some((x) => !Number.isFinite(x))) throw new UsageError(`perfusion: --${flag} ${text} must be ${n} comma-separated numbers`);
        return xs;
      };
      const ref = nums('reference', v.reference, 3);
      if (ref && !(ref[2] >= 0.5 && ref[2] <= 20)) throw new UsageError(`perfusion: --reference radius ${ref[2]} mm must be in [0.5, 20]`);
      const lose = nums('lose', v.lose, 2);
      if (lose && !(lose[0] >= 0 && lose[1] > 0)) throw new UsageError('perfusion: --lose START,DUR needs START >= 0 and DUR > 0 seconds');
      if (v.model !== undefined && v.model !== 'lognormal' && v.model !== 'gammaVariate') throw new UsageError(`perfusion: --model ${v.model} must be lognormal or gammaVariate`);
      if (v['no-linearise'] && v['dynamic-range'] !== undefined) throw new UsageError('perfusion: --no-linearise and --dynamic-range contradict each other');
      const dr = numOption('dynamic-range', v['dynamic-range'], 1e-9, 120);
      const config = v.config ? loadConfig(v.config) : undefined;
      const ff = ffmpegOptionsOf(v);
      const { perfusionCommand, formatPerfusion } = await import('./perfusion.js');
      const report = await withInterrupt((signal) => perfusionCommand({
        input: v.input ?? 'phantom', init: v.init, ffmpeg: ff, layout: namedLayout(v.layout, v.config), tracker: config?.pipeline.tracker,
        ringsMm: config?.pipeline.ringsMm, reference: ref && { x: ref[0], y: ref[1], radiusMm: ref[2] },
        linearisation: v['no-linearise'] ? null : dr !== undefined ? { dynamicRangeDb: dr } : undefined,
        model: v.model as 'lognormal' | 'gammaVariate' | undefined, max: intOption('max', v.max, 1, 1e9),
        seconds: numOption('seconds', v.seconds, 1, 3600),
        phantom: { width: ff.width, height: ff.height, fps: ff.fps },
        repeatEvery: intOption('repeat-every', v['repeat-every'], 2, 1e6), lose: lose && { startS: lose[0], durationS: lose[1] }, csv: v.csv,
      }, io.err, signal));
      io.out(v.json ? JSON.stringify(report, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? null : x)) : formatPerfusion(report));
      return 0;
    }
    if (cmd === 'segment') {
      const { values: v } = parse(rest, {
        image: { type: 'string' }, seed: { type: 'string' }, box: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' },
        segmenter: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      });
      if (v.help) { io.out(SEGMENT_HELP); return 0; }
      if (!v.image) throw new UsageError('segment: --image IMG is required');
      if (!v.out) throw new UsageError('segment: --out MASK.png is required');
      if ((v.seed === undefined) === (v.box === undefined)) throw new UsageError('segment: give either --seed X,Y or --box X0,Y0,X1,Y1');
      const nums = (flag: string, text: string, n: number, what: string): number[] => {
        const xs = text.split(',').map((t) => (t.trim() === '' ? NaN : Number(t)));
        if (xs.length !== n || xs.some((x) => !Number.isFinite(x))) throw new UsageError(`segment: --${flag} ${text} must be ${what}`);
        return xs;
      };
      const p = v.seed !== undefined ? nums('seed', v.seed, 2, 'two numbers X,Y') : nums('box', v.box!, 4, 'four numbers X0,Y0,X1,Y1');
      const prompt = p.length === 2 ? { seed: { x: p[0], y: p[1] } } : { box: { x0: p[0], y0: p[1], x1: p[2], y1: p[3] } };
      const { segmentCommand } = await import('./segment.js');
      const s = await segmentCommand({ image: v.image, prompt, out: v.out, segmenter: v.segmenter });
      if (v.json) io.out(JSON.stringify(s));
      else io.out(s.found ? `${s.out}: lesion of ${s.area} pixels, box (${s.bbox!.x0},${s.bbox!.y0})-(${s.bbox!.x1},${s.bbox!.y1}), confidence ${s.confidence}, ${s.ms} ms. ${s.notice}`
        : `${s.reason}. ${s.notice}`);
      return s.found ? 0 : 3;
    }
    if (cmd === 'train-segmenter') {
      const { values: v } = parse(rest, {
        cohort: { type: 'string' }, out: { type: 'string' }, 'label-column': { type: 'string' }, folds: { type: 'string' }, epochs: { type: 'string' },
        seed: { type: 'string' }, phantom: { type: 'string' }, jobs: { type: 'string' }, 'box-negatives': { type: 'string' }, refine: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
        negatives: { type: 'string' }, 'lesion-scale-share': { type: 'string' }, 'refine-scale': { type: 'string' }, 'refine-epochs': { type: 'string' },
        'trial-of': { type: 'string' }, 'trial-folds': { type: 'string' }, 'refine-only': { type: 'boolean' },
      });
      if (v.help) { io.out(TRAIN_SEGMENTER_HELP); return 0; }
      for (const k of ['cohort', 'out'] as const) if (!v[k]) throw new UsageError(`train-segmenter: --${k} is required`);
      if (!v['trial-of'] !== !v['trial-folds']) throw new UsageError('train-segmenter: --trial-of DIR and --trial-folds K,... go together');
      if (v['refine-only'] && !v['trial-of']) throw new UsageError('train-segmenter: --refine-only is for a trial (--trial-of DIR --trial-folds K,...)');
      const refineScale = v['refine-scale'] === undefined ? undefined : numListOption('refine-scale', v['refine-scale'], 'two numbers "A,B" (multiples of the lesion\'s extent)', 0.5, 10);
      if (refineScale && (refineScale.length !== 2 || !(refineScale[0] < refineScale[1])))
        throw new UsageError(`--refine-scale must be two numbers "A,B" with A < B (got "${v['refine-scale']}")`);
      const trialList = v['trial-folds']?.split(','), trialFinal = trialList?.includes('final');
      const trialFolds = trialList?.filter((k) => k !== 'final').map((k) => intOption('trial-folds', k, 1, 20)!);
      const { trainSegmenterCommand } = await import('./train-segmenter.js');
      const m = await trainSegmenterCommand({
        cohort: v.cohort!, out: v.out!, labelColumn: v['label-column'], folds: intOption('folds', v.folds, 0, 20) ?? 5,
        epochs: intOption('epochs', v.epochs, 1, 1000) ?? 24, seed: intOption('seed', v.seed, 0, 2 ** 31) ?? 1,
        phantomImages: intOption('phantom', v.phantom, 0, 10000) ?? 60, jobs: intOption('jobs', v.jobs, 1, 64) ?? 2,
        boxNegatives: numOption('box-negatives', v['box-negatives'], 0, 0.5, true), refine: v.refine,
        negatives: numOption('negatives', v.negatives, 0, 0.9, true), lesionScaleShare: numOption('lesion-scale-share', v['lesion-scale-share'], 0, 1, true),
        refineScale: refineScale as [number, number] | undefined, refineEpochs: intOption('refine-epochs', v['refine-epochs'], 1, 1000),
        ...(trialFolds && { trial: { of: v['trial-of']!, folds: trialFolds, ...(trialFinal && { final: true }), refineOnly: v['refine-only'] } }),
        command: ['sonomics', ...argv].join(' '),
      }, io.err);
      io.out(JSON.stringify({ out: v.out, model: m.model, folds: m.folds.map((f) => ({ file: f.file, sha256: f.sha256, ...(f.refine && { refine: f.refine }), heldOut: f.heldOut.length })), minutes: m.training.minutes }));
      return 0;
    }
    if (cmd === 'fit') {
      const { values: v } = parse(rest, {
        cohort: { type: 'string' }, out: { type: 'string' }, id: { type: 'string' }, version: { type: 'string' }, task: { type: 'string' },
        'label-column': { type: 'string' }, clinical: { type: 'string' }, seed: { type: 'string' }, folds: { type: 'string' }, 'outer-folds': { type: 'string' },
        'bin-width': { type: 'string' }, rings: { type: 'string' }, pane: { type: 'string' }, 'clinical-use': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
        'cohort-name': { type: 'string' }, caveat: { type: 'string', multiple: true }, heldout: { type: 'string' }, masks: { type: 'string' },
      });
      if (v.help) { io.out(FIT_HELP); return 0; }
      for (const k of ['cohort', 'out', 'id'] as const) if (!v[k]) throw new UsageError(`fit: --${k} is required`);
      if (!/^[a-z0-9][a-z0-9._-]*$/.test(v.id!)) throw new UsageError(`fit: --id ${v.id} must be lower case letters, digits, . _ - (starting with a letter or digit)`);
      if (v.pane !== undefined && v.pane !== 'bmode' && v.pane !== 'contrast') throw new UsageError('fit: --pane must be bmode or contrast');
      const { fitCommand } = await import('./fit.js');
      const label = v['label-column'] ?? 'label';
      io.out(JSON.stringify(await fitCommand({
        cohort: v.cohort!, out: v.out!, id: v.id!, version: v.version ?? '1.0.0', task: v.task ?? `Malignancy (${label})`, labelColumn: label,
        clinical: v.clinical, seed: intOption('seed', v.seed, 0, 2 ** 31) ?? 20261122, folds: intOption('folds', v.folds, 3, 20) ?? 5,
        outerFolds: intOption('outer-folds', v['outer-folds'], 2, 20) ?? 5, binWidth: numOption('bin-width', v['bin-width'], 1e-6, 1e6) ?? 25,
        rings: v.rings === undefined ? undefined : numListOption('rings', v.rings, 'ring radii', 1e-3, 1000),
        pane: (v.pane ?? 'bmode') as 'bmode' | 'contrast', researchUseOnly: !v['clinical-use'], command: ['sonomics', ...argv].join(' '),
        cohortName: v['cohort-name'], caveats: v.caveat, heldout: v.heldout, masks: masksOption('fit', v.masks),
      }, io.err)));
      return 0;
    }
    if (cmd === 'eval') {
      const { values: v } = parse(rest, {
        model: { type: 'string' }, cohort: { type: 'string' }, out: { type: 'string' }, 'label-column': { type: 'string' }, json: { type: 'boolean' },
        masks: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      });
      if (v.help) { io.out(EVAL_HELP); return 0; }
      for (const k of ['model', 'cohort'] as const) if (!v[k]) throw new UsageError(`eval: --${k} is required`);
      const { evalCommand } = await import('./fit.js');
      const s = await evalCommand({ model: v.model!, cohort: v.cohort!, out: v.out, labelColumn: v['label-column'], masks: masksOption('eval', v.masks), command: ['sonomics', ...argv].join(' ') }, io.err);
      const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(3));
      io.out(v.json ? JSON.stringify(s) : `${s.model} ${s.version}: n ${s.n} (${s.nPositive} positive, ${s.excluded} excluded), AUC ${f(s.auc)} ` +
        `(95 % CI ${f(s.auc_ci[0])}-${f(s.auc_ci[1])}), calibration slope ${f(s.calibration_slope)}, intercept ${f(s.calibration_intercept)}. ${s.notice}`);
      return 0;
    }
    if (cmd === 'import-sklearn') {
      const { values: v } = parse(rest, {
        in: { type: 'string' }, out: { type: 'string' }, id: { type: 'string' }, version: { type: 'string' }, task: { type: 'string' }, pane: { type: 'string' },
        region: { type: 'string' }, 'bin-width': { type: 'string' }, spacing: { type: 'string' }, cutoff: { type: 'string' }, labels: { type: 'string' },
        'clinical-use': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      });
      if (v.help) { io.out(IMPORT_HELP); return 0; }
      for (const k of ['in', 'out', 'id'] as const) if (!v[k]) throw new UsageError(`import-sklearn: --${k} is required`);
      if (v.pane !== undefined && v.pane !== 'bmode' && v.pane !== 'contrast') throw new UsageError('import-sklearn: --pane must be bmode or contrast');
      if (v.spacing !== undefined && v.spacing !== 'mm' && v.spacing !== 'pixel') throw new UsageError('import-sklearn: --spacing must be mm or pixel');
      const labels = (v.labels ?? 'lower risk,higher risk').split(',');
      if (labels.length !== 2 || labels.some((l) => !l.trim())) throw new UsageError('import-sklearn: --labels must be two labels, BELOW,ABOVE');
      let ex: unknown;
      try {
        ex = JSON.parse(readFileSync(v.in!, 'utf8'));
      } catch (e) {
        throw new UsageError(`import-sklearn: ${v.in} is not readable JSON: ${(e as Error).message}`);
      }
      const { importSklearn } = await import('./fit.js');
      const card = importSklearn(ex as never, {
        id: v.id!, version: v.version ?? '1.0.0', task: v.task ?? 'Imported scikit-learn model', pane: (v.pane ?? 'bmode') as 'bmode' | 'contrast',
        region: v.region ?? 'lesion', binWidth: numOption('bin-width', v['bin-width'], 1e-6, 1e6) ?? 25, spacing: (v.spacing ?? 'mm') as 'mm' | 'pixel',
        cutoff: numOption('cutoff', v.cutoff, 0, 1) ?? 0.5, labels: [labels[0].trim(), labels[1].trim()], researchUseOnly: !v['clinical-use'],
      });
      writeFileSync(v.out!, `${JSON.stringify(card, null, 2)}\n`);
      io.out(JSON.stringify({ card: v.out, id: card.id, features: card.inputs.features.length, sha256: card.sha256 }));
      return 0;
    }
    if (cmd === 'audit-verify') {
      const { values: v, positionals } = parse(rest, { help: { type: 'boolean', short: 'h' } }, true);
      if (v.help) { io.out('Usage: sonomics audit-verify AUDIT.jsonl\n\nChecks the hash chain of an audit log (docs/security.md). Prints {entries, ok, problems}; exit 1 when a line was changed, removed or inserted.\n'); return 0; }
      const { verifyAuditLog } = await import('../core/audit.js');
      const r = verifyAuditLog(onePositional('audit-verify', positionals, 'AUDIT.jsonl'));
      io.out(JSON.stringify(r));
      return r.ok ? 0 : 1;
    }
    if (cmd === 'seal-card') {
      const { values: v, positionals } = parse(rest, { help: { type: 'boolean', short: 'h' } }, true);
      if (v.help) { io.out('Usage: sonomics seal-card CARD.json\n\nChecks an edited model card and rewrites its sha256.\n'); return 0; }
      const { sealCardFile } = await import('./fit.js');
      io.out(JSON.stringify(sealCardFile(onePositional('seal-card', positionals, 'CARD.json'))));
      return 0;
    }
    if (cmd === 'panel-sim') {
      const { values: v, positionals } = parse(rest, { layout: { type: 'string' }, baud: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, true);
      const { panelSim, PANEL_SIM_HELP } = await import('./panel-sim.js');
      if (v.help) { io.out(PANEL_SIM_HELP); return 0; }
      const path = onePositional('panel-sim', positionals, 'serial device PATH');
      const { loadPanelLayout } = await import('../device/panel/layout.js');
      await panelSim({ path, in: process.stdin, out: io.out, layout: loadPanelLayout(v.layout), baudRate: intOption('baud', v.baud, 300, 4000000) });
      return 0;
    }
    if (cmd === 'panel-firmware') {
      const { values: v } = parse(rest, { layout: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
      if (v.help) { io.out(PANEL_FIRMWARE_HELP); return 0; }
      const { generatePanelFirmware } = await import('../device/panel/codegen.js');
      const layout = v.layout ?? join(packageRoot(), 'firmware-config', 'panel-layout.json');
      io.out(JSON.stringify(generatePanelFirmware(layout, v.out ?? join(dirname(layout), 'generated'))));
      return 0;
    }
    if (cmd === 'replay' || cmd === 'run') {
      const replay = cmd === 'replay';
      const { values: v, positionals } = parse(rest, { ...serveOptions, fast: { type: 'boolean' }, speed: { type: 'string' } }, replay);
      if (v.help) { io.out(replay ? REPLAY_HELP : RUN_HELP); return 0; }
      if (!replay && (v.fast || v.speed !== undefined)) throw new UsageError('run: --fast and --speed are for replay');
      const base = loadConfig(v.config);
      const config = resolveConfig({
        ...base, overlay: overlayOverrides(base, v), telemetry: telemetryOverrides(base, v),
      }, v.config ?? 'command line');
      const { openInput, sourceFromConfig, layoutFor } = await import('../device/open.js');
      const { readLesion } = await import('./capture.js');
      const source = replay
        ? await openInput(onePositional('replay', positionals, 'recording'), { realtime: !v.fast, speed: numOption('speed', v.speed, 0, 100) })
        : await sourceFromConfig(config);
      const layoutName = v.layout ?? config.source.layout;
      const layout = layoutFor(source, layoutName ? { name: layoutName, profile: layoutProfile(config, layoutName, v.config ?? 'command line') } : undefined);
      const lesion = v.lesion ? await readLesion(v.lesion, layout) : undefined;
      const log = v.json ? io.err : io.out;
      const summary = await withInterrupt((signal) => runDemo({
        config, frames: intOption('frames', v.frames, 1, 1e9), headless: Boolean(v.headless), log, source, layout, lesion, panel: v.panel,
      }, signal));
      if (v.json) io.out(JSON.stringify(summary));
      else printDemoSummary(summary, io.out);
      return 0;
    }
    throw new UsageError(`unknown command "${cmd}"; run 'sonomics --help'`);
  } catch (e) {
    if (e instanceof UsageError) { io.err(`sonomics: ${e.message}`); return 2; }
    if (e instanceof ConfigError) { io.err(`sonomics: ${e.message}`); return 2; }
    // A missing or badly kept access token is a set-up error: the server did not start.
    if ((e as Error)?.name === 'AuthConfigError') { io.err(`sonomics: ${(e as Error).message}`); return 2; }
    // So is a bad telemetry set-up (password file readable by others, unreadable certificate, ...).
    if ((e as Error)?.name === 'TelemetryConfigError') { io.err(`sonomics: ${(e as Error).message}`); return 2; }
    // core/params.ts is loaded only by the features command, so its error is known by name.
    if ((e as Error)?.name === 'ParamsError') { io.err(`sonomics: ${(e as Error).message}`); return 2; }
    // A clinical value given on the command line that a card refuses is a usage error too.
    if ((e as Error)?.name === 'ClinicalInputError') { io.err(`sonomics: ${(e as Error).message}`); return 2; }
    // A panel layout that fails its schema or rules is a set-up error too.
    if ((e as Error)?.name === 'PanelLayoutError') { io.err(`sonomics: ${(e as Error).message}`); return 2; }
    io.err(`sonomics: ${(e as Error).message}`);
    return 1;
  }
}
