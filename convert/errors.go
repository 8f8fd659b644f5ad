package convert

import (
	"errors"
	"fmt"

	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
)

// Errors a caller may act on. The errors of Convert and Restore wrap
// them (test with errors.Is), inside a
// *format.Error naming the file where there is one.
var (
	// ErrIsQINS: Convert was given a checkpoint that is already QINS.
	ErrIsQINS = errors.New("is already a QINS file")
	// ErrNotQINS: Restore was given a checkpoint that is not QINS.
	ErrNotQINS = errors.New(`is not a QINS file (no "qins" metadata)`)
	// ErrNoneSelected: Options.Include matches no floating-point tensor.
	ErrNoneSelected = errors.New("matches no floating-point tensor")
	// ErrHeaderTooLarge: the output's header would be above the
	// safetensors limit, format.MaxHeaderSize; fewer encoded tensors
	// (Options.Exclude) or a split checkpoint make it smaller.
	ErrHeaderTooLarge = errors.New("above the safetensors limit")
)

// NameClashError is the error of Convert for a tensor to encode whose
// codes or signs would be stored under the name of another tensor of the
// checkpoint ("x" beside "x.qins"). Options.Exclude keeping Tensor
// unchanged avoids it.
type NameClashError struct {
	Tensor string // the tensor to encode
	Part   qins.Part
	Stored string // the name the part would be stored under
}

func (e *NameClashError) Error() string {
	return fmt.Sprintf("cannot be encoded: its %v would be stored as %q, the name of another tensor of the checkpoint; exclude it to keep it unchanged", e.Part, e.Stored)
}

// CastError is a stored value beyond the range of the dtype a restore
// writes, which would become infinite.
type CastError struct {
	Index int64 // flat index of the element
	Value float64
	DType dtype.DType
}

func (e *CastError) Error() string {
	return fmt.Sprintf("element %d is %g, beyond the largest %v", e.Index, e.Value, e.DType)
}
