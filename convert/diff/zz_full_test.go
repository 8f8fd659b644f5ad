package diff

import (
	"context"
	"os"
	"testing"
)

func BenchmarkZZFull(b *testing.B) {
	a, q := os.Getenv("ZZA"), os.Getenv("ZZB")
	if a == "" {
		b.Skip()
	}
	for b.Loop() {
		if _, err := Diff(context.Background(), a, q, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
