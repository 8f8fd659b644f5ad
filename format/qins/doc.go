// Package qins is the home of the QINS file format, versions 1, 2, 3 and
// 4, described here. The codec that makes the codes and ranges (the formulas,
// the range methods, zeros) is described in package
// github.com/qins-dev/qins/quant.
//
// # The container
//
// A QINS file is a safetensors file: an 8-byte little-endian header length
// N, N bytes of JSON header (padded with spaces), then the tensor data. Any
// safetensors reader opens it. __metadata__["qins"] is the format version,
// "1", "2", "3" or "4". Every tensor that is not encoded is stored unchanged under its
// own name, dtype and bytes, and the source's own __metadata__ entries (such
// as "format": "pt") are kept. Tensors are laid out largest element size
// first, so every tensor's data is aligned to its element size.
//
// A tensor is encoded exactly when __metadata__ holds "qins:NAME" for it:
// any other tensor is stored unchanged, whatever its name or dtype (a U8
// tensor "vocab.qins" of the source is just that, and so is a tensor
// "NAME.sign" beside a NAME whose encoding has no sign part).
//
// # Layout u8+i8 (the default of the metadata)
//
// Written by qins convert --reference (or --layout u8+i8). For each encoded
// source tensor NAME:
//
//   - tensor NAME.qins: U8, the source shape: the codes, 1..255;
//   - tensor NAME.sign: I8, the source shape: -1, 0 or +1;
//   - __metadata__["qins:NAME"]: a JSON object as a string,
//     {"log_min": <number>, "log_max": <number>, "dtype": "<source dtype>"},
//     the numbers written in the shortest form that reads back to the same
//     float64. The source dtype is F16, BF16, F32 or F64.
//
// An encoded tensor takes 2 bytes per element (half of F32, the same as
// BF16).
//
// # Layout packed
//
// Written by qins convert by default (--layout packed); 1.125 bytes per
// element:
//
//   - tensor NAME.qins: U8, the source shape: the codes, 1..255, and 0 for
//     an exact zero;
//   - tensor NAME.signbits: U8, shape [ceil(n/8)] for n elements: bit i
//     (least significant bit first within each byte, elements in row-major
//     order) is 1 when element i is negative and not zero; the bits of exact
//     zeros (+0 and -0) and the padding bits of the last byte are 0;
//   - __metadata__["qins:NAME"]: as above, plus "layout": "packed" (absent,
//     or "u8+i8", means the default layout).
//
// A code 0 (packed only) decodes to exactly 0, whatever log_min and log_max
// are. Both layouts decode to the same values, bit for bit.
//
// # The range method
//
// Either layout may carry "range": "mse" in qins:NAME (absent, or "minmax",
// means the formula's min/max range): log_max is the maximum of ln|w| and
// log_min was chosen within [min ln|w|, log_max] for the least squared
// error. The codes are the formula's with that log_min, and decoding is
// unchanged, so every decoder reads such files.
//
// # Version 2: one range per row
//
// qins convert writes by default (--granularity row), for each encoded
// tensor NAME, besides its codes and signs:
//
//   - tensor NAME.logrange: F32, shape [rows, 2], rows being the product of
//     all dimensions but the last (1 for a vector or a scalar): (log_min,
//     log_max) of each row, a row being a run of the last dimension
//     (elements r*L .. r*L+L-1 in row-major order, L the last dimension);
//     a row of no elements (L = 0) has the range (0, 0), as a row of zeros;
//   - __metadata__["qins:NAME"]: as in version 1, plus "granularity": "row"
//     (absent, or "tensor", means one range per tensor); its log_min and
//     log_max are then the smallest log_min and the largest log_max of the
//     rows, for information.
//
// The file's __metadata__["qins"] is then "2", so that a version-1 reader
// refuses it instead of decoding it with the wrong range. Version 2 is
// version 1 plus this; a version-2 file may mix per-row and per-tensor
// tensors (qins writes one or the other for all). The version is the
// least that describes the checkpoint: qins writes "2" exactly when at
// least one encoded tensor of the checkpoint has per-row ranges (an empty
// one included), and "1" otherwise, even with --granularity row (a
// checkpoint of integers only, or one whose tensors are all excluded), so
// that a version-1 reader reads it. The version is the whole checkpoint's:
// every shard of a folder carries it, including a shard that holds no
// per-row tensor. Readers accept a version-2 file without per-row tensors.
// Each row's range is
// stored in float32 as package quant describes (log_max rounded down,
// log_min to nearest but not above log_max), and its codes are the
// formula's with the stored values read back as float64; decoding is the
// same formula with them.
//
// # Version 3: the rational codec
//
// qins convert --codec rational writes, for each encoded tensor NAME:
//
//   - tensor NAME.qins: U8, the source shape: the codes, 0..255, the sign
//     inside (package quant describes the code); no other part (no NAME.sign,
//     NAME.signbits or NAME.logrange);
//   - __metadata__["qins:NAME"]: exactly {"codec": "rational", "alpha": <number>,
//     "dtype": "<source dtype>"}, alpha in the shortest form that reads back to
//     the same float64 (qins writes float32 values), finite and above 0.
//
// One byte per weight. The file's __metadata__["qins"] is then "3", so that
// readers of versions 1 and 2 refuse it. Version 3 is version 2 plus this: a
// "codec" key absent, or "log", means the log codec of versions 1 and 2, with
// its keys; files that use only the log codec keep version "1" or "2" and are
// unchanged. Decoding, in float64 and rounded once to the output dtype:
//
//	z = code/127.5 - 1
//	w' = sign(z) * (1 - |z|) / (alpha * |z|)
//
// so code 255 decodes to +0, code 0 to -0, and codes 128 and 127 to the
// largest magnitudes, about ±254/alpha.
//
// # Version 4: the rational codec with one alpha per row
//
// qins convert --codec rational --granularity row writes, for each encoded
// tensor NAME:
//
//   - tensor NAME.qins: U8, the source shape: the codes, as in version 3,
//     each row's with that row's alpha;
//   - tensor NAME.alpha: F32, shape [rows], rows being the product of all
//     dimensions but the last (1 for a vector or a scalar): each row's
//     alpha, a row being a run of the last dimension as for per-row ranges;
//     a row of no elements (L = 0) has alpha 1;
//   - __metadata__["qins:NAME"]: exactly {"codec": "rational", "alpha": <number>,
//     "dtype": "<source dtype>", "granularity": "row"}, alpha the least of
//     the rows' alphas (1 for a tensor of no rows): the alpha of the largest
//     magnitude any row decodes to.
//
// Each row's alpha is chosen for the least squared error of that row (see
// package quant). One byte per weight and 4 bytes per row. The file's
// __metadata__["qins"] is then "4", so that readers of versions 1 to 3
// refuse it. Version 4 is version 3 plus this; qins writes "4" exactly
// when at least one encoded tensor has one alpha per row (an empty one
// included), and files without such tensors keep their versions and bytes.
// Decoding is version 3's with each row's alpha.
//
// # Version 3: the i8 layout
//
// qins convert --layout i8 writes the log codec's i8 form (package quant
// describes it: a 7-bit log code, 127 levels), for each encoded tensor NAME:
//
//   - tensor NAME.qins: I8, the source shape: 0 for an exact zero, else
//     sign(w) * code7 with code7 in 1..127; -128 is invalid. No sign part
//     (no NAME.sign or NAME.signbits);
//   - __metadata__["qins:NAME"]: as in version 1 plus "layout": "i8"
//     (and "range": "mse" for the mse range), one range per tensor;
//   - with --granularity row, "granularity": "row" in "qins:NAME" too,
//     whose log_min and log_max are then the rows' envelope, and
//     NAME.logrange, F32 [rows, 2], each row's (log_min, log_max) stored
//     exactly as in version 2 (the row's min/max range, log_max rounded
//     down to float32, log_min to nearest; with "range": "mse", log_min
//     chosen for the row's least squared error with 127 levels). Each
//     row's codes are the formula's with its row's stored range.
//
// One byte per weight, and the file's __metadata__["qins"] is "3", so that
// readers of versions 1 and 2 refuse it; files without i8 or rational
// tensors keep their versions and bytes. Decoding, in float64 and rounded
// once to the output dtype:
//
//	w' = sign(c) * exp(log_min + (127 - |c|) / 126 * (log_max - log_min))
//
// and exactly +0 for c = 0.
//
// # What readers check
//
// Every file is untrusted. Besides the strict safetensors header checks
// (length within the file and the 100 MB limit, no duplicate key anywhere,
// valid UTF-8, known dtypes, sizes that match the shapes, offsets that tile
// the data), a QINS reader refuses, naming the file and the tensor:
//
//   - a version other than "1", "2", "3" or "4", a per-row tensor in a
//     version-1 file, a rational or i8 tensor in a file of version 1 or 2,
//     and a rational tensor with one alpha per row in a file of version 1, 2
//     or 3;
//   - a qins:NAME that is not exactly a JSON object with the keys log_min,
//     log_max, dtype, layout, range, granularity and codec ("log"), in lower case, each at
//     most once, the first three required; numbers outside float64's range;
//     a dtype other than F16, BF16, F32 or F64;
//   - for the rational codec, a qins:NAME that is not exactly codec, alpha and
//     dtype and optionally granularity (no log_min, log_max, layout or
//     range), an alpha that is not finite and above 0, or whose largest
//     magnitude (codes 127 and 128) rounds to an infinity in the source
//     dtype; NAME.qins missing or not U8; with "granularity": "row" a
//     NAME.alpha missing or not F32 [rows], and (when the rows are read) a
//     row's alpha that is not finite and above 0, whose largest magnitude
//     rounds to an infinity in the source dtype, or that is below the
//     tensor's alpha (which bounds what every row decodes to), naming the
//     row;
//   - for the i8 layout, NAME.qins missing or not I8, with "granularity":
//     "row" a NAME.logrange missing or not F32 [rows, 2], and a code -128
//     (when decoded, naming the element);
//   - a range that does not decode to finite values in the source dtype:
//     log_max - log_min must be finite, log_min not above log_max, and the
//     largest magnitude, exp(log_max) (code 1), must not round to an
//     infinity in that dtype;
//   - codes or signs missing, of the wrong dtype or shape, or a tensor stored
//     both encoded and unchanged;
//   - a sign outside -1, 0, +1; a code 0 in layout u8+i8; in layout packed, a
//     code 0 whose sign bit is set, or padding bits that are not 0;
//   - a NAME.logrange of another dtype or shape, or a row whose values are
//     not finite, whose log_min is above its log_max, or whose largest
//     magnitude decodes beyond the source dtype.
//
// # Sharded folders
//
// A QINS model folder holds model.qins.safetensors or, split by a maximum
// shard size, model.qins-00001-of-00003.safetensors and so on with
// model.qins.safetensors.index.json, in Hugging Face's index format:
//
//	{"metadata": {"total_size": N}, "weight_map": {...}}
//
// N being the bytes of tensor data, and the map naming each stored tensor
// (NAME.qins, NAME.sign or NAME.signbits, NAME.logrange or NAME.alpha, and
// the copied ones). Each shard is itself a complete QINS file: tensors are split in
// source order, an encoded tensor's parts and its qins:NAME entry always in
// the same shard, and every shard carries the same "qins" version and the
// source's own metadata. A tensor larger than the limit gets a shard of its
// own. The shards hold the same bytes as the single-file output, split up
// (with one shard, exactly the same file). Readers check the index both ways
// (every listed tensor in its shard, every shard tensor listed, no shard
// path outside the folder), that each encoded tensor's parts and qins:NAME
// entry are in one shard, and that every shard is QINS of the same version.
//
// # Decoding with numpy
//
// One tensor, either layout, either version, with numpy alone:
//
//	import json, struct
//	import numpy as np
//
//	def decode(path, name):
//	    """Decode tensor `name` of a QINS file to float32, with numpy alone."""
//	    with open(path, "rb") as f:
//	        n = struct.unpack("<Q", f.read(8))[0]
//	        header = json.loads(f.read(n))
//	    def stored(key, dtype):
//	        t = header[key]
//	        begin, end = t["data_offsets"]
//	        a = np.fromfile(path, dtype=dtype, count=(end - begin) // np.dtype(dtype).itemsize, offset=8 + n + begin)
//	        return a.reshape(t["shape"])
//	    meta = json.loads(header["__metadata__"]["qins:" + name])
//	    if meta.get("layout") == "i8":  # version 3: sign * 7-bit code
//	        c = stored(name + ".qins", np.int8).astype(np.float64)
//	        lo, hi = meta["log_min"], meta["log_max"]
//	        if meta.get("granularity") == "row":  # a range per row
//	            ranges = stored(name + ".logrange", np.float32).astype(np.float64)
//	            lo = ranges[:, 0].reshape(c.shape[:-1] + (1,))
//	            hi = ranges[:, 1].reshape(c.shape[:-1] + (1,))
//	        magnitude = np.exp(lo + (127 - np.abs(c)) / 126 * (hi - lo))
//	        return np.where(c == 0, 0.0, np.sign(c) * magnitude).astype(np.float32)
//	    codes = stored(name + ".qins", np.uint8)
//	    if meta.get("codec") == "rational":  # version 3
//	        z = codes.astype(np.float64) / 127.5 - 1
//	        alpha = meta["alpha"]
//	        if meta.get("granularity") == "row":  # version 4: an alpha per row
//	            alpha = stored(name + ".alpha", np.float32).astype(np.float64)
//	            alpha = alpha.reshape(codes.shape[:-1] + (1,))
//	        return np.copysign((1 - np.abs(z)) / (alpha * np.abs(z)), z).astype(np.float32)
//	    lo, hi = meta["log_min"], meta["log_max"]
//	    if meta.get("layout", "u8+i8") == "packed":
//	        bits = np.unpackbits(stored(name + ".signbits", np.uint8), bitorder="little")
//	        signs = np.where(codes == 0, 0, 1 - 2 * bits[: codes.size].reshape(codes.shape).astype(np.int8))
//	    else:
//	        signs = stored(name + ".sign", np.int8)
//	    if meta.get("granularity") == "row":  # version 2: a range per row
//	        ranges = stored(name + ".logrange", np.float32).astype(np.float64)
//	        lo = ranges[:, 0].reshape(codes.shape[:-1] + (1,))
//	        hi = ranges[:, 1].reshape(codes.shape[:-1] + (1,))
//	    c = codes.astype(np.float64)
//	    magnitude = np.exp(lo + (255 - c) / 254 * (hi - lo))
//	    return np.where(signs == 0, 0.0, signs * magnitude).astype(np.float32)
//
//	w = decode("tiny.qins.safetensors", "model.layers.0.mlp.down_proj.weight")
//
// On the tiny checkpoint in testdata this gives, for all 130 encoded
// tensors, both layouts and both granularities, arrays bit-identical to
// those qins restore writes. scripts/parity.py is an independent checker
// written from this description.
package qins
