package model

import "math"

// longRope reports whether a forward pass over positions 0..seqLen-1 uses
// LongRoPE's long factors: transformers switches on max(position)+1 >
// original_max_position_embeddings.
func (c *Config) longRope(seqLen int) bool {
	return c.Rope.Type == "longrope" && seqLen > c.Rope.OriginalMax
}

// invFreq returns RoPE's inverse frequencies for a pass over seqLen
// positions, rounded to float32 step by step as transformers computes them.
func (c *Config) invFreq(seqLen int) []float32 {
	dim := c.RotaryDim
	inv := make([]float32, dim/2)
	for i := range inv {
		e := float32(2*i) / float32(dim)
		p := float32(math.Pow(c.RopeTheta, float64(e))) // base ** (arange / dim)
		switch c.Rope.Type {
		case "longrope":
			f := c.Rope.ShortFactor
			if c.longRope(seqLen) {
				f = c.Rope.LongFactor
			}
			inv[i] = 1 / (float32(f[i]) * p)
		case "linear":
			inv[i] = (1 / p) / float32(c.Rope.Factor)
		default:
			inv[i] = 1 / p
		}
	}
	if c.Rope.Type == "llama3" {
		c.llama3(inv)
	}
	return inv
}

// llama3 rescales inv in place as Llama 3.1 does: long wavelengths divided
// by the factor, short ones kept, a smooth blend between.
func (c *Config) llama3(inv []float32) {
	r := c.Rope
	old := float64(r.OriginalMax)
	lowWave, highWave := old/r.LowFreqFactor, old/r.HighFreqFactor
	factor := float32(r.Factor)
	for i, f := range inv {
		wave := float32(2*math.Pi) / f
		scaled := f
		if float64(wave) > lowWave {
			scaled = f / factor
		}
		if !(float64(wave) < highWave) && !(float64(wave) > lowWave) {
			smooth := (float32(old)/wave - float32(r.LowFreqFactor)) / float32(r.HighFreqFactor-r.LowFreqFactor)
			scaled = float32((1-smooth)*scaled/factor) + float32(smooth*scaled)
		}
		inv[i] = scaled
	}
}

// rotary holds cos and sin, RotaryDim/2 of each per position, for
// positions p0..p0+n-1.
type rotary struct {
	half     int
	cos, sin []float32
	// local, when not nil, is the tables of the sliding layers (Gemma 3's
	// rope_local_base_freq).
	local *rotary
}

// rotaryFor computes the tables for n positions from p0 in a pass over
// seqLen positions.
func (c *Config) rotaryFor(p0, n, seqLen int) *rotary {
	inv := c.invFreq(seqLen)
	half := len(inv)
	att := float32(1)
	if c.Rope.Type == "longrope" {
		att = float32(c.Rope.AttentionFactor)
	}
	r := &rotary{half: half, cos: make([]float32, n*half), sin: make([]float32, n*half)}
	for t := 0; t < n; t++ {
		pos := float32(p0 + t)
		for i, f := range inv {
			a := float64(pos * f) // the angle is a float32 product in transformers
			r.cos[t*half+i] = float32(math.Cos(a)) * att
			r.sin[t*half+i] = float32(math.Sin(a)) * att
		}
	}
	if c.LocalRopeTheta > 0 {
		r.local = c.localRope().rotaryFor(p0, n, seqLen)
	}
	return r
}

// apply rotates the first 2·half values of x (one head at row t) in the
// rotate-half layout: pairs (i, i+half).
func (r *rotary) apply(x []float32, t int) {
	c := r.cos[t*r.half : (t+1)*r.half]
	s := r.sin[t*r.half : (t+1)*r.half]
	for i := range c {
		x1, x2 := x[i], x[i+r.half]
		// Explicit conversions keep each product rounded, as in torch.
		x[i] = float32(x1*c[i]) - float32(x2*s[i])
		x[i+r.half] = float32(x2*c[i]) + float32(x1*s[i])
	}
}
