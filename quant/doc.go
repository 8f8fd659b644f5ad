// Package quant is the QINS codec: the log range of a tensor (or of each
// of its rows), the uint8 log-magnitude code with its sign, encoding and
// decoding. It holds no file format: how a file stores codes, signs and
// ranges is described in package github.com/qins-dev/qins/format/qins,
// and reading and writing float dtypes is package
// github.com/qins-dev/qins/format/dtype's.
//
// # Encoding
//
// For each encoded tensor with elements w, read exactly from its dtype
// (F16, BF16, F32 or F64) into float64:
//
// log_min and log_max are the minimum and maximum of ln|w| over the
// elements with |w| > 1e-8 ([Tiny]), in float64. The code of an element is
//
//	code = round(255 - 254 * (ln|w| - log_min) / (log_max - log_min))
//
// rounded half to even and clamped to [1, 255]: the largest magnitude gets
// 1, the smallest 255. Elements with |w| <= 1e-8 (zeros included) get 255.
// The sign is -1 or +1, and 0 for an exact zero (+0 or -0).
//
// A NaN or an infinity in a tensor to be encoded is an error naming the
// element index.
//
// # Decoding
//
//	w' = sign * exp(log_min + (255 - code) / 254 * (log_max - log_min))
//
// computed in float64 and rounded once to the output dtype. An exact zero
// (sign 0) decodes to exactly 0.
//
// Two cases the formula leaves open are defined here:
//
//   - Every significant element has the same magnitude (log_max ==
//     log_min): significant elements get code 1, tiny ones 255, and all
//     decode to sign * exp(log_min), which is that magnitude.
//   - No element has |w| > 1e-8: log_min = log_max = ln of the largest
//     magnitude (0 when every element is zero), so every non-zero element
//     decodes to ±(largest magnitude) and zeros stay zeros.
//
// Nothing ever decodes larger than the tensor's largest magnitude. For
// every element with |w| > 1e-8,
//
//	|ln|w'| - ln|w|| <= (log_max - log_min) / 508
//
// (half a code step); with the mse range, elements below exp(log_min) are
// the exception (below).
//
// # Range methods
//
// The range is chosen per tensor in one of two ways; decoding does not
// depend on which, so every decoder reads both.
//
//   - minmax (the default): log_min and log_max as above.
//   - mse: log_max stays the maximum of ln|w|, and log_min is chosen within
//     [min ln|w|, log_max] to minimise the tensor's squared reconstruction
//     error, by a coarse-to-fine search over the counts of the range pass
//     (exact for 16-bit dtypes, whose counts hold every value; over buckets
//     of magnitudes for F32 and F64). The min/max log_min is a candidate, so
//     the result is never worse on the scanned values. The codes are the
//     formula's with that log_min: elements with ln|w| < log_min clamp to
//     code 255 and decode to exp(log_min). See [Scanner.MSEParams].
//
// # Per-row ranges
//
// With the row granularity every row, a run of the last dimension (elements
// r*L .. r*L+L-1 in row-major order, L the last dimension; a vector or a
// scalar is one row), has its own range, which follows the rules above on
// that row's elements alone: the 1e-8 threshold, exact zeros staying zero,
// the equal-magnitude and no-significant-element cases. The range is stored
// as float32 ([StoredRange]): log_max rounded down to float32, so that
// nothing decodes above the row's largest magnitude, and log_min rounded to
// the nearest float32 but not above that log_max. The codes are the
// formula's with the row's stored float32 values read back as float64, and
// decoding is the same formula with them.
//
// With the mse range each row keeps its log_max and gets the log_min that
// minimises its squared error:
//
//   - rows of at most 512 elements ([ExactRowMax]): an exact coarse-to-fine
//     search, 64 candidates then 3 rounds of 32, each scored by the row's
//     exact error;
//   - longer rows: the high-resolution model of a log quantiser, expected
//     error m²s²/12 for the elements above exp(log_min), with
//     s = (log_max - log_min)/254, plus the exact clamp error below it, over
//     buckets of an eighth of an octave; its pick is kept only when its
//     exact error beats the min/max range's ([RowCoder.MSERange]).
//
// So no row is worse than with its min/max range. See [RowCoder].
//
// # The i8 form
//
// The same log code with 127 levels instead of 255, and the sign inside:
// one int8 per weight (the i8 layout of package format/qins). log_min and
// log_max are found as above, per tensor, and
//
//	code7 = round(127 - 126 * (ln|w| - log_min) / (log_max - log_min))
//
// rounded half to even and clamped to [1, 127], evaluated in float64 in
// this order ([Params.Code7]). Elements with 0 < |w| <= 1e-8 get code7 127
// (as they get 255 in the 8-bit code), and log_max == log_min gives 1. The
// stored code is 0 for an exact zero (+0 or -0) and sign(w) * code7
// otherwise, in -127..127; -128 is invalid ([Params.CodeI8]). Decoding, in
// float64 and rounded once to the output dtype ([Params.ValueI8]):
//
//	w' = sign(c) * exp(log_min + (127 - |c|) / 126 * (log_max - log_min))
//
// and 0 for c = 0. Half a code step is (log_max - log_min) / 252. With the
// mse range, log_min is chosen by the search of [Scanner.MSEParams] with
// the 7-bit code's levels in its error model ([Scanner.MSEParamsLevels]
// with [Levels7]); log_max stays the maximum. The 16-bit dtypes are
// encoded through a table of every bit pattern: the codes of the positive
// values filled run by run from the formula (see Implementation), those
// of the negative values their negations. F32 chunks of 16384 elements or
// more are coded from 126 thresholds as the 8-bit code's (see
// Implementation), F64 with the formula per element ([I8Encoder]).
//
// With the row granularity, each row's range is found and stored as the
// 8-bit code's ([RowCoder.Range], [StoredRange]). With the mse range, a
// row of at most 512 elements, or an F32 or F64 row, gets the search of
// [Scanner.MSEParamsLevels] with [Levels7] on its exact distinct
// magnitudes; a longer 16-bit row gets the model of the 8-bit rows below
// with the 7-bit step (log_max - log_min)/126, kept only when its exact
// error beats the min/max range's (on the row's histogram of bit
// patterns, or element by element when they spread over more than twice
// its length, as F16's do). Either is rounded by [StoredRange], and
// no row is worse than with its min/max range. The row's codes are then
// the formula's with its stored range ([RowCoder.EncodeI8]).
//
// # The rational codec
//
// A second codec, after the reference dkeviv/Cogumi-IntLLM
// (qins_weight_codec.py): one byte per weight, the sign inside, and one
// parameter alpha per tensor (finite, above 0; qins uses float32 values).
// Each weight is read exactly from its dtype and rounded to float32 (exact
// for F16, BF16 and F32), and its code is, in float32 arithmetic, each
// operation rounded to float32 in this order:
//
//	z = sign(w) / (1 + alpha*|w|)
//	code = round((z + 1) * 127.5)
//
// rounded half to even and clamped to [0, 255]: these are the reference's
// codes bit for bit (its numpy/torch arithmetic on float32 weights), but
// for two cases where the reference breaks, defined here:
//
//   - An exact zero: the reference gives z = 0 and code 128, which decodes
//     to +254/alpha, the largest weight. Here +0 gets 255 and -0 gets 0,
//     which decode to exactly +0 and -0, with the reference's own decoder
//     too.
//   - The sign: a weight w > 0 never gets a code below 128, nor w < 0 one
//     above 127. Float rounding can make z + 1 exactly 1 for a negative
//     weight with alpha*|w| above about 2^24, whose code 128 the reference
//     decodes as positive; it gets 127 here.
//
// A nonzero weight with alpha*|w| below about 1/254 gets 255 or 0 and
// decodes to a zero of its sign, as in the reference. Decoding, in float64
// and rounded once to the output dtype:
//
//	z = code/127.5 - 1
//	w' = sign(z) * (1 - |z|) / (alpha * |z|)
//
// (the reference decodes in float32, which makes code 128 253.996/alpha
// instead of 254/alpha). The largest magnitude, of codes 127 and 128, is
// about 254/alpha, and must be finite in the source dtype and in F32.
//
// Alpha is either given (qins convert --alpha) or chosen per tensor for the
// least squared error of the decoded weights (see
// [Scanner.RationalAlpha]): a grid of 49 points on log alpha over
// [0.01, 5000] divided by the largest magnitude, then 40 steps of golden
// section around the grid's best, each candidate rounded to float32 and
// scored over the scanned values (each magnitude's error the mean of its
// error as a positive and as a negative weight), exactly per bit pattern
// for 16-bit dtypes and over buckets of magnitudes (the top 16 bits of the
// float32 magnitude) for F32 and F64.
//
// With the row granularity every row, a run of the last dimension as for
// per-row ranges, has its own alpha, a float32 chosen for the least
// squared error of that row's decoded weights (with their signs), and
// its codes are the formula's with it ([RationalRowCoder]). A row with no
// nonzero element gets alpha 1; every alpha keeps the largest magnitude
// finite in the dtype. The search:
//
//   - rows of at most 256 elements ([RationalExactRowMax]) on their exact
//     error: 97 alphas evenly spaced on log alpha over [0.01, 5000]
//     divided by the largest magnitude, then 57 alphas 0.5% apart around
//     each of the 3 best and around the model's choice below. A short row's
//     error is far from smooth in alpha (each weight's is least where it
//     falls on a level), so this is near the best, not always the best;
//   - longer rows on a model: the expected error of a fine quantiser,
//     step²/12 with the step of the code at each magnitude m, which in
//     x = alpha*m is (1+x)⁴ / (195075 alpha²) (codes are 2/255 apart in
//     z = 1/(1+x)). Over a row it needs only the power sums of its
//     magnitudes and is least at the positive root of
//     s4 a⁴ + 2 s3 a³ - 2 s1 a - n (a = alpha times the largest magnitude,
//     sk the sum of (m/largest)^k in float32, n the count of nonzero
//     magnitudes). When the row has a few magnitudes above 4 times its
//     root mean square (up to 8, the largest) that the others' root puts
//     beyond x = 8, where the levels are coarse, those are scored exactly
//     and the model scores the rest: a grid on log alpha between the roots
//     with and without them, widened by 2 each way, each alpha that puts
//     the largest on a coarse level within it, then golden section around
//     the best. Rows of at most 2048 elements ([RationalRefineRowMax])
//     then take the least exact error of that pick and the 4 alphas 1%
//     and 2% either side of it.
//
// The power sums add float32 values in a fixed order, 16 lanes, so that
// the AVX-512 kernels and the Go loops choose the same alphas.
//
// The 16-bit dtypes are encoded through a table of every bit pattern, F32
// with the formula itself, F64 with the formula per element
// ([RationalEncoder]). The formula is float32 arithmetic of IEEE single
// operations, each rounded to nearest, so on amd64 with AVX-512 a kernel
// evaluates it 16 weights at a time with the same operations in the same
// order, which gives the same codes; it fills the tables, codes F32
// tensors and scores the alpha search's candidates.
//
// # Implementation
//
// For BF16 and F16 sources the range pass only finds the largest magnitude
// and the smallest above 1e-8, from the values' bits (with mse it counts
// each magnitude), and codes come from a per-tensor table of the 32768
// magnitudes filled with the formula, so the codes are the formula's
// exactly without a logarithm per element. The table is filled run by run:
// the code never increases with the magnitude bits, so the end of each run
// of equal codes is found by a search that asks the formula itself. F32
// tensors are coded the same way from 254 thresholds. On amd64 with AVX-512
// the range and encode passes run assembly kernels, chosen at start (the
// i8 and rational tables are read by a kernel that gathers each bit
// pattern's entry); the Go versions run elsewhere or with -tags purego,
// and the tests run both against the formula.
package quant
