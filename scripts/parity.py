#!/usr/bin/env python3
"""Independent parity checker for QINS files, written from the published spec alone.

    scripts/parity.py SOURCE QINSFILE [SOURCE QINSFILE ...]
    scripts/parity.py --self-test SOURCE QINSFILE
    scripts/parity.py --rational SOURCE QINSFILE [RESTORED ...] [-- SOURCE QINSFILE ...]
    scripts/parity.py --i8 SOURCE QINSFILE [RESTORED ...] [-- SOURCE QINSFILE ...]

SOURCE is a .safetensors file, a checkpoint folder (its
model.safetensors.index.json, its only *.safetensors.index.json, or its only
.safetensors file) or a *.safetensors.index.json; QINSFILE is what
`qins convert SOURCE -o QINSFILE` wrote.

Why: the Go converter and its tests share one implementation of the codec.
This script re-derives every QINS file from its source with nothing but the
published spec (the package documentation of quant and format/qins: `go doc
./quant`, `go doc ./format/qins`), Python's standard library and numpy, so
that a bug in the Go codec, in its BF16/F16 tables, or in its writer shows
up as a difference here instead of being confirmed by the same code that
made it. It never reads the Go sources.

What it checks, for each SOURCE/QINSFILE pair:

* the QINS file is a well-formed safetensors file: 8-byte little-endian header
  length, JSON header without duplicate keys (anywhere, compared exactly:
  never case-folded) and with UTF-8 strings only, every tensor's byte range inside
  the data section and of the size its dtype and shape imply (any dtype of the
  safetensors specification: elements times bits, F4 and F6 packed across
  the tensor, which must fill whole bytes), the data section
  covered without holes or overlaps, tensors laid out largest element size
  first, each one aligned (in the file) to its element size (F4 and F6, under
  a byte, are not checked for order);
* `__metadata__["qins"]` is the least version that describes the file: "2"
  when a tensor has per-row ranges ("granularity": "row"), else "1" (also
  for a --granularity row convert that encoded nothing); every source
  `__metadata__` entry is kept,
  and there is no other metadata than those, "qins" and one "qins:NAME" per
  encoded tensor;
* the tensor set is exactly: for every encoded source tensor NAME (one with a
  "qins:NAME" entry) NAME.qins and NAME.sign (layout u8+i8) or NAME.qins and
  NAME.signbits (layout packed), NAME for every other one;
* copied tensors: same dtype, shape and bytes;
* encoded tensors (source F16, BF16, F32 or F64): "qins:NAME" is a JSON
  object with exactly log_min, log_max (JSON numbers in shortest round-trip
  form), dtype (the source dtype), optionally layout ("u8+i8", the
  default, or "packed") and optionally range ("minmax", the default, or
  "mse"), each key once; log_max - log_min is finite and the largest
  magnitude, exp(log_max) (code 1), is finite in the source dtype; the
  source has no NaN or infinity. In u8+i8,
  NAME.qins is U8 and NAME.sign is I8, both of the source shape; in packed,
  NAME.qins is U8 of the source shape and NAME.signbits is U8 of shape
  [ceil(n/8)]. The tensor is then re-encoded in float64 following the README
  formula. Range minmax: log_min/log_max agree within 4 ulps (two libms may
  differ by an ulp) and the re-encoding uses this script's log_min/log_max.
  Range mse (the converter chose log_min for the least squared error):
  log_max agrees within 4 ulps; log_min is at least this script's min/max
  log_min (less 4 ulps) and below log_max (equal to it when every
  significant element has the same magnitude or none is significant, where
  [min ln|w|, log_max] is one point); the re-encoding uses the stored
  log_min/log_max, so elements below exp(log_min) clamp to code 255. Codes
  agree except by exactly 1 where the unrounded code is within
  1e-9 of a .5 tie (counted as "tie differences"); in u8+i8 signs agree
  exactly, in packed exact zeros (+0 and -0) have code 0 (never a tie), the
  sign bit (LSB first, row-major) is 1 exactly for the negative non-zero
  elements and the padding bits of the last byte are 0. Finally the stored
  tensor is decoded with the README's decode formula and the stored
  log_min/log_max (packed: sign 0 where the code is 0, else -1/+1 from the
  bit, so code 0 decodes to exactly 0): exact zeros decode to exactly 0,
  nothing decodes larger than the largest source magnitude, and for
  |w| > 1e-8, |ln|w'| - ln|w|| <= (log_max - log_min)/508 + 1e-6 (one more
  code step for the tie elements), except, in range mse, for elements with
  ln|w| < log_min, which must decode to exactly exp(log_min) (code 255).

Data is read tensor by tensor and chunk by chunk (2**20 elements, and the
2**17 sign-bit bytes of the same elements) with np.fromfile, so memory stays
under 100 MB whatever the file size. For BF16 and
F16 sources the formula is evaluated once per 16-bit pattern (65536 values, in
float64, by the same vectorised code as for F32/F64) and looked up per
element: each element still gets the formula's value, computed once per
distinct value. Likewise the decode bound is checked once per pattern present
at its expected code (an element's decoded value depends only on its code),
and element by element wherever the stored code is not the expected one.

The rational codec (QINS version 3, and 4 with one alpha per row):
`--rational SOURCE QINSFILE [RESTORED ...] [-- SOURCE QINSFILE ...]` checks
files of rational tensors: "qins:NAME" is exactly codec "rational", alpha (a
finite float32 above 0) and dtype, and optionally granularity ("tensor", or
"row" for one alpha per row, in version "4"); NAME.qins is U8 of the source
shape, the only other part being, with granularity "row", NAME.alpha, F32
[rows] (rows: the product of all dimensions but the last), each row's alpha
finite and above 0, its largest magnitude (code 128) finite in the source
dtype, the tensor's alpha the least of them (1 without rows). The codes are
the reference encoder's (dkeviv/Cogumi-IntLLM's formulas transcribed in
float32 numpy) with the tensor's or each row's alpha, but for exact zeros
(+0 gets 255, -0 gets 0, where the reference gives 128); zeros decode to
zeros with the reference's decoder, no weight changes sign, and each
RESTORED F32 or F64 file holds the spec's float64 decoding, rounded once,
bit for bit.

The i8 layout (QINS version 3): `--i8 SOURCE QINSFILE [RESTORED ...] [--
SOURCE QINSFILE ...]` checks files of i8 tensors: "qins:NAME" is log_min,
log_max, dtype, layout "i8" and optionally range; NAME.qins is I8 of the
source shape with no other part and no code -128; range minmax agrees with
this script's within 4 ulps and the codes (0 for an exact zero, else sign *
round(127 - 126 (ln|w| - log_min) / (log_max - log_min)) clamped to 1..127,
127 at or below 1e-8) are recomputed from the source with this script's
range, range mse from the stored one; codes may differ only by 1 at a
rounding tie. Decoded with the spec's formula, zeros stay 0, no weight
changes sign, nothing exceeds the largest magnitude, the log error is within
half a code step ((log_max - log_min)/252, one step more at a tie; in mse
below log_min exactly exp(log_min)), and each RESTORED F32 (F64) file holds
the decoded values within 1 (64) ulps: two libms' exp may differ. With
granularity "row" NAME.logrange is F32 [rows, 2] and each row's range is
checked as the 8-bit per-row files' (the row's min/max range in float32,
log_max rounded down; mse: log_min within [min/max log_min, log_max]), the
"qins:NAME" range being the rows' envelope; codes are recomputed with each
row's range (0 codes off but ties) and decoded with each row's stored range.

Self-test: `--self-test SOURCE QINSFILE` checks the pair, then corrupts
copies of QINSFILE in a temporary folder (a code +2, a flipped sign, a digit
of a log_min, a byte of a copied tensor, the "qins" version; for a packed
tensor the flipped sign is a sign bit, and a packed file also gets an exact
zero's code 0 set to 255, a zero's sign bit set and, where a tensor has
some, a padding bit set; a file with a range mse tensor also gets that
tensor's log_min rewritten to 1 below the min/max log_min, the header
re-padded to keep the data aligned) and requires each copy to fail with a
line naming the tensor or key (for the log_min rewrite: the line of the
log_min check).

Exit status: 0 when every pair passes, 1 when a check fails (up to 10 lines
per pair name the tensor, the element and the values), 2 for a usage error or
an unreadable input.
"""

import json
import math
import os
import shutil
import struct
import sys
import tempfile

import numpy as np

CHUNK = 1 << 20          # elements per chunk: 8 MiB float64 temporaries, cache-friendly
assert CHUNK % 8 == 0    # so every chunk but the last starts and ends on a sign-bit byte
COPY_CHUNK = 1 << 24     # bytes per chunk when comparing copied tensors
SIGNIFICANT = 1e-8       # |w| above this is encoded on the log scale
TIE_EPS = 1e-9           # unrounded code this close to .5: either neighbour is fine
LOG_ULPS = 4             # log_min/log_max tolerance, in units in the last place
MAX_LINES = 10           # failure lines printed per pair

# Bits per element of every dtype of the safetensors specification. A
# tensor takes numel * bits / 8 bytes, and numel * bits must be a multiple
# of 8: F4 and F6 elements are packed across the whole tensor.
BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8,
        "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
        "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
        "C64": 64, "F64": 64, "I64": 64, "U64": 64}
# Bytes per element of the dtypes whose elements are whole bytes.
ITEMSIZE = {dt: bits // 8 for dt, bits in BITS.items() if bits % 8 == 0}
FLOATS = ("F16", "BF16", "F32", "F64")
READ_DTYPE = {"F32": "<f4", "F64": "<f8"}     # F16/BF16 are read as "<u2" patterns
# The least float64 that rounds (to nearest even) to an infinity in a dtype.
FIRST_INFINITE = {"F16": 65520.0, "BF16": 2.0 ** 127 * (2 - 2.0 ** -8),
                  "F32": 2.0 ** 127 * (2 - 2.0 ** -24)}
LAYOUTS = ("u8+i8", "packed")                 # values of "layout" in "qins:NAME"
RANGES = ("minmax", "mse")                    # values of "range" in "qins:NAME"
GRANULARITIES = ("tensor", "row")             # values of "granularity" in "qins:NAME"


class InputError(Exception):
    """An input that cannot be read as asked: exit status 2."""


# ---------------------------------------------------------------- safetensors

class Tensor:
    """One tensor entry of a safetensors header, with its absolute offset."""

    def __init__(self, name, dtype, shape, path, start, nbytes):
        self.name, self.dtype, self.shape = name, dtype, tuple(shape)
        self.path, self.start, self.nbytes = path, start, nbytes

    @property
    def numel(self):
        n = 1
        for d in self.shape:
            n *= d
        return n


class Header:
    """A parsed safetensors header: metadata, tensors and raw layout facts."""

    def __init__(self, path, header_len, data_len, metadata, tensors, offsets):
        self.path, self.header_len, self.data_len = path, header_len, data_len
        self.metadata, self.tensors, self.offsets = metadata, tensors, offsets


def _no_duplicates(pairs):
    """object_pairs_hook: no key twice (keys are compared exactly, never
    case-folded), and no string with a lone surrogate (not UTF-8)."""
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise InputError("duplicate JSON key %r" % k)
        for text in (k, v) if isinstance(v, str) else (k,):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise InputError("JSON string %r is not UTF-8" % text)
        obj[k] = v
    return obj


def read_header(path):
    """Parse the header of a safetensors file; InputError if malformed."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise InputError("%s: shorter than 8 bytes" % path)
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                raise InputError("%s: header length %d beyond the file" % (path, n))
            raw = f.read(n)
    except OSError as e:
        raise InputError("%s: %s" % (path, e))
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, InputError) as e:
        raise InputError("%s: bad JSON header: %s" % (path, e))
    if not isinstance(doc, dict):
        raise InputError("%s: header is not a JSON object" % path)
    data_len = size - 8 - n
    metadata = doc.pop("__metadata__", None)
    if metadata is None:    # absent, or null as MLX writes it
        metadata = {}
    if not isinstance(metadata, dict) or not all(
            isinstance(v, str) for v in metadata.values()):
        raise InputError("%s: __metadata__ is not a string-to-string map" % path)
    tensors, offsets = {}, {}
    for name, t in doc.items():
        tensors[name] = _tensor_entry(path, name, t, 8 + n, data_len)
        offsets[name] = tuple(t["data_offsets"])
    return Header(path, n, data_len, metadata, tensors, offsets)


def _tensor_entry(path, name, t, data_start, data_len):
    what = "%s: tensor %r" % (path, name)
    try:
        dtype, shape, (begin, end) = t["dtype"], t["shape"], t["data_offsets"]
    except (TypeError, KeyError, ValueError):
        raise InputError("%s: needs dtype, shape and data_offsets" % what)
    if not isinstance(dtype, str) or not isinstance(shape, list) or not all(
            type(d) is int and d >= 0 for d in shape + [begin, end]):
        raise InputError("%s: bad dtype, shape or data_offsets" % what)
    if not begin <= end <= data_len:
        raise InputError("%s: data_offsets %s outside the data" % (what, [begin, end]))
    tensor = Tensor(name, dtype, shape, path, data_start + begin, end - begin)
    if dtype in BITS:
        bits = tensor.numel * BITS[dtype]
        if bits % 8:
            raise InputError("%s: %s %s is not a whole number of bytes" % (what, dtype, shape))
        if bits // 8 != end - begin:
            raise InputError("%s: %d bytes for %s %s" % (what, end - begin, dtype, shape))
    return tensor


def read_array(t, dtype, first, count):
    """Elements [first, first+count) of tensor t, read as numpy dtype."""
    dt = np.dtype(dtype)
    with open(t.path, "rb") as f:
        f.seek(t.start + first * dt.itemsize)
        a = np.fromfile(f, dtype=dt, count=count)
    if a.size != count:
        raise InputError("%s: tensor %r is truncated" % (t.path, t.name))
    return a


def read_bytes(t, first, count):
    """Bytes [first, first+count) of tensor t's data."""
    with open(t.path, "rb") as f:
        f.seek(t.start + first)
        a = np.fromfile(f, dtype=np.uint8, count=count)
    if a.size != count:
        raise InputError("%s: tensor %r is truncated" % (t.path, t.name))
    return a


def chunks(numel):
    for first in range(0, numel, CHUNK):
        yield first, min(CHUNK, numel - first)


# ------------------------------------------------------------------ sources

class Source:
    """A source checkpoint: its tensors (over all shards) and shard metadata."""

    def __init__(self, tensors, metadatas):
        self.tensors, self.metadatas = tensors, metadatas


def open_source(arg):
    if os.path.isdir(arg):
        return open_source(_pick_in_folder(arg))
    if arg.endswith(".index.json"):
        return _open_index(arg)
    h = read_header(arg)
    return Source(h.tensors, [h.metadata])


def _pick_in_folder(folder):
    names = sorted(os.listdir(folder))
    if "model.safetensors.index.json" in names:
        return os.path.join(folder, "model.safetensors.index.json")
    for suffix in (".safetensors.index.json", ".safetensors"):
        found = [n for n in names if n.endswith(suffix)]
        if len(found) == 1:
            return os.path.join(folder, found[0])
        if len(found) > 1:
            raise InputError("%s: several *%s files, pass one" % (folder, suffix))
    raise InputError("%s: no index and no .safetensors file" % folder)


def _open_index(path):
    try:
        with open(path, "rb") as f:
            index = json.loads(f.read().decode("utf-8"))
        weight_map = index["weight_map"]
        assert isinstance(weight_map, dict)
    except (OSError, ValueError, KeyError, TypeError, AssertionError) as e:
        raise InputError("%s: not a safetensors index: %s" % (path, e))
    folder = os.path.dirname(path)
    tensors, metadatas = {}, []
    for shard in sorted(set(weight_map.values())):
        h = read_header(os.path.join(folder, shard))
        metadatas.append(h.metadata)
        for name, t in h.tensors.items():
            if weight_map.get(name) != shard:
                raise InputError("%s: %r of shard %s is not listed for it"
                                 % (path, name, shard))
            tensors[name] = t
    missing = sorted(set(weight_map) - set(tensors))
    if missing:
        raise InputError("%s: %r is not in its shard" % (path, missing[0]))
    return Source(tensors, metadatas)


# -------------------------------------------------------------------- codec

def pattern_values(dtype):
    """float64 value of each of the 65536 bit patterns of F16 or BF16."""
    bits = np.arange(65536, dtype=np.uint32)
    with np.errstate(invalid="ignore"):     # signalling NaN patterns
        if dtype == "BF16":
            return (bits << 16).view(np.float32).astype(np.float64)
        return bits.astype(np.uint16).view(np.float16).astype(np.float64)


def log_range(sig_min, sig_max, largest):
    """(log_min, log_max, largest) per README; sig_min is None if no |w| > 1e-8."""
    if sig_min is not None:
        lo, hi = np.log(np.array([sig_min, sig_max], dtype=np.float64))
        return float(lo), float(hi), largest
    lo = float(np.log(np.float64(largest))) if largest > 0 else 0.0
    return lo, lo, largest


class Expected:
    """The README encoding of float64 values w, computed independently."""

    def __init__(self, w, lo, hi):
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.abs(w)
            self.sig = a > SIGNIFICANT
            self.lnw = np.log(a)
            if hi > lo:
                self.t = 255.0 - 254.0 * (self.lnw - lo) / (hi - lo)
                code = np.clip(np.rint(self.t), 1, 255)
            else:   # every significant element has the same magnitude
                self.t = np.ones_like(a)
                code = np.ones_like(a)
            self.code = np.where(self.sig, code, 255).astype(np.uint8)
            self.sign = np.sign(w).astype(np.int8)   # sign(+-0) == 0
        self.zero = w == 0
        self.w = w


class Chunk:
    """Expected code, sign and zero flag of each element of one chunk.

    Everything else (unrounded code, ln|w|, significance, value) is looked up
    in `e` only where needed: key(idx) maps element indices of the chunk to
    rows of `e`, which is either the chunk itself (F32/F64) or the table of
    the 65536 bit patterns (F16/BF16, `bits` being the chunk's patterns).
    In the packed layout exact zeros are expected to have code 0; `sign`
    stays the value's sign (-1, 0, +1), from which the sign bit follows.
    """

    def __init__(self, e, bits=None, packed=False):
        self.e, self.bits = e, bits
        if bits is None:
            self.code, self.sign, self.zero = e.code, e.sign, e.zero
        else:
            self.code, self.sign, self.zero = e.code[bits], e.sign[bits], e.zero[bits]
        if packed:
            self.code = np.where(self.zero, np.uint8(0), self.code)

    def key(self, idx):
        return idx if self.bits is None else self.bits[idx]


class Decoder:
    """The README decode with a stored log_min/log_max, and its error bound.

    packed: code 0 always has sign 0 (README decode), so it decodes to
    exactly 0, whatever its sign bit: magnitude 0, ln -inf.
    clamp (range mse): log_min may be above the smallest ln|w|; elements
    with ln|w| < log_min are outside the bound's reach and must instead
    decode to exactly exp(log_min), the magnitude of code 255.
    """

    def __init__(self, lo, hi, packed=False, clamp=False):
        self.lo, self.clamp = lo, clamp
        codes = np.arange(256, dtype=np.float64)
        with np.errstate(over="ignore"):    # code 0 of an extreme F64 range
            self.magnitude = np.exp(lo + (255 - codes) / 254 * (hi - lo))
        if packed:
            self.magnitude[0] = 0.0
        with np.errstate(divide="ignore"):
            self.ln_magnitude = np.log(self.magnitude)
        self.bound = (hi - lo) / 508 + 1e-6     # half a code step
        self.step = (hi - lo) / 254             # extra allowance at a tie

    def decode(self, code, sign):
        return float(sign * self.magnitude[code])

    def too_far(self, codes, lnw, sig, tie):
        """(mask of significant elements beyond the bound, |ln| errors,
        mask of those below log_min or None).

        Below log_min (clamp only) "beyond the bound" means any magnitude
        other than exp(log_min)'s; the error is still |ln|w'| - ln|w||.
        """
        limit = np.where(tie, self.bound + self.step, self.bound)
        with np.errstate(invalid="ignore"):     # -inf - -inf: a zero at packed code 0
            err = np.abs(self.ln_magnitude[codes] - lnw)
            far = sig & (err > limit)
            if not self.clamp:
                return far, err, None
            below = sig & (lnw < self.lo)
            far = np.where(below, self.magnitude[codes] != self.magnitude[255], far)
            return far, err, below

    def excess(self, err, below):
        """Why an element flagged by too_far fails, for a failure line."""
        if below:
            return "ln|w| is below log_min %r, so it should decode to exp(log_min) = %r" % (
                self.lo, self.magnitude[255])
        return "|ln| error %.3g > %.3g" % (err, self.bound)


# -------------------------------------------------------------- reporting

class Report:
    """Failures and tie differences of one pair."""

    def __init__(self):
        self.failures, self.ties, self.lines = 0, 0, []

    def fail(self, msg, count=1):
        self.failures += count
        if len(self.lines) < MAX_LINES:
            self.lines.append(msg)


def where(t, flat):
    """'name[flat] (i, j)' for an element of tensor t."""
    multi = np.unravel_index(int(flat), t.shape) if t.shape else ()
    return "%s[%d] %s" % (t.name, flat, tuple(int(i) for i in multi))


def close(a, b):
    """Within LOG_ULPS units in the last place: log_min and log_max are each
    one logarithm, on which two libms may differ by an ulp; more is a real
    difference."""
    return abs(a - b) <= LOG_ULPS * max(np.spacing(abs(a)), np.spacing(abs(b)), np.spacing(0.0))


# ------------------------------------------------------- file-level checks

def check_metadata(src, q, encoded, rep, rows=()):
    meta = q.metadata
    version = "2" if rows else "1"
    if meta.get("qins") != version:
        rep.fail("__metadata__[\"qins\"] is %r, want %r" % (meta.get("qins"), version))
    wanted = {}
    for m in src.metadatas:
        for k, v in m.items():
            wanted.setdefault(k, set()).add(v)
    for k, values in sorted(wanted.items()):
        if k == "qins" or k.startswith("qins:"):
            rep.fail("source metadata key %r collides with the QINS keys" % k)
        elif meta.get(k) not in values:
            rep.fail("source metadata %r=%r not kept (QINS has %r)"
                     % (k, sorted(values)[0], meta.get(k)))
    for k in sorted(meta):
        if k == "qins" or k in wanted:
            continue
        if not (k.startswith("qins:") and k[5:] in encoded):
            rep.fail("unexpected metadata key %r" % k)


def check_layout(q, rep):
    """Safetensors layout rules plus the README's 'largest element first'."""
    spans = sorted((q.offsets[n], n) for n in q.tensors)
    pos, prev_size = 0, None
    for (begin, end), name in spans:
        t = q.tensors[name]
        if begin != pos:
            rep.fail("layout: %r starts at %d, previous data ends at %d"
                     % (name, begin, pos))
        pos = max(pos, end)
        size = ITEMSIZE.get(t.dtype)
        if size is None:
            continue
        if prev_size is not None and size > prev_size and t.nbytes:
            rep.fail("layout: %r (%s) after a smaller element size" % (name, t.dtype))
        if t.nbytes and t.start % size:
            rep.fail("layout: %r at file offset %d not aligned to %d"
                     % (name, t.start, size))
        if t.nbytes:
            prev_size = size
    if pos != q.data_len:
        rep.fail("layout: data section is %d bytes, tensors cover %d"
                 % (q.data_len, pos))


def declared_layout(text):
    """The layout "qins:NAME" asks for, read leniently: it decides which
    tensors are expected; parse_qins_meta is the strict check of the text.
    None for a "layout" that is none of LAYOUTS (u8+i8 tensors expected)."""
    try:
        obj = json.loads(text)
    except ValueError:
        return LAYOUTS[0]
    if not isinstance(obj, dict) or "layout" not in obj:
        return LAYOUTS[0]
    return obj["layout"] if obj["layout"] in LAYOUTS else None


def declared_range(text):
    """The "range" of "qins:NAME", read leniently (for counting and the
    self-test; parse_qins_meta is the strict check): "minmax" when absent or
    unreadable."""
    try:
        obj = json.loads(text)
    except ValueError:
        return RANGES[0]
    return obj.get("range", RANGES[0]) if isinstance(obj, dict) else RANGES[0]


def declared_granularity(text):
    """The "granularity" of "qins:NAME", read leniently: "tensor" when
    absent or unreadable."""
    try:
        obj = json.loads(text)
    except ValueError:
        return GRANULARITIES[0]
    return obj.get("granularity", GRANULARITIES[0]) if isinstance(obj, dict) else GRANULARITIES[0]


def sign_part(layout):
    """Suffix of the sign tensor for a declared_layout value."""
    return ".signbits" if layout == "packed" else ".sign"


def expected_names(src, encoded, rep, rows=()):
    """{QINS tensor name: source name}; encoded maps NAME to its layout,
    rows holds the per-row tensors."""
    names = {}
    for name in src.tensors:
        if name in encoded:
            outs = [name + ".qins", name + sign_part(encoded[name])]
            if name in rows:
                outs.append(name + ".logrange")
        else:
            outs = [name]
        for out in outs:
            if out in names:
                rep.fail("name collision: %r stands for %r and %r"
                         % (out, names[out], name))
            names[out] = name
    return names


# ------------------------------------------------------ tensor-level checks

def check_copied(t, q, rep):
    got = q.tensors.get(t.name)
    if got is None:
        return rep.fail("%s: missing from the QINS file" % t.name)
    if (got.dtype, got.shape, got.nbytes) != (t.dtype, t.shape, t.nbytes):
        return rep.fail("%s: copied as %s %s (%d bytes), source %s %s (%d bytes)"
                        % (t.name, got.dtype, list(got.shape), got.nbytes,
                           t.dtype, list(t.shape), t.nbytes))
    for first in range(0, t.nbytes, COPY_CHUNK):
        n = min(COPY_CHUNK, t.nbytes - first)
        a, b = read_bytes(t, first, n), read_bytes(got, first, n)
        diff = np.flatnonzero(a != b)
        if diff.size:
            byte = first + int(diff[0])
            el = byte * 8 // BITS.get(t.dtype, 8)  # the first element of that byte
            return rep.fail("%s: copied bytes differ at byte %d (element %s): "
                            "source 0x%02x, QINS 0x%02x (%d bytes differ in this chunk)"
                            % (t.name, byte, where(t, el) if t.dtype in ITEMSIZE else el,
                               a[diff[0]], b[diff[0]], diff.size))


def parse_qins_meta(name, text, rep):
    """log_min, log_max, dtype, layout, range from "qins:NAME", or None after
    a failure."""
    raw = []    # the numbers as written, for the shortest-form check

    def number(convert):
        def parse(s):
            raw.append(s)
            return convert(s)
        return parse
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates,
                         parse_float=number(float), parse_int=number(int))
    except (ValueError, InputError) as e:
        return rep.fail("%s: qins metadata %r is not JSON: %s" % (name, text, e))
    if not isinstance(obj, dict) or \
            set(obj) - {"layout", "range", "granularity"} != {"log_min", "log_max", "dtype"}:
        return rep.fail("%s: qins metadata %r needs exactly log_min, log_max, dtype"
                        " and optionally layout, range and granularity" % (name, text))
    if obj.get("granularity", GRANULARITIES[0]) not in GRANULARITIES:
        return rep.fail("%s: qins metadata granularity %r, want one of %s"
                        % (name, obj["granularity"], ", ".join(map(repr, GRANULARITIES))))
    layout = obj.get("layout", LAYOUTS[0])
    if layout not in LAYOUTS or not isinstance(layout, str):
        return rep.fail("%s: qins metadata layout %r, want one of %s"
                        % (name, layout, ", ".join(map(repr, LAYOUTS))))
    range_ = obj.get("range", RANGES[0])
    if range_ not in RANGES or not isinstance(range_, str):
        return rep.fail("%s: qins metadata range %r, want one of %s"
                        % (name, range_, ", ".join(map(repr, RANGES))))
    lo, hi = obj["log_min"], obj["log_max"]
    if type(lo) not in (int, float) or type(hi) not in (int, float) \
            or not np.isfinite([lo, hi]).all() or hi < lo:
        return rep.fail("%s: bad log_min/log_max in %r" % (name, text))
    # Code 1 decodes to the largest magnitude, exp(log_min + 1 * (log_max -
    # log_min)): it must be finite in the source dtype, or the file decodes
    # to infinities (or NaN, when log_max - log_min overflows).
    with np.errstate(over="ignore", invalid="ignore"):
        top = np.exp(np.float64(lo) + (np.float64(hi) - np.float64(lo)))
    if not np.isfinite(top) or top >= FIRST_INFINITE.get(obj["dtype"], np.inf):
        return rep.fail("%s: log_min %r, log_max %r decode to %r, beyond the largest %s"
                        % (name, lo, hi, float(top), obj["dtype"]))
    for s in raw:
        if _digits(s) != _digits(repr(float(s))):
            rep.fail("%s: %s is not the shortest form of %r" % (name, s, float(s)))
    return float(lo), float(hi), obj["dtype"], layout, range_, obj.get("granularity", "tensor")


def _digits(s):
    """Significant digits of a decimal number, e.g. '-1.250e-3' -> '125'."""
    mantissa = s.lower().lstrip("-+").split("e")[0].replace(".", "")
    return mantissa.strip("0")


def check_encoded(t, q, text, layout, rep):
    """layout: declared_layout(text), which picks the tensors to look at."""
    if layout is None:  # name the bad layout value (parse_qins_meta fails)
        return parse_qins_meta(t.name, text, rep)
    if layout == "packed":
        wanted = ((".qins", "U8", t.shape), (".signbits", "U8", ((t.numel + 7) // 8,)))
    else:
        wanted = ((".qins", "U8", t.shape), (".sign", "I8", t.shape))
    parts = [q.tensors.get(t.name + suffix) for suffix, _, _ in wanted]
    for part, (suffix, dtype, shape) in zip(parts, wanted):
        if part is None:
            return rep.fail("%s: has qins metadata (layout %s) but no %s tensor %s"
                            % (t.name, layout, dtype, t.name + suffix))
        if part.dtype != dtype or part.shape != shape:
            return rep.fail("%s: %s is %s %s, want %s %s" % (
                t.name, part.name, part.dtype, list(part.shape), dtype, list(shape)))
    if t.dtype not in FLOATS:
        return rep.fail("%s: encoded, but its dtype %s is not a float" % (t.name, t.dtype))
    stored = parse_qins_meta(t.name, text, rep)
    if stored is None:
        return
    lo_s, hi_s, dtype, layout_s, range_, granularity = stored
    assert layout_s == layout   # a strictly valid text says what the lenient read saw
    if dtype != t.dtype:
        rep.fail("%s: qins dtype %r, source dtype %r" % (t.name, dtype, t.dtype))
    if granularity == "row":
        return check_rows(t, q, parts, layout == "packed", range_, (lo_s, hi_s), rep)
    if t.dtype in ("F16", "BF16"):
        encoder = PatternEncoder(t, rep)
    else:
        encoder = FloatEncoder(t, rep)
    if encoder.range is None:
        return
    lo, hi, largest = encoder.range
    if range_ == "mse":
        if not close(hi, hi_s):
            rep.fail("%s: log_max %r, expected %r" % (t.name, hi_s, hi))
        if not check_mse_log_min(t.name, lo, hi, lo_s, hi_s, rep):
            return      # codes made with such a log_min say nothing more
        check_elements(t, parts, layout == "packed", encoder, (lo_s, hi_s),
                       (lo_s, hi_s), largest, rep, clamp=True)
        return
    for what, mine, theirs in (("log_min", lo, lo_s), ("log_max", hi, hi_s)):
        if not close(mine, theirs):
            rep.fail("%s: %s %r, expected %r" % (t.name, what, theirs, mine))
    check_elements(t, parts, layout == "packed", encoder, (lo, hi), (lo_s, hi_s),
                   largest, rep)


def check_mse_log_min(name, lo, hi, lo_s, hi_s, rep):
    """Range mse: the stored log_min lies in [min ln|w|, log_max) (this
    script's min ln|w|, less LOG_ULPS ulps). When that interval is one point
    (lo == hi: one significant magnitude, or none), log_min must equal the
    stored log_max. False after a failure."""
    if lo_s < lo and not close(lo, lo_s):
        rep.fail("%s: range mse log_min %r is below the min/max log_min %r"
                 % (name, lo_s, lo))
        return False
    if lo == hi:
        if lo_s != hi_s:
            rep.fail("%s: range mse log_min %r, expected log_max %r (one significant "
                     "magnitude or none: the range is one point)" % (name, lo_s, hi_s))
            return False
    elif not lo_s < hi_s:
        rep.fail("%s: range mse log_min %r is not below log_max %r"
                 % (name, lo_s, hi_s))
        return False
    return True


class PatternEncoder:
    """F16/BF16: the range from the bit patterns present, codes by table."""

    def __init__(self, t, rep):
        self.t = t
        present = np.zeros(65536, dtype=bool)
        for first, n in chunks(t.numel):
            present |= np.bincount(read_array(t, "<u2", first, n), minlength=65536) > 0
        self.present = present
        self.values = pattern_values(t.dtype)
        bad = present & ~np.isfinite(self.values)
        self.range = None
        if bad.any():
            self._report_nonfinite(bad, rep)
            return
        m = np.abs(self.values[present])
        sig = m[m > SIGNIFICANT]
        largest = float(m.max()) if m.size else 0.0
        self.range = (log_range(sig.min(), sig.max(), largest) if sig.size
                      else log_range(None, None, largest))

    def _report_nonfinite(self, bad, rep):
        for first, n in chunks(self.t.numel):
            bits = read_array(self.t, "<u2", first, n)
            idx = np.flatnonzero(bad[bits])
            if idx.size:
                return rep.fail("%s: %r in the source: the converter must refuse it"
                                % (where(self.t, first + idx[0]), self.values[bits[idx[0]]]))

    decode_every_element = False

    def prepare(self, lo, hi):
        self.table = Expected(self.values, lo, hi)

    def chunk(self, first, n, packed):
        return Chunk(self.table, read_array(self.t, "<u2", first, n), packed)

    def check_patterns(self, decoder, rep):
        """The decode bound for each pattern present, at its expected code.

        An element's decoded value depends only on its pattern and its code,
        so this covers every element whose code is the expected one; the
        others are checked one by one (check_decoded on the mismatches).
        """
        e = self.table
        rows = np.flatnonzero(self.present & e.sig)
        far, err, below = decoder.too_far(e.code[rows], e.lnw[rows], True, False)
        if below is None:
            below = np.zeros(rows.size, dtype=bool)
        for row, error, low in zip(rows[far][:MAX_LINES], err[far][:MAX_LINES],
                                   below[far][:MAX_LINES]):
            first = self._first_element(row)
            rep.fail("%s: value %r decodes to %r: %s" % (
                where(self.t, first), e.w[row], decoder.decode(e.code[row], e.sign[row]),
                decoder.excess(error, low)))
        if far.sum() > MAX_LINES:
            rep.fail("%s: %d more values beyond the bound" % (
                self.t.name, far.sum() - MAX_LINES), count=int(far.sum()) - MAX_LINES)

    def _first_element(self, pattern):
        for first, n in chunks(self.t.numel):
            idx = np.flatnonzero(read_array(self.t, "<u2", first, n) == pattern)
            if idx.size:
                return first + int(idx[0])


class FloatEncoder:
    """F32/F64: the range from a first pass, codes element by element."""

    def __init__(self, t, rep):
        self.t = t
        self.dtype = READ_DTYPE[t.dtype]
        lo, hi, largest = None, None, 0.0
        self.range = None
        for first, n in chunks(t.numel):
            w = read_array(t, self.dtype, first, n).astype(np.float64)
            finite = np.isfinite(w)
            if not finite.all():
                i = int(np.flatnonzero(~finite)[0])
                return rep.fail("%s: %r in the source: the converter must refuse it"
                                % (where(t, first + i), w[i]))
            a = np.abs(w)
            sig = a[a > SIGNIFICANT]
            if sig.size:
                lo = sig.min() if lo is None else min(lo, sig.min())
                hi = sig.max() if hi is None else max(hi, sig.max())
            if a.size:
                largest = max(largest, float(a.max()))
        self.range = log_range(lo, hi, largest)

    decode_every_element = True

    def prepare(self, lo, hi):
        self.lo, self.hi = lo, hi

    def chunk(self, first, n, packed):
        w = read_array(self.t, self.dtype, first, n).astype(np.float64)
        return Chunk(Expected(w, self.lo, self.hi), packed=packed)

    def check_patterns(self, decoder, rep):
        pass    # every element went through check_decoded


def check_elements(t, parts, packed, encoder, encode_range, theirs, largest, rep,
                   clamp=False):
    """Codes and signs against the re-encoding with encode_range (this
    script's range for minmax, the stored one for mse); decode with the
    stored range (clamp: range mse, see Decoder)."""
    encoder.prepare(*encode_range)
    decoder = Decoder(*theirs, packed=packed, clamp=clamp)
    lowest = 256    # lowest code of a non-zero sign: the largest decoded value
    for first, n in chunks(t.numel):
        exp = encoder.chunk(first, n, packed)
        codes = read_array(parts[0], "u1", first, n)
        mismatch, ties = compare_codes(t, first, exp, codes, rep)
        if packed:
            signs = packed_signs(t, parts[1], first, n, exp, codes, rep)
        else:
            signs = read_array(parts[1], "i1", first, n)
            compare_signs(t, first, exp, signs, rep)
        check_zeros(t, first, exp, codes, signs, decoder, rep)
        nonzero = codes[signs != 0]
        if nonzero.size:
            lowest = min(lowest, int(nonzero.min()))
        if encoder.decode_every_element:
            idx, tie = slice(None), np.zeros(n, dtype=bool)
            tie[ties] = True
        else:
            idx, tie = mismatch, np.isin(mismatch, ties)
        check_decoded(t, first, exp, codes, signs, decoder, idx, tie, rep)
    encoder.check_patterns(decoder, rep)
    if lowest < 256 and decoder.magnitude[lowest] > largest * (1 + 1e-13):
        rep.fail("%s: code %d decodes to %r, above the largest magnitude %r"
                 % (t.name, lowest, decoder.magnitude[lowest], largest))


def compare_codes(t, first, exp, codes, rep):
    """Count tie differences and report the others.

    Returns (indices of all code differences, indices of the tie ones).
    """
    idx = np.flatnonzero(codes != exp.code)
    if not idx.size:
        return idx, idx
    keys = exp.key(idx)
    got = codes[idx].astype(np.int16)
    diff = got - exp.code[idx].astype(np.int16)
    # a tie difference: off by one, and still within half a step (+ TIE_EPS)
    # of the unrounded value, which only a value at a .5 tie allows
    with np.errstate(invalid="ignore"):
        near = np.abs(got - exp.e.t[keys]) <= 0.5 + TIE_EPS
    tie = (np.abs(diff) == 1) & exp.e.sig[keys] & near & (got >= 1)
    rep.ties += int(tie.sum())
    bad = idx[~tie]
    if bad.size:
        i, k = int(bad[0]), exp.key(int(bad[0]))
        rep.fail("%s: code %d, expected %d (unrounded %.12f, value %r); "
                 "%d such codes in this chunk" % (
                     where(t, first + i), codes[i], exp.code[i],
                     exp.e.t[k], exp.e.w[k], bad.size), count=bad.size)
    return idx, idx[tie]


def compare_signs(t, first, exp, signs, rep):
    bad = np.flatnonzero(signs != exp.sign)
    if bad.size:
        i = int(bad[0])
        rep.fail("%s: sign %d, expected %d (value %r); %d such signs in this chunk"
                 % (where(t, first + i), signs[i], exp.sign[i], exp.e.w[exp.key(i)],
                    bad.size), count=bad.size)


def packed_signs(t, bits_t, first, n, exp, codes, rep):
    """Check the sign bits of elements [first, first+n) and the padding bits
    after the last element; return the decoded signs (README: 0 where the
    code is 0, else -1 for a 1 bit and +1 for a 0 bit)."""
    raw = read_array(bits_t, "u1", first // 8, (n + 7) // 8)
    unpacked = np.unpackbits(raw, bitorder="little")
    bits = unpacked[:n]
    want = (exp.sign < 0).astype(np.uint8)     # -0 has sign 0: bit 0
    bad = np.flatnonzero(bits != want)
    if bad.size:
        i = int(bad[0])
        rep.fail("%s: sign bit %d (byte %d of %s), expected %d (value %r); "
                 "%d such bits in this chunk" % (
                     where(t, first + i), bits[i], (first + i) // 8, bits_t.name,
                     want[i], exp.e.w[exp.key(i)], bad.size), count=bad.size)
    pad = np.flatnonzero(unpacked[n:])     # non-empty only in the last chunk
    if pad.size:
        rep.fail("%s: padding bit %d of its last byte (byte %d) is 1, want 0; "
                 "%d such bits" % (bits_t.name, (first + n + int(pad[0])) % 8,
                                   (first + n - 1) // 8, pad.size), count=pad.size)
    return np.where(codes == 0, 0, 1 - 2 * bits.astype(np.int8)).astype(np.int8)


def check_zeros(t, first, exp, codes, signs, decoder, rep):
    """Exact zeros of the source decode to exactly 0."""
    zero = np.flatnonzero(exp.zero)
    decoded = signs[zero] * decoder.magnitude[codes[zero]]
    bad = zero[decoded != 0]
    if bad.size:
        i = int(bad[0])
        rep.fail("%s: exact zero decodes to %r; %d such zeros in this chunk" % (
            where(t, first + i), decoder.decode(codes[i], signs[i]), bad.size),
            count=bad.size)


def check_decoded(t, first, exp, codes, signs, decoder, idx, tie, rep):
    """The decode bound on elements idx of the chunk (tie: one step more)."""
    keys = exp.key(idx)
    far, err, below = decoder.too_far(codes[idx], exp.e.lnw[keys], exp.e.sig[keys], tie)
    pos = np.flatnonzero(far)
    if pos.size:
        i = int(pos[0]) if isinstance(idx, slice) else int(idx[pos[0]])
        low = below is not None and bool(below[pos[0]])
        rep.fail("%s: value %r decodes to %r: %s; "
                 "%d such elements in this chunk" % (
                     where(t, first + i), exp.e.w[exp.key(i)],
                     decoder.decode(codes[i], signs[i]),
                     decoder.excess(err[pos[0]], low), pos.size), count=pos.size)


# ------------------------------------------------------------ per-row ranges

def f32_down(x):
    """The largest float32 at or below x, as float64."""
    f = np.float32(x)
    f = np.where(f.astype(np.float64) > x, np.nextafter(f, np.float32(-np.inf)), f)
    return f.astype(np.float64)


def minmax_row_ranges(a):
    """The min/max range of each row of magnitudes a ([rows, rowlen]), as
    stored (float32): ln of the smallest and largest magnitude above
    SIGNIFICANT; a row with none takes ln of its largest for both, and a
    row of zeros (0, 0). Also each row's largest magnitude."""
    sig = a > SIGNIFICANT
    largest = a.max(axis=1)
    with np.errstate(divide="ignore"):
        lo = np.log(np.where(sig, a, np.inf).min(axis=1))
        hi = np.log(np.where(sig, a, 0).max(axis=1))
        none = np.log(largest)
    lo = np.where(sig.any(axis=1), lo, np.where(largest > 0, none, 0.0))
    hi = np.where(sig.any(axis=1), hi, np.where(largest > 0, none, 0.0))
    mm_lo, mm_hi = stored_row_range(lo, hi)
    return mm_lo, mm_hi, largest


def stored_row_range(lo, hi):
    """README: log_max rounded down to float32, log_min to the nearest
    float32 but not above that."""
    hi32 = f32_down(hi)
    return np.minimum(np.float32(lo).astype(np.float64), hi32), hi32


def row_codes(a, lo, hi):
    """The README formula per element with per-element log_min/log_max
    arrays: (codes, unrounded values)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lnw = np.log(a)
        span = hi - lo
        u = np.where(span > 0, 255.0 - 254.0 * (lnw - lo) / np.where(span > 0, span, 1), 1.0)
        code = np.clip(np.rint(u), 1, 255)
    return np.where(a > SIGNIFICANT, code, 255).astype(np.uint8), u, lnw


def row_sq_err(a, lo, hi, rowlen):
    """Squared error of each row coded and decoded with (lo, hi) per
    element (zeros excluded: they decode to exactly 0)."""
    code, _, _ = row_codes(a, lo, hi)
    dec = np.exp(lo + (255.0 - code) / 254.0 * (hi - lo))
    e = np.where(a == 0, 0.0, (a - dec) ** 2)
    return e.reshape(-1, rowlen).sum(axis=1)


def check_rows(t, q, parts, packed, range_, envelope, rep):
    """A per-row tensor: NAME.logrange is F32 [rows, 2]; each row's range is
    the README's min/max range of the row, stored as float32 (range mse:
    log_max the same, log_min in [the min/max log_min, log_max] and the
    row's squared error no larger than with the min/max range); the
    envelope in "qins:NAME" is the smallest log_min and largest log_max;
    codes are the formula's with each row's stored range (ties by one),
    signs as the tensor-wide case, and decoding each row with its stored
    range stays within half a code step of ln|w| (elements below the row's
    log_min decode to exactly exp(log_min)) and never above the row's
    largest magnitude."""
    rowlen = t.shape[-1] if t.shape else 1
    nrows = t.numel // rowlen if rowlen else (t.numel and 1)
    rt = q.tensors.get(t.name + ".logrange")
    want = [int(np.prod(t.shape[:-1])) if t.shape else 1, 2]
    if rt is None:
        return rep.fail("%s: granularity row but no F32 tensor %s.logrange" % (t.name, t.name))
    if rt.dtype != "F32" or list(rt.shape) != want:
        return rep.fail("%s: %s is %s %s, want F32 %s" % (t.name, rt.name, rt.dtype, list(rt.shape), want))
    if rowlen == 0:
        # Rows of no elements: like a row of zeros, log_min = log_max = 0.
        for r0 in range(0, want[0], CHUNK):
            nr = min(CHUNK, want[0] - r0)
            st = read_array(rt, "<f4", 2 * r0, 2 * nr)
            if st.any():
                i = int(np.flatnonzero(st)[0]) // 2
                return rep.fail("%s: row %d of no elements has range %r, want (0, 0)" % (t.name, r0 + i, tuple(st[2 * i:2 * i + 2].tolist())))
        if want[0] and envelope != (0.0, 0.0):
            rep.fail("%s: qins metadata log_min/log_max %r, the rows' envelope is (0, 0)" % (t.name, envelope))
        return
    per = max(8, (CHUNK // rowlen) // 8 * 8)     # rows per chunk: whole sign-bit bytes
    env_lo, env_hi = np.inf, -np.inf
    dt = READ_DTYPE.get(t.dtype)
    values = pattern_values(t.dtype) if dt is None else None
    for r0 in range(0, nrows, per):
        nr = min(per, nrows - r0)
        first, n = r0 * rowlen, nr * rowlen
        if dt is None:
            w = values[read_array(t, "<u2", first, n)]
        else:
            w = read_array(t, dt, first, n).astype(np.float64)
        if not np.isfinite(w).all():
            i = int(np.flatnonzero(~np.isfinite(w))[0])
            return rep.fail("%s: %r in the source: the converter must refuse it" % (where(t, first + i), w[i]))
        a = np.abs(w).reshape(nr, rowlen)
        mm_lo, mm_hi, largest = minmax_row_ranges(a)
        st = read_array(rt, "<f4", 2 * r0, 2 * nr).astype(np.float64).reshape(nr, 2)
        lo_s, hi_s = st[:, 0], st[:, 1]
        env_lo, env_hi = min(env_lo, lo_s.min()), max(env_hi, hi_s.max())
        ulp = np.spacing(np.float32(np.abs(mm_hi)) + np.float32(1e-30)).astype(np.float64)
        bad = np.flatnonzero(~(np.abs(hi_s - mm_hi) <= ulp))
        if bad.size:
            i = int(bad[0])
            return rep.fail("%s: row %d log_max %r, expected %r (%d rows)" % (t.name, r0 + i, hi_s[i], mm_hi[i], bad.size))
        a = a.reshape(-1)
        if range_ == "mse":
            bad = np.flatnonzero(~((lo_s >= mm_lo - np.spacing(np.float32(np.abs(mm_lo))).astype(np.float64))
                                   & (lo_s <= hi_s)))
            if bad.size:
                i = int(bad[0])
                return rep.fail("%s: row %d mse log_min %r outside [%r, %r]" % (t.name, r0 + i, lo_s[i], mm_lo[i], hi_s[i]))
            e_s = row_sq_err(a, np.repeat(lo_s, rowlen), np.repeat(hi_s, rowlen), rowlen)
            e_m = row_sq_err(a, np.repeat(mm_lo, rowlen), np.repeat(mm_hi, rowlen), rowlen)
            bad = np.flatnonzero(e_s > e_m * (1 + 1e-9) + 1e-300)
            if bad.size:
                i = int(bad[0])
                rep.fail("%s: row %d mse squared error %r above the min/max range's %r" % (t.name, r0 + i, e_s[i], e_m[i]))
        else:
            bad = np.flatnonzero(~(np.abs(lo_s - mm_lo) <= np.spacing(np.float32(np.abs(mm_lo) + 1e-30)).astype(np.float64)))
            if bad.size:
                i = int(bad[0])
                return rep.fail("%s: row %d log_min %r, expected %r" % (t.name, r0 + i, lo_s[i], mm_lo[i]))
        elo, ehi = np.repeat(lo_s, rowlen), np.repeat(hi_s, rowlen)
        code, u, lnw = row_codes(a, elo, ehi)
        sign = np.sign(w).astype(np.int8)
        zero = w == 0
        if packed:
            code = np.where(zero, np.uint8(0), code)
        codes = read_array(parts[0], "u1", first, n)
        diff = np.flatnonzero(codes != code)
        with np.errstate(invalid="ignore"):
            tie = (np.abs(codes[diff].astype(np.int16) - code[diff]) == 1) & (a[diff] > SIGNIFICANT) \
                & (np.abs(codes[diff] - u[diff]) <= 0.5 + TIE_EPS) & (codes[diff] >= 1)
        rep.ties += int(tie.sum())
        if (~tie).any():
            i = int(diff[~tie][0])
            rep.fail("%s: code %d, expected %d (unrounded %.12f, value %r, row range %r %r); %d such codes" % (
                where(t, first + i), codes[i], code[i], u[i], w[i], elo[i], ehi[i], int((~tie).sum())), count=int((~tie).sum()))
        if packed:
            raw = read_array(parts[1], "u1", first // 8, (n + 7) // 8)
            unpacked = np.unpackbits(raw, bitorder="little")
            bits = unpacked[:n]
            bad = np.flatnonzero(bits != (sign < 0))
            if bad.size:
                rep.fail("%s: sign bit %d, expected %d" % (where(t, first + int(bad[0])), bits[bad[0]], sign[bad[0]] < 0), count=bad.size)
            if unpacked[n:].any():
                rep.fail("%s: a padding bit of its last byte is 1" % parts[1].name)
            signs = np.where(codes == 0, 0, 1 - 2 * bits.astype(np.int8))
        else:
            signs = read_array(parts[1], "i1", first, n)
            bad = np.flatnonzero(signs != sign)
            if bad.size:
                rep.fail("%s: sign %d, expected %d" % (where(t, first + int(bad[0])), signs[bad[0]], sign[bad[0]]), count=bad.size)
        mag = np.where(codes == 0, 0.0, np.exp(elo + (255.0 - codes) / 254.0 * (ehi - elo)))
        dec = signs * mag
        if (dec[zero] != 0).any():
            rep.fail("%s: an exact zero does not decode to 0" % where(t, first + int(np.flatnonzero(zero & (dec != 0))[0])))
        s = a > SIGNIFICANT
        below = s & (lnw < elo)
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.abs(np.log(mag) - lnw)
        limit = (ehi - elo) / 508 + 1e-6 + np.where(np.isin(np.arange(n), diff[tie]), (ehi - elo) / 254, 0)
        far = np.where(below, mag != np.exp(elo), s & (err > limit))
        if far.any():
            i = int(np.flatnonzero(far)[0])
            rep.fail("%s: value %r decodes to %r (row range %r %r)" % (where(t, first + i), w[i], dec[i], elo[i], ehi[i]), count=int(far.sum()))
        over = np.flatnonzero(np.abs(dec) > np.repeat(largest, rowlen) * (1 + 1e-13))
        if over.size:
            i = int(over[0])
            rep.fail("%s: decodes to %r, above its row's largest magnitude" % (where(t, first + i), dec[i]))
    if nrows and (envelope[0] != env_lo or envelope[1] != env_hi):
        rep.fail("%s: qins metadata log_min/log_max %r, the rows' envelope is %r" % (t.name, envelope, (env_lo, env_hi)))


# ------------------------------------------------------------------ a pair

def check_pair(source_arg, qins_path):
    """Check one pair; return (summary counts, Report). InputError if unreadable."""
    src = open_source(source_arg)
    q = read_header(qins_path)
    rep = Report()
    encoded = {k[5:]: declared_layout(v) for k, v in q.metadata.items()
               if k.startswith("qins:") and k[5:] in src.tensors}
    rows = {name for name in encoded
            if declared_granularity(q.metadata["qins:" + name]) == "row"}
    check_metadata(src, q, encoded, rep, rows)
    check_layout(q, rep)
    names = expected_names(src, encoded, rep, rows)
    for extra in sorted(set(q.tensors) - set(names)):
        rep.fail("%s: tensor in the QINS file but not expected" % extra)
    elements = 0
    for name in sorted(src.tensors):
        t = src.tensors[name]
        elements += t.numel
        if name in encoded:
            check_encoded(t, q, q.metadata["qins:" + name], encoded[name], rep)
        else:
            check_copied(t, q, rep)
    packed = sum(1 for layout in encoded.values() if layout == "packed")
    mse = sum(1 for name in encoded
              if declared_range(q.metadata["qins:" + name]) == "mse")
    counts = (len(src.tensors), len(encoded), packed, len(src.tensors) - len(encoded),
              elements, mse, len(rows))
    return counts, rep


def summary(source_arg, qins_path, counts, rep):
    n, e, p, c, m, r = counts[:6]
    enc = "%d encoded" % e
    notes = []  # u8+i8 minmax files keep the summary they always had
    if p:
        notes.append("%s packed" % ("all" if p == e else "%d" % p))
    if r:
        notes.append("%s range mse" % ("all" if r == e else "%d" % r))
    if len(counts) > 6 and counts[6]:
        notes.append("%s per row" % ("all" if counts[6] == e else "%d" % counts[6]))
    if notes:
        enc += " (%s)" % ", ".join(notes)
    return ("%s -> %s: %d tensors (%s, %d copied), %d elements, "
            "%d codes differ at rounding ties, %d other differences: %s"
            % (source_arg, qins_path, n, enc, c, m, rep.ties, rep.failures,
               "OK" if not rep.failures else "FAILED"))


def run_pairs(args):
    status = 0
    for source_arg, qins_path in zip(args[0::2], args[1::2]):
        counts, rep = check_pair(source_arg, qins_path)
        print(summary(source_arg, qins_path, counts, rep), flush=True)
        for line in rep.lines:
            print("  " + line)
        if rep.failures > MAX_LINES and len(rep.lines) == MAX_LINES:
            print("  ...")
        if rep.failures:
            status = 1
    return status


# ------------------------------------------------------- the rational codec
#
# QINS version 3: a tensor of the rational codec has "qins:NAME" exactly
# {"codec": "rational", "alpha": A, "dtype": DT} and one part, NAME.qins (U8,
# the source shape). Its codes are the reference's (dkeviv/Cogumi-IntLLM,
# qins_weight_codec.py) with alpha rounded to float32, but for exact zeros:
# +0 gets 255 and -0 gets 0 (the reference gives 128, which decodes to
# +254/alpha). Decoding is z = q/127.5 - 1, sign(z) (1 - |z|) / (alpha |z|)
# in float64, rounded once to the output dtype.

def qins_encode(w, alpha):
    """The reference's encoder, transcribed from its formulas: float32
    weights and float32 arithmetic, numpy's round half to even. alpha is
    a number or one per weight."""
    w = np.asarray(w, dtype=np.float32)
    a = np.asarray(alpha, dtype=np.float32)
    with np.errstate(over="ignore"):
        z = np.sign(w) / (np.float32(1) + a * np.abs(w))
        q = np.round((z + np.float32(1)) * np.float32(127.5))
    return np.clip(q, 0, 255).astype(np.uint8)


def qins_decode(q, alpha):
    """The reference's decoder, transcribed from its formulas (float32)."""
    z = np.asarray(q).astype(np.float32) / np.float32(127.5) - np.float32(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sign(z) * (np.float32(1) - np.abs(z)) / (np.asarray(alpha, dtype=np.float32) * np.abs(z))


def rational_decode(q, alpha):
    """The spec's decoder: float64; codes 0 and 255 give -0 and +0."""
    z = np.asarray(q).astype(np.float64) / 127.5 - 1
    a = np.abs(z)
    return np.copysign((1 - a) / (alpha * a), z)


def source_values(t, first, n):
    """Elements of a floating source tensor as float64."""
    if t.dtype in ("F16", "BF16"):
        return pattern_values(t.dtype)[read_array(t, "<u2", first, n)]
    return read_array(t, READ_DTYPE[t.dtype], first, n).astype(np.float64)


def check_rational_pair(source_arg, qins_path, restored=()):
    """Check a version-3 file of rational tensors against its source and,
    for each RESTORED F32 or F64 file, its decoded values. Returns
    (summary line, Report)."""
    src = open_source(source_arg)
    q = read_header(qins_path)
    rep = Report()
    # The version is the least that describes the file: "4" with a
    # rational tensor of one alpha per row, "3" with other rational
    # tensors, "1" when nothing was encoded (a source of integers).
    want = "1"
    if any(k.startswith("qins:") for k in q.metadata):
        want = "3"
        if any(k.startswith("qins:") and '"row"' in v for k, v in q.metadata.items()):
            want = "4"
    if q.metadata.get("qins") != want:
        rep.fail("__metadata__[\"qins\"] is %r, want %r" % (q.metadata.get("qins"), want))
    check_layout(q, rep)
    encoded, zeros, elements, per_row = {}, 0, 0, 0
    for k, v in sorted(q.metadata.items()):
        if not k.startswith("qins:"):
            continue
        name = k[5:]
        try:
            meta = json.loads(v, object_pairs_hook=_no_duplicates)
        except (ValueError, InputError) as e:
            rep.fail("%s: qins metadata %r is not JSON: %s" % (name, v, e))
            continue
        if not isinstance(meta, dict) or set(meta) - {"granularity"} != {"codec", "alpha", "dtype"} or \
                meta["codec"] != "rational" or meta.get("granularity", "tensor") not in ("tensor", "row"):
            rep.fail("%s: qins metadata %r is not exactly codec rational, alpha, dtype "
                     "and optionally granularity tensor or row" % (name, v))
            continue
        rows = meta.get("granularity") == "row"
        alpha = meta["alpha"]
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or \
                not math.isfinite(alpha) or alpha <= 0:
            rep.fail("%s: alpha %r is not a finite number above 0" % (name, alpha))
            continue
        t = src.tensors.get(name)
        if t is None or t.dtype not in FLOATS or meta["dtype"] != t.dtype:
            rep.fail("%s: no floating source tensor of dtype %r" % (name, meta["dtype"]))
            continue
        codes_t = q.tensors.get(name + ".qins")
        if codes_t is None or codes_t.dtype != "U8" or codes_t.shape != t.shape:
            rep.fail("%s: no NAME.qins U8 of the source shape" % name)
            continue
        extras = [name, name + ".sign", name + ".signbits", name + ".logrange"]
        if not rows:
            extras.append(name + ".alpha")
        for extra in extras:
            if extra in q.tensors:
                rep.fail("%s: the QINS file also has %s" % (name, extra))
        a32 = float(np.float32(alpha))
        if a32 != alpha:
            rep.fail("%s: alpha %r is not a float32 value" % (name, alpha))
        row_alphas, rowlen = None, 1
        if rows:
            # One alpha per row: a row is a run of the last dimension.
            nrows = 1
            for d in t.shape[:-1]:
                nrows *= d
            rowlen = t.shape[-1] if t.shape else 1
            at = q.tensors.get(name + ".alpha")
            if at is None or at.dtype != "F32" or tuple(at.shape) != (nrows,):
                rep.fail("%s: no NAME.alpha F32 [%d]" % (name, nrows))
                continue
            row_alphas = read_array(at, "<f4", 0, nrows).astype(np.float64)
            bad = np.flatnonzero(~np.isfinite(row_alphas) | ~(row_alphas > 0))
            if bad.size:
                rep.fail("%s: row %d's alpha %r is not a finite number above 0"
                         % (name, bad[0], row_alphas[bad[0]]), bad.size)
                continue
            least = float(row_alphas.min()) if nrows else 1.0
            if alpha != least:
                rep.fail("%s: alpha %r is not the least of its rows' alphas, %r" % (name, alpha, least))
            per_row += 1
        largest = rational_decode(np.uint8(128), row_alphas if rows else alpha)
        limit = FIRST_INFINITE.get(t.dtype, math.inf)
        if np.any(~(np.asarray(largest) < limit)):
            rep.fail("%s: the largest magnitude, code 128's, is not finite in %s" % (name, t.dtype))
        encoded[name] = alpha
        for first, n in chunks(t.numel):
            if rows:
                alpha = row_alphas[(first + np.arange(n)) // rowlen]
            w = source_values(t, first, n)
            if not np.isfinite(w).all():
                rep.fail("%s: NaN or infinity in the source" % where(t, first + np.flatnonzero(~np.isfinite(w))[0]))
                break
            ours = read_array(codes_t, np.uint8, first, n)
            ref = qins_encode(w, alpha)
            zero = w == 0
            zeros += int(zero.sum())
            want = ref.copy()
            want[zero & ~np.signbit(w)] = 255
            want[zero & np.signbit(w)] = 0
            if (ref[zero] != 128).any():
                rep.fail("%s: the reference encodes an exact zero to %d, not 128" % (name, ref[zero][0]))
            bad = np.flatnonzero(ours != want)
            if bad.size:
                i = bad[0]
                rep.fail("%s: code %d, the reference's %d (w=%r, alpha=%r; %d differ in this chunk)"
                         % (where(t, first + i), ours[i], ref[i], w[i], np.broadcast_to(alpha, w.shape)[i], bad.size), bad.size)
            # Zeros come back as zeros with the reference's own decoder,
            # and no weight changes sign.
            if (qins_decode(ours[zero], np.broadcast_to(alpha, w.shape)[zero]) != 0).any():
                rep.fail("%s: a zero does not decode to 0 with the reference's decoder" % name)
            dec = rational_decode(ours, alpha)
            flip = np.flatnonzero((w > 0) & (dec < 0) | (w < 0) & (dec > 0))
            if flip.size:
                rep.fail("%s: the weight changes sign" % where(t, first + flip[0]), flip.size)
            for path in restored:
                r = read_header(path).tensors.get(name)
                if r is None or r.dtype not in ("F32", "F64") or r.shape != t.shape:
                    rep.fail("%s: %s has no F32 or F64 %s of the source shape" % (name, path, name))
                    continue
                got = read_array(r, READ_DTYPE[r.dtype], first, n)
                exp = dec.astype(got.dtype)
                diff = np.flatnonzero(got.view("u%d" % got.itemsize) != exp.view("u%d" % got.itemsize))
                if diff.size:
                    i = diff[0]
                    rep.fail("%s: %s restores %r, the spec decodes code %d to %r"
                             % (where(t, first + i), path, got[i], ours[i], exp[i]), diff.size)
        elements += t.numel
    for name, t in sorted(src.tensors.items()):
        if name not in encoded and "qins:" + name not in q.metadata:
            check_copied(t, q, rep)
    line = ("%s -> %s: %d rational tensors (%d with an alpha per row), %d elements, %d exact zeros "
            "(the only codes that differ from the reference's), %d other differences: %s"
            % (source_arg, qins_path, len(encoded), per_row, elements, zeros, rep.failures,
               "OK" if not rep.failures else "FAILED"))
    if not encoded and any(t.dtype in FLOATS and len(t.shape) >= 2 for t in src.tensors.values()):
        rep.fail("no rational tensor, though the source has floating-point matrices")
    return line, rep


def run_groups(args, flag, check):
    """FLAG SOURCE QINSFILE [RESTORED ...] [-- SOURCE QINSFILE ...]: each
    group through check(source, qins, restored), its line and failures
    printed; 1 when any failed."""
    status = 0
    groups, cur = [], []
    for a in args + ["--"]:
        if a == "--":
            if cur:
                groups.append(cur)
            cur = []
        else:
            cur.append(a)
    for g in groups:
        if len(g) < 2:
            raise InputError("%s needs SOURCE QINSFILE" % flag)
        line, rep = check(g[0], g[1], g[2:])
        print(line, flush=True)
        for l in rep.lines:
            print("  " + l)
        if rep.failures:
            status = 1
    return status


def run_rational(args):
    """--rational SOURCE QINSFILE [RESTORED ...] [-- SOURCE QINSFILE ...]"""
    return run_groups(args, "--rational", check_rational_pair)


def reference_self_test():
    """The reference's arithmetic on chosen values: codes 0, 127, 128, 255."""
    w = np.array([0.0, -0.0, 1e-30, -1e-30, 1.0, -1.0, 3e38, -3e38], dtype=np.float32)
    ref = qins_encode(w, 1.0)
    assert list(ref) == [128, 128, 255, 0, 191, 64, 128, 128], list(ref)
    # In float32, 128/127.5 - 1 loses bits: code 128 decodes to 253.99614, not 254.
    assert abs(qins_decode(np.uint8(128), 1.0) - 254) < 0.01, qins_decode(np.uint8(128), 1.0)
    assert qins_decode(np.uint8(255), 1.0) == 0 and qins_decode(np.uint8(0), 1.0) == 0
    assert abs(rational_decode(np.uint8(128), 1.0) - 254) < 1e-9
    # The reference's sign flip: a huge negative weight rounds to 127.5,
    # then to 128, a positive code; qins clamps it to 127.


# ------------------------------------------------------------ the i8 layout
#
# QINS version 3: a tensor in the i8 layout of the log codec has "qins:NAME"
# {"log_min", "log_max", "dtype", "layout": "i8"} and optionally "range"
# ("minmax" or "mse"), one range per tensor, and one part, NAME.qins (I8, the
# source shape): 0 for an exact zero, else sign(w) * code7, code7 =
# round(127 - 126 (ln|w| - log_min) / (log_max - log_min)) clamped to
# [1, 127], 127 for 0 < |w| <= 1e-8; -128 is invalid. Decoding: sign(c) *
# exp(log_min + (127 - |c|) / 126 (log_max - log_min)) in float64, 0 for 0.

def i8_expected(w, lo, hi):
    """(codes, unrounded code7) of float64 values w with a range, from the
    spec's formula."""
    a = np.abs(w)
    with np.errstate(divide="ignore", invalid="ignore"):
        lnw = np.log(a)
        if hi > lo:
            t = 127.0 - 126.0 * (lnw - lo) / (hi - lo)
            c7 = np.clip(np.rint(t), 1, 127)
        else:
            t = np.ones_like(a)
            c7 = np.ones_like(a)
    c7 = np.where(a > SIGNIFICANT, c7, 127)
    return np.where(w == 0, 0, np.sign(w) * c7).astype(np.int8), t


def i8_decode(c, lo, hi):
    """The spec's decoding of i8 codes, in float64."""
    c = np.asarray(c).astype(np.float64)
    mag = np.exp(lo + (127.0 - np.abs(c)) / 126.0 * (hi - lo))
    return np.where(c == 0, 0.0, np.sign(c) * mag)


def within_ulps(got, exp, ulps):
    """Elements of got (F32 or F64) more than ulps units in the last place
    from exp (two libms' exp may differ by an ulp)."""
    return np.abs(got.astype(np.float64) - exp.astype(np.float64)) > ulps * np.spacing(np.abs(exp)).astype(np.float64)


def check_i8_pair(source_arg, qins_path, restored=()):
    """Check a version-3 file of i8 tensors against its source, and each
    RESTORED F32 or F64 file against the spec's decoding. Returns (summary
    line, Report)."""
    src = open_source(source_arg)
    q = read_header(qins_path)
    rep = Report()
    want = "3" if any(k.startswith("qins:") for k in q.metadata) else "1"
    if q.metadata.get("qins") != want:
        rep.fail("__metadata__[\"qins\"] is %r, want %r" % (q.metadata.get("qins"), want))
    check_layout(q, rep)
    encoded, elements, mse, off, rows = {}, 0, 0, 0, 0
    for k, v in sorted(q.metadata.items()):
        if not k.startswith("qins:"):
            continue
        name = k[5:]
        try:
            meta = json.loads(v, object_pairs_hook=_no_duplicates)
        except (ValueError, InputError) as e:
            rep.fail("%s: qins metadata %r is not JSON: %s" % (name, v, e))
            continue
        if not isinstance(meta, dict) or not {"log_min", "log_max", "dtype", "layout"} <= set(meta) or \
                set(meta) - {"log_min", "log_max", "dtype", "layout", "range", "granularity"} or meta["layout"] != "i8" or \
                meta.get("range", "minmax") not in RANGES or meta.get("granularity", "tensor") not in GRANULARITIES:
            rep.fail("%s: qins metadata %r is not log_min, log_max, dtype, layout i8 and optionally range and granularity" % (name, v))
            continue
        lo_s, hi_s = meta["log_min"], meta["log_max"]
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in (lo_s, hi_s)) \
                or lo_s > hi_s:
            rep.fail("%s: bad log_min/log_max %r %r" % (name, lo_s, hi_s))
            continue
        lo_s, hi_s = float(lo_s), float(hi_s)
        t = src.tensors.get(name)
        if t is None or t.dtype not in FLOATS or meta["dtype"] != t.dtype:
            rep.fail("%s: no floating source tensor of dtype %r" % (name, meta["dtype"]))
            continue
        codes_t = q.tensors.get(name + ".qins")
        if codes_t is None or codes_t.dtype != "I8" or codes_t.shape != t.shape:
            rep.fail("%s: no NAME.qins I8 of the source shape" % name)
            continue
        per_row = meta.get("granularity", "tensor") == "row"
        for extra in (name, name + ".sign", name + ".signbits") + (() if per_row else (name + ".logrange",)):
            if extra in q.tensors:
                rep.fail("%s: the QINS file also has %s" % (name, extra))
        if per_row:
            range_ = meta.get("range", "minmax")
            mse += range_ == "mse"
            encoded[name] = meta
            rows += 1
            off += check_i8_rows(t, q, codes_t, range_, (lo_s, hi_s), restored, rep)
            elements += t.numel
            continue
        # This script's min/max range, from the source.
        smin, smax, largest = None, None, 0.0
        for first, n in chunks(t.numel):
            w = source_values(t, first, n)
            if not np.isfinite(w).all():
                rep.fail("%s: NaN or infinity in the source" % where(t, first + np.flatnonzero(~np.isfinite(w))[0]))
                break
            a = np.abs(w)
            sig = a[a > SIGNIFICANT]
            if sig.size:
                smin = sig.min() if smin is None else min(smin, sig.min())
                smax = sig.max() if smax is None else max(smax, sig.max())
            if a.size:
                largest = max(largest, float(a.max()))
        else:
            lo, hi, _ = log_range(smin, smax, largest)
            range_ = meta.get("range", "minmax")
            if range_ == "mse":
                mse += 1
                if not close(hi, hi_s):
                    rep.fail("%s: log_max %r, expected %r" % (name, hi_s, hi))
                if not check_mse_log_min(name, lo, hi, lo_s, hi_s, rep):
                    continue
                elo, ehi = lo_s, hi_s       # codes from the stored range, clamping below log_min
            else:
                for what, mine, theirs in (("log_min", lo, lo_s), ("log_max", hi, hi_s)):
                    if not close(mine, theirs):
                        rep.fail("%s: %s %r, expected %r" % (name, what, theirs, mine))
                elo, ehi = lo, hi           # codes recomputed exactly from the source
            encoded[name] = meta
            bound = (hi_s - lo_s) / 252 + 1e-6
            step = (hi_s - lo_s) / 126
            for first, n in chunks(t.numel):
                w = source_values(t, first, n)
                ours = read_array(codes_t, "i1", first, n)
                bad = np.flatnonzero(ours == -128)
                if bad.size:
                    rep.fail("%s: code -128, which is invalid" % where(t, first + bad[0]), bad.size)
                    continue
                exp, unrounded = i8_expected(w, elo, ehi)
                diff = np.flatnonzero(ours != exp)
                with np.errstate(invalid="ignore"):
                    tie = (np.abs(ours[diff].astype(np.int16) - exp[diff]) == 1) & (np.sign(ours[diff]) == np.sign(exp[diff])) & \
                        (np.abs(np.abs(ours[diff].astype(np.float64)) - unrounded[diff]) <= 0.5 + TIE_EPS) & \
                        (np.abs(w[diff]) > SIGNIFICANT)
                rep.ties += int(tie.sum())
                wrong = diff[~tie]
                off += wrong.size
                if wrong.size:
                    i = wrong[0]
                    rep.fail("%s: code %d, expected %d (unrounded %.12f, value %r); %d such codes in this chunk"
                             % (where(t, first + i), ours[i], exp[i], unrounded[i], w[i], wrong.size), wrong.size)
                dec = i8_decode(ours, lo_s, hi_s)
                zero = w == 0
                if (dec[zero] != 0).any():
                    rep.fail("%s: an exact zero does not decode to 0" % where(t, first + int(np.flatnonzero(zero & (dec != 0))[0])))
                flip = np.flatnonzero((w > 0) & (dec < 0) | (w < 0) & (dec > 0))
                if flip.size:
                    rep.fail("%s: the weight changes sign" % where(t, first + flip[0]), flip.size)
                over = np.flatnonzero(np.abs(dec) > largest * (1 + 1e-13))
                if over.size:
                    rep.fail("%s: decodes to %r, above the largest magnitude %r" % (where(t, first + over[0]), dec[over[0]], largest))
                a = np.abs(w)
                s = a > SIGNIFICANT
                with np.errstate(divide="ignore", invalid="ignore"):
                    lnw = np.log(a)
                    err = np.abs(np.log(np.abs(dec)) - lnw)
                below = s & (lnw < lo_s) if range_ == "mse" else np.zeros(n, bool)
                limit = bound + np.where(np.isin(np.arange(n), diff[tie]), step, 0)
                far = np.where(below, np.abs(dec) != np.exp(lo_s), s & (err > limit))
                if far.any():
                    i = int(np.flatnonzero(far)[0])
                    rep.fail("%s: value %r decodes to %r (|ln| error %.3g > %.3g)" % (where(t, first + i), w[i], dec[i], err[i], bound), int(far.sum()))
                for path in restored:
                    r = read_header(path).tensors.get(name)
                    if r is None or r.dtype not in ("F32", "F64") or r.shape != t.shape:
                        rep.fail("%s: %s has no F32 or F64 %s of the source shape" % (name, path, name))
                        continue
                    got = read_array(r, READ_DTYPE[r.dtype], first, n)
                    # Two libms' exp, and the rounding of its argument (up to
                    # |log_min| ~ 30), may differ by some ulps of float64: F64
                    # restores agree within 64 ulps, F32 within 1.
                    ulps = 64 if r.dtype == "F64" else 1
                    far = np.flatnonzero(within_ulps(got, dec.astype(got.dtype), ulps) | (np.signbit(got) != np.signbit(dec)) & (dec != 0))
                    if far.size:
                        i = far[0]
                        rep.fail("%s: %s restores %r, the spec decodes code %d to %r"
                                 % (where(t, first + i), path, got[i], ours[i], dec[i]), far.size)
            elements += t.numel
    for name, t in sorted(src.tensors.items()):
        if name not in encoded and "qins:" + name not in q.metadata:
            check_copied(t, q, rep)
    line = ("%s -> %s: %d i8 tensors (%d range mse, %d per row), %d elements, %d codes differ at rounding ties, "
            "%d codes off, %d other differences: %s"
            % (source_arg, qins_path, len(encoded), mse, rows, elements, rep.ties, off, rep.failures - off,
               "OK" if not rep.failures else "FAILED"))
    if not encoded and any(t.dtype in FLOATS and len(t.shape) >= 2 for t in src.tensors.values()):
        rep.fail("no i8 tensor, though the source has floating-point matrices")
    return line, rep


def i8_expected_rows(w, lo, hi):
    """i8_expected with per-element log_min and log_max arrays."""
    a = np.abs(w)
    with np.errstate(divide="ignore", invalid="ignore"):
        lnw = np.log(a)
        span = hi - lo
        t = np.where(span > 0, 127.0 - 126.0 * (lnw - lo) / np.where(span > 0, span, 1), 1.0)
        c7 = np.clip(np.rint(t), 1, 127)
    c7 = np.where(a > SIGNIFICANT, c7, 127)
    return np.where(w == 0, 0, np.sign(w) * c7).astype(np.int8), t


def check_i8_rows(t, q, codes_t, range_, envelope, restored, rep):
    """An i8 tensor with one range per row (granularity "row"): NAME.logrange
    is F32 [rows, 2], each row's range stored as the 8-bit per-row files
    store theirs: the row's min/max range with log_max rounded down to
    float32 and log_min to nearest (range mse: log_max the same, log_min in
    [the min/max log_min, log_max]); the envelope in "qins:NAME" is the
    smallest log_min and largest log_max. Codes are recomputed from the
    source with this script's row range (minmax) or with the stored one
    (mse), ties by one; decoded with each row's stored range, zeros stay 0,
    no weight changes sign, nothing exceeds its row's largest magnitude,
    the log error is within half a code step (mse: below log_min exactly
    exp(log_min)); RESTORED files hold the decoded values (F32 1 ulp, F64
    64). Returns the number of codes off."""
    off = 0
    rowlen = t.shape[-1] if t.shape else 1
    nrows = int(np.prod(t.shape[:-1])) if t.shape else 1
    rt = q.tensors.get(t.name + ".logrange")
    if rt is None:
        rep.fail("%s: granularity row but no F32 tensor %s.logrange" % (t.name, t.name))
        return off
    if rt.dtype != "F32" or list(rt.shape) != [nrows, 2]:
        rep.fail("%s: %s is %s %s, want F32 %s" % (t.name, rt.name, rt.dtype, list(rt.shape), [nrows, 2]))
        return off
    if rowlen == 0:
        st = read_array(rt, "<f4", 0, 2 * nrows) if nrows else np.zeros(0)
        if st.any():
            rep.fail("%s: a row of no elements has a range other than (0, 0)" % t.name)
        if nrows and tuple(envelope) != (0.0, 0.0):
            rep.fail("%s: qins metadata log_min/log_max %r, the rows' envelope is (0, 0)" % (t.name, envelope))
        return off
    restored_t = []
    for path in restored:
        r = read_header(path).tensors.get(t.name)
        if r is None or r.dtype not in ("F32", "F64") or r.shape != t.shape:
            rep.fail("%s: %s has no F32 or F64 %s of the source shape" % (t.name, path, t.name))
            continue
        restored_t.append((path, r))
    per = max(1, CHUNK // rowlen)
    env_lo, env_hi = np.inf, -np.inf
    for r0 in range(0, nrows, per):
        nr = min(per, nrows - r0)
        first, n = r0 * rowlen, nr * rowlen
        w = source_values(t, first, n)
        if not np.isfinite(w).all():
            rep.fail("%s: NaN or infinity in the source" % where(t, first + int(np.flatnonzero(~np.isfinite(w))[0])))
            return off
        a = np.abs(w).reshape(nr, rowlen)
        mm_lo, mm_hi, largest = minmax_row_ranges(a)
        st = read_array(rt, "<f4", 2 * r0, 2 * nr).astype(np.float64).reshape(nr, 2)
        lo_s, hi_s = st[:, 0], st[:, 1]
        env_lo, env_hi = min(env_lo, lo_s.min()), max(env_hi, hi_s.max())
        ulp_hi = np.spacing(np.float32(np.abs(mm_hi)) + np.float32(1e-30)).astype(np.float64)
        bad = np.flatnonzero(~(np.abs(hi_s - mm_hi) <= ulp_hi))
        if bad.size:
            i = int(bad[0])
            rep.fail("%s: row %d log_max %r, expected %r (%d rows)" % (t.name, r0 + i, hi_s[i], mm_hi[i], bad.size))
            return off
        ulp_lo = np.spacing(np.float32(np.abs(mm_lo) + 1e-30)).astype(np.float64)
        if range_ == "mse":
            one = mm_lo == mm_hi
            bad = np.flatnonzero(~((lo_s >= mm_lo - ulp_lo) & (lo_s <= hi_s)) | one & (lo_s != hi_s))
            if bad.size:
                i = int(bad[0])
                rep.fail("%s: row %d mse log_min %r outside [%r, %r]" % (t.name, r0 + i, lo_s[i], mm_lo[i], hi_s[i]))
                return off
            clo, chi = lo_s, hi_s           # codes from the stored range
        else:
            bad = np.flatnonzero(~(np.abs(lo_s - mm_lo) <= ulp_lo))
            if bad.size:
                i = int(bad[0])
                rep.fail("%s: row %d log_min %r, expected %r" % (t.name, r0 + i, lo_s[i], mm_lo[i]))
                return off
            clo, chi = mm_lo, mm_hi         # codes recomputed from the source
        elo, ehi = np.repeat(lo_s, rowlen), np.repeat(hi_s, rowlen)
        exp, unrounded = i8_expected_rows(w, np.repeat(clo, rowlen), np.repeat(chi, rowlen))
        ours = read_array(codes_t, "i1", first, n)
        bad = np.flatnonzero(ours == -128)
        if bad.size:
            rep.fail("%s: code -128, which is invalid" % where(t, first + int(bad[0])), bad.size)
            continue
        diff = np.flatnonzero(ours != exp)
        with np.errstate(invalid="ignore"):
            tie = (np.abs(ours[diff].astype(np.int16) - exp[diff]) == 1) & (np.sign(ours[diff]) == np.sign(exp[diff])) & \
                (np.abs(np.abs(ours[diff].astype(np.float64)) - unrounded[diff]) <= 0.5 + TIE_EPS) & \
                (np.abs(w[diff]) > SIGNIFICANT)
        rep.ties += int(tie.sum())
        wrong = diff[~tie]
        off += wrong.size
        if wrong.size:
            i = int(wrong[0])
            rep.fail("%s: code %d, expected %d (unrounded %.12f, value %r, row range %r %r); %d such codes in this chunk"
                     % (where(t, first + i), ours[i], exp[i], unrounded[i], w[i], elo[i], ehi[i], wrong.size), wrong.size)
        dec = np.where(ours == 0, 0.0, np.sign(ours) * np.exp(elo + (127.0 - np.abs(ours.astype(np.float64))) / 126.0 * (ehi - elo)))
        zero = w == 0
        if (dec[zero] != 0).any():
            rep.fail("%s: an exact zero does not decode to 0" % where(t, first + int(np.flatnonzero(zero & (dec != 0))[0])))
        flip = np.flatnonzero((w > 0) & (dec < 0) | (w < 0) & (dec > 0))
        if flip.size:
            rep.fail("%s: the weight changes sign" % where(t, first + int(flip[0])), flip.size)
        over = np.flatnonzero(np.abs(dec) > np.repeat(largest, rowlen) * (1 + 1e-13))
        if over.size:
            rep.fail("%s: decodes to %r, above its row's largest magnitude" % (where(t, first + int(over[0])), dec[over[0]]))
        av = a.reshape(-1)
        s = av > SIGNIFICANT
        with np.errstate(divide="ignore", invalid="ignore"):
            lnw = np.log(av)
            err = np.abs(np.log(np.abs(dec)) - lnw)
        below = s & (lnw < elo) if range_ == "mse" else np.zeros(n, bool)
        limit = (ehi - elo) / 252 + 1e-6 + np.where(np.isin(np.arange(n), diff[tie]), (ehi - elo) / 126, 0)
        far = np.where(below, np.abs(dec) != np.exp(elo), s & (err > limit))
        if far.any():
            i = int(np.flatnonzero(far)[0])
            rep.fail("%s: value %r decodes to %r (row range %r %r)" % (where(t, first + i), w[i], dec[i], elo[i], ehi[i]), int(far.sum()))
        for path, r in restored_t:
            got = read_array(r, READ_DTYPE[r.dtype], first, n)
            ulps = 64 if r.dtype == "F64" else 1
            far = np.flatnonzero(within_ulps(got, dec.astype(got.dtype), ulps) | (np.signbit(got) != np.signbit(dec)) & (dec != 0))
            if far.size:
                i = int(far[0])
                rep.fail("%s: %s restores %r, the spec decodes code %d with its row's range to %r"
                         % (where(t, first + i), path, got[i], ours[i], dec[i]), far.size)
    if nrows and (envelope[0] != env_lo or envelope[1] != env_hi):
        rep.fail("%s: qins metadata log_min/log_max %r, the rows' envelope is %r" % (t.name, envelope, (env_lo, env_hi)))
    return off


def run_i8(args):
    """--i8 SOURCE QINSFILE [RESTORED ...] [-- SOURCE QINSFILE ...]"""
    return run_groups(args, "--i8", check_i8_pair)


def i8_self_test():
    """The formula on chosen values: codes 0, +-1, +-127, -128's absence."""
    lo, hi = math.log(0.001), math.log(2.0)
    w = np.array([0.0, -0.0, 2.0, -2.0, 0.001, -0.001, 1e-9, -1e-9, 5.0], dtype=np.float64)
    codes, _ = i8_expected(w, lo, hi)
    assert list(codes) == [0, 0, 1, -1, 127, -127, 127, -127, 1], list(codes)
    dec = i8_decode(np.array([0, 1, -1, 127, -127], np.int8), lo, hi)
    assert dec[0] == 0 and abs(dec[1] - 2) < 1e-12 and abs(dec[2] + 2) < 1e-12
    assert abs(dec[3] - 0.001) < 1e-15 and abs(dec[4] + 0.001) < 1e-15


# --------------------------------------------------------------- self-test

def corruptions(qins_path, source_arg=None):
    """(description, tensor name, patch function[, text the failure line must
    also contain]) for a few deliberate defects; source_arg gives the
    min/max log_min for the range mse one."""
    q = read_header(qins_path)
    layouts = {k[5:]: declared_layout(v) for k, v in q.metadata.items()
               if k.startswith("qins:")}
    parts = {name + suffix for name, layout in layouts.items()
             for suffix in (".qins", sign_part(layout), ".logrange")}
    per_row = {k[5:] for k, v in q.metadata.items()
               if k.startswith("qins:") and declared_granularity(v) == "row"}
    enc = sorted(name for name, layout in layouts.items()
                 if q.tensors.get(name + ".qins") is not None
                 and q.tensors.get(name + sign_part(layout)) is not None
                 and q.tensors[name + ".qins"].numel)
    copied = sorted(n for n, t in q.tensors.items() if t.nbytes and n not in parts)
    out = []
    for name in enc[len(enc) // 2:] + enc[:len(enc) // 2]:
        codes_t, signs_t = q.tensors[name + ".qins"], q.tensors[name + sign_part(layouts[name])]
        codes = read_array(codes_t, "u1", 0, codes_t.numel)
        if layouts[name] == "packed":
            bits = read_array(signs_t, "u1", 0, signs_t.numel)
            nonzero = np.flatnonzero(codes != 0)
        else:
            signs = read_array(signs_t, "i1", 0, signs_t.numel)
            nonzero = np.flatnonzero(signs != 0)
        room = np.flatnonzero(codes <= 253)
        if not (room.size and nonzero.size):
            continue
        i, j = int(room[room.size // 2]), int(nonzero[0])
        out.append(("code +2 at %s[%d]" % (name, i), name,
                    _poke(codes_t.start + i, bytes([codes[i] + 2]))))
        if layouts[name] == "packed":
            out.append(("sign bit flipped at %s[%d]" % (name, j), name,
                        _poke(signs_t.start + j // 8, bytes([bits[j // 8] ^ (1 << j % 8)]))))
        else:
            out.append(("sign flipped at %s[%d]" % (name, j), name,
                        _poke(signs_t.start + j, np.int8(-signs[j]).tobytes())))
        out.append(("log_min digit changed for %s" % name, name,
                    _log_min_edit(name)))
        break
    packed = [n for n in enc[len(enc) // 2:] + enc[:len(enc) // 2]
              if layouts[n] == "packed"]
    if packed:
        out += _packed_corruptions(q, packed)
    mse = [n for n in enc[len(enc) // 2:] + enc[:len(enc) // 2]
           if declared_range(q.metadata["qins:" + n]) == "mse" and n not in per_row]
    ranged = [n for n in enc if n in per_row and q.tensors.get(n + ".logrange") is not None
              and q.tensors[n + ".logrange"].nbytes]
    if ranged:
        rt = q.tensors[ranged[len(ranged) // 2] + ".logrange"]
        byte = read_bytes(rt, 7, 1)[0]
        out.append(("exponent bit of row 0's log_max in %s flipped" % rt.name, ranged[len(ranged) // 2],
                    _poke(rt.start + 7, bytes([byte ^ 1])), "log_max"))
    if mse and source_arg is not None:
        out += _mse_corruption(source_arg, q, mse[0])
    if copied:
        name = copied[len(copied) // 2]
        t = q.tensors[name]
        byte = read_bytes(t, t.nbytes - 1, 1)[0]
        out.append(("last byte of copied %s xor 0x01" % name, name,
                    _poke(t.start + t.nbytes - 1, bytes([byte ^ 1]))))
    v = q.metadata.get("qins", "1")
    w = "1" if v == "2" else "2"
    out.append(('__metadata__["qins"] set to "%s"' % w, "qins", _header_edit(
        ('"qins":"%s"' % v).encode(), ('"qins":"%s"' % w).encode())))
    return out


def _packed_corruptions(q, names):
    """An exact zero's code 0 set to 255 and its sign bit set, and a padding
    bit set, in the first packed tensors that have them."""
    out = []
    for name in names:
        codes_t, bits_t = q.tensors[name + ".qins"], q.tensors[name + ".signbits"]
        for first, n in chunks(codes_t.numel):
            zero = np.flatnonzero(read_array(codes_t, "u1", first, n) == 0)
            if zero.size:
                z = first + int(zero[zero.size // 2])
                byte = read_bytes(bits_t, z // 8, 1)[0]
                out.append(("code of the exact zero %s[%d] set to 255" % (name, z), name,
                            _poke(codes_t.start + z, bytes([255]))))
                out.append(("sign bit of the exact zero %s[%d] set" % (name, z), name,
                            _poke(bits_t.start + z // 8, bytes([byte | 1 << z % 8]))))
                break
        if out:
            break
    else:
        print("note: no exact zero (code 0) in the packed tensors: "
              "zero corruptions skipped")
    for name in names:
        codes_t, bits_t = q.tensors[name + ".qins"], q.tensors[name + ".signbits"]
        if codes_t.numel % 8:
            byte = read_bytes(bits_t, bits_t.nbytes - 1, 1)[0]
            out.append(("padding bit 7 of %s's last byte set" % bits_t.name, name,
                        _poke(bits_t.start + bits_t.nbytes - 1, bytes([byte | 0x80]))))
            break
    return out


def _mse_corruption(source_arg, q, name):
    """log_min of the range mse tensor `name` set to 1 below the min/max
    log_min of its source tensor (so still finite and below log_max)."""
    t = open_source(source_arg).tensors.get(name)
    if t is None or t.dtype not in FLOATS:
        return []
    encoder = (PatternEncoder if t.dtype in ("F16", "BF16") else FloatEncoder)(t, Report())
    if encoder.range is None:
        return []
    new = encoder.range[0] - 1.0
    return [("range mse log_min of %s set to %r, below the min/max log_min %r"
             % (name, new, encoder.range[0]), name, _log_min_set(name, new),
             "below the min/max log_min")]


def _log_min_set(name, value):
    """Replace log_min of `name` by repr(value) (shortest form), re-padding
    the header with spaces to a length that keeps every tensor's alignment
    (the old length plus a multiple of 8), then the data unchanged."""
    def patch(path):
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            raw = f.read(n)
            key = raw.find(json.dumps("qins:" + name).encode())
            assert key >= 0, "cannot find the metadata of %r" % name
            at = raw.find(b"log_min", key)
            while at < len(raw) and raw[at:at + 1] not in b"-0123456789":
                at += 1
            end = at
            while raw[end:end + 1] and raw[end:end + 1] in b"+-.0123456789eE":
                end += 1
            new = raw[:at] + repr(float(value)).encode() + raw[end:]
            new = new.rstrip(b" ")
            m = n + 8 * max(0, -(-(len(new) - n) // 8))
            new += b" " * (m - len(new))
            tmp = path + ".tmp"
            with open(tmp, "wb") as out:
                out.write(struct.pack("<Q", m) + new)
                shutil.copyfileobj(f, out, COPY_CHUNK)
        os.replace(tmp, path)
    return patch


def _poke(offset, data):
    def patch(path):
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(data)
    return patch


def _header_edit(old, new):
    def patch(path):
        with open(path, "r+b") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            raw = f.read(n)
            at = raw.find(old)
            assert at >= 0 and len(old) == len(new), "cannot edit the header"
            f.seek(8 + at)
            f.write(new)
    return patch


def _log_min_edit(name):
    """Change the first digit of log_min for `name`, keeping the header length."""
    def patch(path):
        with open(path, "r+b") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            raw = f.read(n)
            key = raw.find(json.dumps("qins:" + name).encode())
            assert key >= 0, "cannot find the metadata of %r" % name
            at = raw.find(b"log_min", key)
            while not raw[at:at + 1].isdigit():
                at += 1
            digit = int(raw[at:at + 1])
            f.seek(8 + at)
            f.write(str(digit % 9 + 1).encode())
    return patch


def self_test(source_arg, qins_path):
    """The pristine pair must pass and each corrupted copy must fail."""
    counts, rep = check_pair(source_arg, qins_path)
    print("pristine: " + summary(source_arg, qins_path, counts, rep))
    ok = rep.failures == 0
    tmp = tempfile.mkdtemp(prefix="qins-parity-")
    try:
        for what, name, patch, *must in corruptions(qins_path, source_arg):
            copy = os.path.join(tmp, "corrupt.qins.safetensors")
            shutil.copyfile(qins_path, copy)
            patch(copy)
            _, rep = check_pair(source_arg, copy)
            caught = rep.failures > 0 and any(
                name in line and all(text in line for text in must) for line in rep.lines)
            ok &= caught
            print("%s: %s" % (what, "caught" if caught else "NOT CAUGHT"))
            for line in rep.lines[:3]:
                print("  " + line)
    finally:
        shutil.rmtree(tmp)
    print("self-test " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


def main(argv):
    try:
        if argv[:1] == ["--self-test"] and len(argv) == 3:
            return self_test(argv[1], argv[2])
        if argv[:1] == ["--rational"]:
            reference_self_test()
            return run_rational(argv[1:])
        if argv[:1] == ["--i8"]:
            i8_self_test()
            return run_i8(argv[1:])
        if not argv or len(argv) % 2 or argv[0].startswith("-"):
            sys.stderr.write("usage:\n" + __doc__.split("\n\n")[1] + "\n")
            return 2
        return run_pairs(argv)
    except InputError as e:
        sys.stderr.write("parity: %s\n" % e)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
