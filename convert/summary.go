package convert

import (
	"slices"
	"time"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/qins"
)

// Summary reports what a pipeline did.
type Summary struct {
	Input, Output string
	Encoded       int   // tensors encoded (convert) or decoded (restore)
	Copied        int   // tensors stored unchanged or cast
	BytesIn       int64 // size of the input files
	BytesOut      int64 // size of the output file
	FP32Bytes     int64 // size of the model's tensors with every float as F32
	// PackedBytes, for a convert to the u8+i8 layout of 16-bit tensors, is
	// what the output would take with the packed layout; 0 otherwise.
	PackedBytes int64
	// EncodedElems and EncodedBytes, for a convert, are the weights
	// encoded and the bytes of the tensors they are stored in: codes,
	// signs and per-row ranges. RangeBytes is the part of EncodedBytes
	// that the per-row ranges take (0 with one range per tensor, which
	// the metadata holds).
	EncodedElems, EncodedBytes, RangeBytes int64
	// Encoding, for a convert, is how the tensors were encoded: the
	// Options' layout, range, granularity and codec (the rational codec
	// has no layout, range or granularity: their zero values).
	Encoding qins.Encoding
	// ShortRows, when Options.RowRangeBudget turned per-row ranges into
	// one range per tensor, is the bits per encoded weight the rows'
	// ranges would have taken; 0 otherwise.
	ShortRows float64
	// KeptDType counts the copied tensors kept because the codec does not
	// read their dtype (integers, BOOL, FP8, FP6, FP4, C64...), whose
	// names KeptDTypes lists, sorted.
	KeptDType  int
	KeptDTypes []string
	Elapsed    time.Duration
	// Shards and SideFiles, for a folder output, count the weight files
	// written and the other files copied.
	Shards, SideFiles int
	// SkippedLinks, for a folder output with WriteOptions.SkipOutsideLinks,
	// names the side files not copied because they link outside the
	// model folder (slash-separated, relative to it).
	SkippedLinks []string
	// Codec is the convert's codec. For the rational codec, AlphaMSE
	// says that each tensor (or with AlphaRows each row) got the alpha of
	// its least squared error (otherwise Options.Alpha), and AlphaMin and
	// AlphaMax bound the tensors' (or rows') alphas.
	Codec              qins.Codec
	AlphaMSE           bool
	AlphaRows          bool
	AlphaMin, AlphaMax float64
	// Unmarked, for a restore, names the tensors NAME whose codes and
	// signs are stored as an encoded tensor's are (NAME.qins, U8, with
	// NAME.sign, I8 of the same shape, or NAME.signbits, U8 of
	// ceil(n/8) bytes) but without the qins:NAME metadata that would mark
	// them encoded: they were copied as plain tensors, as the format
	// says, but the file may have lost that metadata. Sorted.
	Unmarked []string
	// packedSaving is what the packed layout would save on the 16-bit
	// tensors of a u8+i8 convert.
	packedSaving int64
}

// MBPerSecond returns the input throughput in MB/s (10^6 bytes).
func (s *Summary) MBPerSecond() float64 {
	sec := s.Elapsed.Seconds()
	if sec <= 0 {
		return 0
	}
	return float64(s.BytesIn) / 1e6 / sec
}

// setPacked sets PackedBytes from the output size and what the packed
// layout would save.
func (s *Summary) setPacked() {
	if s.packedSaving > 0 {
		s.PackedBytes = s.BytesOut - s.packedSaving
	}
}

// alpha counts the alpha of a rational tensor, chosen for the least
// squared error when mse; with rows, a and b bound its rows' alphas
// (for one alpha per tensor, a = b).
func (s *Summary) alpha(a, b float64, mse, rows bool) {
	if s.Codec != qins.CodecRational {
		s.AlphaMin, s.AlphaMax = a, b
	}
	s.AlphaMin, s.AlphaMax = min(s.AlphaMin, a), max(s.AlphaMax, b)
	s.Codec, s.AlphaMSE, s.AlphaRows = qins.CodecRational, mse, rows
}

// add adds the counts of one shard's summary to s.
func (s *Summary) add(shard *Summary) {
	if shard.Codec == qins.CodecRational {
		s.alpha(shard.AlphaMin, shard.AlphaMax, shard.AlphaMSE, shard.AlphaRows)
	}
	s.Encoded += shard.Encoded
	s.EncodedElems += shard.EncodedElems
	s.EncodedBytes += shard.EncodedBytes
	s.RangeBytes += shard.RangeBytes
	s.Copied += shard.Copied
	s.KeptDType += shard.KeptDType
	for _, dt := range shard.KeptDTypes {
		s.keptName(dt)
	}
	s.FP32Bytes += shard.FP32Bytes
	s.BytesOut += shard.BytesOut
	s.packedSaving += shard.packedSaving
}

// kept counts a tensor copied because of its dtype, named dt.
func (s *Summary) kept(dt string) {
	s.KeptDType++
	s.keptName(dt)
}

// keptName adds dt to KeptDTypes, kept sorted and without repeats.
func (s *Summary) keptName(dt string) {
	if i, found := slices.BinarySearch(s.KeptDTypes, dt); !found {
		s.KeptDTypes = slices.Insert(s.KeptDTypes, i, dt)
	}
}

// fp32Bytes is the size of t with every float as F32.
func fp32Bytes(t format.TensorInfo) int64 {
	if t.DType.IsFloat() {
		return int64(t.Elements()) * 4
	}
	return int64(t.Bytes())
}
