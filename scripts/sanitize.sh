#!/usr/bin/env bash
# Runs the native addon's radiomics engine under AddressSanitizer + UndefinedBehaviorSanitizer
# (default) or valgrind (--valgrind), driven by scripts/sanitize-driver.mjs: the conformance
# cases of ../shared/radiomics-ref at binCount 32 and binWidth 25 (sync and async), edge cases
# and bad-argument calls. docs/radiomics-bench.md describes it.
#
#   scripts/sanitize.sh                 ASan + UBSan: builds a sanitized copy of the addon in a
#                                       temp dir (never touches ./build), runs the driver on it
#   scripts/sanitize.sh --valgrind      valgrind on the normal build/Release/sonomics.node,
#                                       2 small cases (node under valgrind is slow)
#   options: --keep (keep the temp dir), --build-only (ASan: build, check, stop),
#            --cases c1_64x64,c5_512x512 (conformance cases to run)
#   env:     SONOMICS_RADIOMICS_REF (cases folder, default ../shared/radiomics-ref),
#            SANITIZE_FLAGS (compiler flags, default below), CC/CXX (default gcc/g++)
#
# Exit status: 0 clean; 1 a sanitizer/valgrind report, or a driver check failed; 2 the build
# or the setup failed; 3 the addon has no radiomics engine yet (only the first-order baseline ran,
# and it was clean).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=asan keep=0 build_only=0 cases=""
while [ $# -gt 0 ]; do
  case "$1" in
    --valgrind) mode=valgrind ;;
    --asan) mode=asan ;;
    --keep) keep=1 ;;
    --build-only) build_only=1 ;;
    --cases) cases=${2:?--cases needs a comma-separated list}; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "sanitize: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

ref=${SONOMICS_RADIOMICS_REF:-$root/../shared/radiomics-ref}
[ -d "$ref" ] || echo "sanitize: no conformance cases at $ref (set SONOMICS_RADIOMICS_REF); only synthetic edge cases will run" >&2
driver="$root/scripts/sanitize-driver.mjs"
node_bin=$(command -v node) || { echo "sanitize: node not found" >&2; exit 2; }

# Any of these in the output is a finding, whatever the exit status says.
report_re='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer|ERROR SUMMARY: [1-9]|Assertion .* failed'

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sonomics-sanitize.XXXXXX")
cleanup() { if [ "$keep" = 1 ]; then echo "sanitize: kept $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT

run_driver() { # $1 = log file, rest = command
  local logf=$1; shift
  "$@" 2>&1 | tee "$logf"
  local st=${PIPESTATUS[0]}
  if grep -Eq "$report_re" "$logf"; then
    echo "sanitize: FAILED: the $mode run reported memory errors or undefined behaviour (see the report above)"
    return 1
  fi
  case $st in
    0) echo "sanitize: clean ($mode): no reports, all driver checks held"; return 0 ;;
    3) echo "sanitize: the addon has no radiomics engine yet; the first-order baseline ran clean under $mode"; return 3 ;;
    1) echo "sanitize: FAILED: driver checks failed (no sanitizer report)"; return 1 ;;
    2) echo "sanitize: the driver could not start (see its message above)"; return 2 ;;
    *) echo "sanitize: FAILED: the driver exited with status $st (a crash or a sanitizer abort without a report line?)"; return 1 ;;
  esac
}

if [ "$mode" = valgrind ]; then
  command -v valgrind >/dev/null || { echo "sanitize: valgrind not installed (apt-get install valgrind)" >&2; exit 2; }
  release="$root/build/Release/sonomics.node"
  [ -f "$release" ] || { echo "sanitize: $release not built (npm install)" >&2; exit 2; }
  # A snapshot: a rebuild in ./build (node-gyp rebuild removes it first) cannot pull the file
  # away mid-run.
  addon="$tmp/sonomics.node"
  cp "$release" "$addon" || { echo "sanitize: cannot copy $release" >&2; exit 2; }
  # --jitless: V8 interprets only, which valgrind follows far more cheaply than self-modifying
  # JIT code; the native code under test is unaffected.
  echo "sanitize: valgrind on a copy of $release (the normal Release build; reports give source lines only if it was built with -g)"
  # valgrind-node.supp: reports from Node itself (V8's conservative stack scan of the GC).
  run_driver "$tmp/valgrind.log" valgrind --error-exitcode=1 --leak-check=no --track-origins=yes --num-callers=30 \
    --suppressions="$root/scripts/valgrind-node.supp" \
    "$node_bin" --jitless --expose-gc "$driver" --addon "$addon" --ref "$ref" --cases "${cases:-c1_64x64,c4_320x240}" --quick
  exit $?
fi

# ---- ASan + UBSan ------------------------------------------------------------------------------
export CC=${CC:-gcc} CXX=${CXX:-g++}
# Beyond -fsanitize=address,undefined: float-cast-overflow (NaN or out-of-range double -> int,
# e.g. in binning; not part of GCC's "undefined"), vptr off (node-gyp builds with -fno-rtti),
# _GLIBCXX_ASSERTIONS (bounds-checked std::vector/array operator[]: catches reads past size()
# that stay inside the allocation, invisible to ASan) and _GLIBCXX_SANITIZE_VECTOR (ASan
# annotations for the unused capacity of std::vector).
flags=${SANITIZE_FLAGS:--fsanitize=address,undefined,float-cast-overflow -fno-sanitize=vptr -fno-omit-frame-pointer -O1 -g -D_GLIBCXX_ASSERTIONS -D_GLIBCXX_SANITIZE_VECTOR}
runtime=$("$CC" -print-file-name=libasan.so)
[ -f "$runtime" ] || { echo "sanitize: $CC has no ASan runtime (libasan.so); install libasan for $CC" >&2; exit 2; }

echo "sanitize: building a sanitized copy in $tmp"
echo "  flags: $flags"
cp -R "$root/binding.gyp" "$root/package.json" "$root/native" "$tmp/"
ln -s "$root/node_modules" "$tmp/node_modules"
# native/build.mjs finds node-gyp as npm install does (npm_config_node_gyp, a resolvable
# node-gyp, npm's bundled copy) and passes --nodedir=<prefix of this node>: headers are never
# downloaded. The make files gyp writes append $CFLAGS/$CXXFLAGS/$LDFLAGS after binding.gyp's
# own flags, so -O1 here wins over its -O3.
# -Wl,-Bsymbolic: the addon binds to its own (instrumented) template instances, e.g.
# std::vector<int>::_M_default_append; without it they resolve to the uninstrumented copies node
# exports, which lose coverage and break _GLIBCXX_SANITIZE_VECTOR's bookkeeping (false
# container-overflow reports).
( cd "$tmp" && CFLAGS="$flags" CXXFLAGS="$flags" LDFLAGS="$flags -Wl,-Bsymbolic" V=1 "$node_bin" native/build.mjs ) >"$tmp/build.log" 2>&1
st=$?
addon="$tmp/build/Release/sonomics.node"
if [ $st -ne 0 ] || [ ! -f "$addon" ]; then
  tail -n 60 "$tmp/build.log"
  echo "sanitize: the sanitized build failed (full log: $tmp/build.log; rerun with --keep to keep it)" >&2
  keep=1
  exit 2
fi
n_obj=$(grep -c -- '-fsanitize=address' "$tmp/build.log" || true)
warn=$(grep -c 'warning:' "$tmp/build.log" || true)
if ! readelf -d "$addon" | grep -q 'libasan'; then
  echo "sanitize: $addon is not linked against libasan: the flags did not reach the link (see $tmp/build.log)" >&2
  keep=1
  exit 2
fi
echo "sanitize: built $addon ($n_obj compile/link lines with -fsanitize=address, $warn compiler warnings)"
[ "$warn" -gt 0 ] && grep 'warning:' "$tmp/build.log" | sort -u | head -n 20
[ "$build_only" = 1 ] && exit 0

# The ASan runtime must come first in the process (node itself is not instrumented).
# detect_leaks=0: node does not free everything at exit by design (V8 heap, static objects),
# so LeakSanitizer would report node itself, not the addon.
export LD_PRELOAD="$runtime"
export ASAN_OPTIONS="detect_leaks=0:handle_abort=1:halt_on_error=1:abort_on_error=0:exitcode=86:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:print_summary=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87:print_summary=1"
echo "sanitize: running the driver (ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS)"
cmd=("$node_bin" --expose-gc "$driver" --addon "$addon" --ref "$ref")
[ -n "$cases" ] && cmd+=(--cases "$cases")
run_driver "$tmp/asan.log" "${cmd[@]}"
exit $?
