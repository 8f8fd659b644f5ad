package convert

import (
	"context"
	"io"
	"os"
	"testing"
)

func TestZZProf(t *testing.T) {
	p := os.Getenv("PROF_FILE")
	if p == "" {
		t.Skip()
	}
	switch os.Getenv("PROF_CMD") {
	case "inspect":
		r, err := Inspect(p)
		if err != nil {
			t.Fatal(err)
		}
		r.WriteText(io.Discard)
	case "diff":
		r, err := Diff(context.Background(), p, p, DiffOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r.WriteText(io.Discard, 20)
	case "convert":
		_, err := Convert(context.Background(), p, "/tmp/hf/prof.out", Options{Force: true})
		t.Log(err)
	}
}
