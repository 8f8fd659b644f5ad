package convert

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/outfile"
)

// sideNames lists the side files of the model folder src.
func sideNames(t *testing.T, src string, opts WriteOptions) ([]string, []string, error) {
	t.Helper()
	c := open(t, src)
	side, err := sideFiles(context.Background(), src, c, &opts)
	var got []string
	for _, s := range side.files {
		got = append(got, s.rel)
	}
	return got, side.skipped, err
}

// TestSideFilesInsideAndWeights: files in subfolders and links that stay
// inside the folder are copied, weights in any format and hidden files are
// not.
func TestSideFilesInsideAndWeights(t *testing.T) {
	dir := t.TempDir()
	src := copyDir(t, tinyDir, filepath.Join(dir, "m"))
	os.MkdirAll(filepath.Join(src, "original", "deep"), 0o755)
	os.WriteFile(filepath.Join(src, "original", "params.json"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(src, "tok.real"), []byte("tokenizer bytes"), 0o644)
	os.Symlink("tok.real", filepath.Join(src, "tokenizer.json")) // a link inside, relative
	os.Symlink("..", filepath.Join(src, "original", "deep", "o2"))
	for _, n := range []string{"original/consolidated.00.pth", "pytorch_model.bin", ".gitattributes"} {
		os.WriteFile(filepath.Join(src, n), []byte("weights"), 0o644)
	}
	_, _, err := sideNames(t, src, WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "a loop") {
		t.Fatalf("a link to a folder above: %v, want a loop error", err)
	}
	os.Remove(filepath.Join(src, "original", "deep", "o2"))
	os.Symlink("../../original/params.json", filepath.Join(src, "original", "deep", "p.json"))
	got, _, err := sideNames(t, src, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"config.json", "original/deep/p.json", "original/params.json", "tok.real", "tokenizer.json"}
	if !equalStrings(got, want) {
		t.Errorf("side files %v, want %v", got, want)
	}
	q := filepath.Join(dir, "m.qins")
	if _, err := convertTo(context.Background(), src, q, Options{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(q, "tokenizer.json")); err != nil || string(b) != "tokenizer bytes" {
		t.Errorf("tokenizer.json: %q, %v", b, err)
	}
	if st, err := os.Lstat(filepath.Join(q, "tokenizer.json")); err != nil || !st.Mode().IsRegular() {
		t.Error("the symlink was not resolved into a file")
	}
}

// TestSideFilesDeepTree: a plain tree deeper than any depth limit is
// copied; loops are found by identity, not depth.
func TestSideFilesDeepTree(t *testing.T) {
	dir := t.TempDir()
	src := copyDir(t, tinyDir, filepath.Join(dir, "m"))
	deep := filepath.Join(src, "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l")
	os.MkdirAll(deep, 0o755)
	os.WriteFile(filepath.Join(deep, "x.txt"), []byte("x"), 0o644)
	got, _, err := sideNames(t, src, WriteOptions{})
	if err != nil || len(got) != 2 || got[0] != "a/b/c/d/e/f/g/h/i/j/k/l/x.txt" {
		t.Errorf("deep tree: %v, %v", got, err)
	}
	os.Symlink(src, filepath.Join(deep, "top"))
	if _, _, err := sideNames(t, src, WriteOptions{}); err == nil || !strings.Contains(err.Error(), "a loop") {
		t.Errorf("a link to the top: %v, want a loop error", err)
	}
}

// TestSideFilesOutsideLinks: a link leading outside the folder, to a file
// or a folder, is refused, or skipped and listed with SkipOutsideLinks;
// nothing is written when refused.
func TestSideFilesOutsideLinks(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("private key"), 0o600)
	os.MkdirAll(filepath.Join(dir, "home", "ssh"), 0o755)
	os.WriteFile(filepath.Join(dir, "home", "ssh", "id"), []byte("key"), 0o600)
	cases := []struct{ name, target string }{
		{"file", secret},
		{"relative", "../secret"},
		{"folder", filepath.Join(dir, "home")},
		{"proc", "/proc/self/environ"},
		{"pagemap", "/proc/self/pagemap"},
		{"chain", "inside"}, // inside -> ../secret
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := copyDir(t, tinyDir, filepath.Join(t.TempDir(), "m"))
			os.Symlink("../../"+filepath.Base(dir)+"/secret", filepath.Join(src, "inside"))
			os.Remove(filepath.Join(src, "inside"))
			if c.name == "chain" {
				os.Symlink(secret, filepath.Join(src, "inside"))
				os.Symlink("inside", filepath.Join(src, "tokenizer.json"))
			} else {
				os.Symlink(c.target, filepath.Join(src, "tokenizer.json"))
			}
			if c.name == "relative" {
				os.Remove(filepath.Join(src, "tokenizer.json"))
				rel, _ := filepath.Rel(src, secret)
				os.Symlink(rel, filepath.Join(src, "tokenizer.json"))
			}
			out := filepath.Join(filepath.Dir(src), "m.qins")
			_, err := convertTo(context.Background(), src, out, Options{})
			if !errors.Is(err, ErrOutsideLink) {
				t.Fatalf("convert: %v, want ErrOutsideLink", err)
			}
			if got := names(t, filepath.Dir(src)); len(got) != 1 {
				t.Errorf("left beside the input: %v", got)
			}
			s, err := convertTo(context.Background(), src, out, Options{WriteOptions: WriteOptions{SkipOutsideLinks: true}})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"tokenizer.json"}
			if c.name == "chain" {
				want = []string{"inside", "tokenizer.json"}
			}
			if !equalStrings(s.SkippedLinks, want) {
				t.Errorf("skipped %v, want %v", s.SkippedLinks, want)
			}
			for _, n := range want {
				if _, err := os.Lstat(filepath.Join(out, n)); err == nil {
					t.Errorf("%s was copied", n)
				}
			}
		})
	}
}

// TestSideFilesHFCache: a snapshot of the Hugging Face cache reads its
// links into the repository's blobs, and nothing else outside it.
func TestSideFilesHFCache(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "hub", "models--org--tiny")
	snap := filepath.Join(repo, "snapshots", "0123abc")
	blobs := filepath.Join(repo, "blobs")
	os.MkdirAll(snap, 0o755)
	os.MkdirAll(blobs, 0o755)
	ents, _ := os.ReadDir(tinyDir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(tinyDir, e.Name()))
		os.WriteFile(filepath.Join(blobs, "h-"+e.Name()), b, 0o644)
		os.Symlink("../../blobs/h-"+e.Name(), filepath.Join(snap, e.Name()))
	}
	os.WriteFile(filepath.Join(blobs, "h-tok"), []byte("tokenizer"), 0o644)
	os.MkdirAll(filepath.Join(snap, "sub"), 0o755)
	os.Symlink("../../../blobs/h-tok", filepath.Join(snap, "sub", "tokenizer.json"))
	got, _, err := sideNames(t, snap, WriteOptions{})
	if err != nil || !equalStrings(got, []string{"config.json", "sub/tokenizer.json"}) {
		t.Fatalf("cache snapshot: %v, %v", got, err)
	}
	// The blobs folder itself holds every revision's weights; another
	// repository's blobs are outside.
	other := filepath.Join(dir, "hub", "models--org--other", "blobs")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "h"), []byte("other"), 0o644)
	for _, target := range []string{"../../blobs", "../../../models--org--other/blobs/h", "../../blobs/../../models--org--other/blobs/h"} {
		l := filepath.Join(snap, "extra")
		os.Remove(l)
		os.Symlink(target, l)
		if _, _, err := sideNames(t, snap, WriteOptions{}); !errors.Is(err, ErrOutsideLink) {
			t.Errorf("link to %s: %v, want ErrOutsideLink", target, err)
		}
	}
}

// TestSideFilesModeAndLimits: modes are kept as cp keeps them; a file or
// a tree above its limit is refused.
func TestSideFilesModeAndLimits(t *testing.T) {
	dir := t.TempDir()
	src := copyDir(t, tinyDir, filepath.Join(dir, "m"))
	os.WriteFile(filepath.Join(src, "private.json"), []byte("0123456789"), 0o600)
	os.WriteFile(filepath.Join(src, "run.py"), []byte("print()"), 0o755)
	q := filepath.Join(dir, "m.qins")
	if _, err := convertTo(context.Background(), src, q, Options{}); err != nil {
		t.Fatal(err)
	}
	mask := syscall.Umask(0)
	syscall.Umask(mask)
	for n, mode := range map[string]os.FileMode{"private.json": 0o600, "run.py": 0o755, "config.json": 0o644} {
		if st, err := os.Stat(filepath.Join(q, n)); err != nil || st.Mode().Perm() != mode&^os.FileMode(mask) {
			t.Errorf("%s: mode %v, %v; want %v", n, st.Mode(), err, mode&^os.FileMode(mask))
		}
	}
	r := filepath.Join(dir, "m.restored")
	if _, err := restoreTo(context.Background(), q, r, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(r, "private.json")); err != nil || st.Mode().Perm() != 0o600&^os.FileMode(mask) {
		t.Errorf("restored private.json: %v, %v", st.Mode(), err)
	}
	cfg, _ := os.Stat(filepath.Join(src, "config.json"))
	if _, _, err := sideNames(t, src, WriteOptions{MaxSideFile: 9}); !errors.Is(err, ErrSideTooLarge) {
		t.Errorf("a file above the limit: %v", err)
	}
	if _, _, err := sideNames(t, src, WriteOptions{MaxSideTotal: cfg.Size() + 12}); !errors.Is(err, ErrSideTooLarge) {
		t.Errorf("a tree above the limit: %v", err)
	}
	if got, _, err := sideNames(t, src, WriteOptions{MaxSideTotal: cfg.Size() + 17}); err != nil || len(got) != 3 {
		t.Errorf("a tree at the limit: %v, %v", got, err)
	}
}

// TestSideFilesChanged: a side file rewritten after it was listed is
// refused when copied, and one rewritten after it was copied before the
// commit.
func TestSideFilesChanged(t *testing.T) {
	dir := t.TempDir()
	src := copyDir(t, tinyDir, filepath.Join(dir, "m"))
	tok := filepath.Join(src, "tokenizer.json")
	os.WriteFile(tok, []byte("old bytes"), 0o644)
	c := open(t, src)
	side, err := sideFiles(context.Background(), src, c, &WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var s sideFile
	for _, f := range side.files {
		if f.rel == "tokenizer.json" {
			s = f
		}
	}
	if err := s.unchanged(); err != nil {
		t.Fatalf("unchanged file: %v", err)
	}
	// Same size, new bytes and modification time: the in-place rewrite
	// of the issue.
	f, _ := os.OpenFile(tok, os.O_WRONLY, 0)
	f.WriteAt([]byte("new"), 0)
	f.Close()
	os.Chtimes(tok, s.info.ModTime().Add(time.Second), s.info.ModTime().Add(time.Second))
	if err := s.unchanged(); err == nil || !strings.Contains(err.Error(), "changed while") {
		t.Errorf("rewritten file: %v", err)
	}
	out := filepath.Join(dir, "o")
	if err := copyTo(t, out, s); err == nil || !strings.Contains(err.Error(), "changed while") {
		t.Errorf("copy of a rewritten file: %v", err)
	}
	// Replaced by another file of the same size and time (the old one
	// kept alive, so that its inode is not reused).
	os.Link(tok, filepath.Join(dir, "old"))
	os.Remove(tok)
	os.WriteFile(tok, []byte("old bytes"), 0o644)
	os.Chtimes(tok, s.info.ModTime(), s.info.ModTime())
	if st, _ := os.Stat(tok); st.Size() != s.info.Size() || !st.ModTime().Equal(s.info.ModTime()) {
		t.Fatal("the replacement differs in size or time")
	}
	if err := s.unchanged(); err == nil {
		t.Error("replaced file: no error")
	}
}

// copyTo copies s into a new folder out, aborted afterwards.
func copyTo(t *testing.T, out string, s sideFile) error {
	t.Helper()
	dw, err := outfile.CreateDir(out, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dw.Abort()
	return copySideFiles(context.Background(), dw, sideList{files: []sideFile{s}}, "")
}

// TestSideFilesErrorsQuoted: a dangling link and a FIFO are named once,
// quoted when their names hold control characters.
func TestSideFilesErrorsQuoted(t *testing.T) {
	src := copyDir(t, tinyDir, filepath.Join(t.TempDir(), "m"))
	bad := filepath.Join(src, "tok\x1b[31m.json")
	os.Symlink("nowhere\x1b[0m", bad)
	_, _, err := sideNames(t, src, WriteOptions{})
	if err == nil || strings.ContainsRune(err.Error(), 0x1b) || strings.Count(err.Error(), "tok") != 1 || !strings.Contains(err.Error(), "cannot be followed") {
		t.Errorf("dangling link: %q", err)
	}
	os.Remove(bad)
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Skip(err)
	}
	if _, _, err := sideNames(t, src, WriteOptions{}); err == nil || !strings.Contains(err.Error(), "is a FIFO, not a regular file") {
		t.Errorf("fifo: %v", err)
	}
}

// TestSideFilesRoundTwo: the second review's attacks: a link into a
// hidden file of the folder, a graph of links that reaches a folder many
// ways, a FIFO or an outside link put in a listed file's place, a snapshot
// subfolder, blobs moved to another disk, dangling links, folder modes.
func TestSideFilesRoundTwo(t *testing.T) {
	t.Run("hidden target", func(t *testing.T) {
		src := copyDir(t, tinyDir, filepath.Join(t.TempDir(), "m"))
		os.MkdirAll(filepath.Join(src, ".git"), 0o755)
		os.WriteFile(filepath.Join(src, ".git", "config"), []byte("url = https://user:token@host/x"), 0o644)
		os.Symlink(".git/config", filepath.Join(src, "README.md"))
		if _, _, err := sideNames(t, src, WriteOptions{}); !errors.Is(err, ErrOutsideLink) {
			t.Errorf("a link into .git: %v, want ErrOutsideLink", err)
		}
		if _, skipped, err := sideNames(t, src, WriteOptions{SkipOutsideLinks: true}); err != nil || !equalStrings(skipped, []string{"README.md"}) {
			t.Errorf("skipped %v, %v", skipped, err)
		}
	})
	t.Run("link graph", func(t *testing.T) {
		src := copyDir(t, tinyDir, filepath.Join(t.TempDir(), "m"))
		prev := filepath.Join(src, "L")
		os.Mkdir(prev, 0o755)
		for i := range 40 { // 2^40 paths if each were walked
			d := filepath.Join(src, fmt.Sprintf("d%d", i))
			os.Mkdir(d, 0o755)
			os.Symlink(d, filepath.Join(prev, "a"))
			os.Symlink(d, filepath.Join(prev, "b"))
			prev = d
		}
		if _, _, err := sideNames(t, src, WriteOptions{}); err == nil || !strings.Contains(err.Error(), "already copied") {
			t.Errorf("a folder reached twice: %v", err)
		}
	})
	t.Run("replaced after listing", func(t *testing.T) {
		dir := t.TempDir()
		src := copyDir(t, tinyDir, filepath.Join(dir, "m"))
		secret := filepath.Join(dir, "secret")
		os.WriteFile(secret, []byte("private key"), 0o600)
		tok := filepath.Join(src, "tokenizer.json")
		os.WriteFile(tok, []byte("tokenizer"), 0o644)
		scope, err := newLinkScope(src)
		if err != nil {
			t.Fatal(err)
		}
		// The race lost: the name is a link to the secret by the time it
		// is stat'ed, so the listing holds the secret's own FileInfo.
		os.Remove(tok)
		os.Symlink(secret, tok)
		st, _ := os.Stat(tok)
		s := sideFile{rel: "tokenizer.json", path: tok, info: st, scope: scope}
		if err := copyTo(t, filepath.Join(dir, "o"), s); !errors.Is(err, ErrOutsideLink) {
			t.Errorf("copy through a swapped link: %v, want ErrOutsideLink", err)
		}
		// A FIFO in its place: refused at once, no hang.
		os.Remove(tok)
		if err := syscall.Mkfifo(tok, 0o644); err != nil {
			t.Skip(err)
		}
		s.info, _ = os.Stat(filepath.Join(src, "config.json"))
		if err := copyTo(t, filepath.Join(dir, "o2"), s); err == nil || !strings.Contains(err.Error(), "changed while") {
			t.Errorf("copy of a FIFO: %v", err)
		}
	})
	t.Run("cache subfolder and moved blobs", func(t *testing.T) {
		dir := t.TempDir()
		repo := filepath.Join(dir, "hub", "models--org--diff")
		snap := filepath.Join(repo, "snapshots", "rev", "text_encoder")
		os.MkdirAll(snap, 0o755)
		elsewhere := filepath.Join(dir, "disk2", "blobs")
		os.MkdirAll(elsewhere, 0o755)
		os.Symlink(elsewhere, filepath.Join(repo, "blobs"))
		ents, _ := os.ReadDir(tinyDir)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(tinyDir, e.Name()))
			os.WriteFile(filepath.Join(elsewhere, "h-"+e.Name()), b, 0o644)
			os.Symlink("../../../blobs/h-"+e.Name(), filepath.Join(snap, e.Name()))
		}
		os.Symlink("nowhere", filepath.Join(snap, "dangling.txt"))
		if _, _, err := sideNames(t, snap, WriteOptions{}); err == nil || !strings.Contains(err.Error(), "cannot be followed") {
			t.Errorf("a dangling link: %v", err)
		}
		got, skipped, err := sideNames(t, snap, WriteOptions{SkipOutsideLinks: true})
		if err != nil || !equalStrings(got, []string{"config.json"}) || !equalStrings(skipped, []string{"dangling.txt"}) {
			t.Errorf("cache subfolder: %v, skipped %v, %v", got, skipped, err)
		}
	})
	t.Run("folder modes", func(t *testing.T) {
		dir := t.TempDir()
		src := copyDir(t, tinyDir, filepath.Join(dir, "m"))
		os.MkdirAll(filepath.Join(src, "private", "ro"), 0o755)
		os.WriteFile(filepath.Join(src, "private", "ro", "x.txt"), []byte("x"), 0o644)
		os.Chmod(filepath.Join(src, "private", "ro"), 0o500)
		os.Chmod(filepath.Join(src, "private"), 0o700)
		defer os.Chmod(filepath.Join(src, "private", "ro"), 0o755)
		q := filepath.Join(dir, "m.qins")
		if _, err := convertTo(context.Background(), src, q, Options{}); err != nil {
			t.Fatal(err)
		}
		mask := syscall.Umask(0)
		syscall.Umask(mask)
		for rel, mode := range map[string]os.FileMode{"private": 0o700, "private/ro": 0o500} {
			if st, err := os.Stat(filepath.Join(q, rel)); err != nil || st.Mode().Perm() != mode&^os.FileMode(mask) {
				t.Errorf("%s: %v, %v; want %v", rel, st.Mode(), err, mode&^os.FileMode(mask))
			}
		}
		os.Chmod(filepath.Join(q, "private", "ro"), 0o755) // for t.TempDir's cleanup
	})
}

// TestFolderOutputErrorsQuoted: the input an output folder would hold is
// named quoted when its name holds control characters (issue 23).
func TestFolderOutputErrorsQuoted(t *testing.T) {
	out := t.TempDir()
	side := filepath.Join(out, "tok\x1b[31m\n.json")
	if err := os.WriteFile(side, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := checkFolderOutput(out, "", &format.Checkpoint{}, []sideFile{{rel: "tok.json", path: side}})
	if err == nil || strings.ContainsAny(err.Error(), "\x1b\n") || !strings.Contains(err.Error(), `tok\x1b[31m\n.json", an input of this command`) {
		t.Errorf("%q", err)
	}
}
