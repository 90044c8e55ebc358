package releasetest

import (
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// version is what the test stamps; it must pass release.sh's own check.
const version = "v0.0.0-releasetest.1"

// repoDir is the module root: this package lives in scripts/releasetest.
func repoDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

// command runs argv in dir with a bound on its time. The go command that
// runs this test comes first on PATH, so release.sh builds with the same
// toolchain.
func command(t *testing.T, dir string, env []string, argv ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(runtime.GOROOT(), "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// release runs scripts/release.sh into dist with the given ARCHS and
// arguments, failing the test if it fails.
func release(t *testing.T, dist, archs string, args ...string) {
	t.Helper()
	out, err := command(t, repoDir(t), []string{"DIST=" + dist, "ARCHS=" + archs},
		append([]string{"scripts/release.sh"}, args...)...)
	if err != nil {
		t.Fatalf("scripts/release.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func git(t *testing.T, args ...string) string {
	t.Helper()
	out, err := command(t, repoDir(t), nil, append([]string{"git"}, args...)...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s; hint: the release build needs a git checkout of serf-hb", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

func requireTools(t *testing.T) {
	t.Helper()
	for _, p := range []string{"git", "sha256sum", "tar"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s not found in $PATH; hint: apt-get install -y git coreutils tar", p)
		}
	}
}

// sums parses a SHA256SUMS file: file name -> hex digest.
func sums(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		// sha256sum's text-mode format: DIGEST, two spaces, NAME.
		digest, name, ok := strings.Cut(line, "  ")
		if !ok || len(digest) != 64 {
			t.Fatalf("%s: line %q is not in sha256sum format", path, line)
		}
		m[name] = digest
	}
	return m
}

func TestRelease(t *testing.T) {
	requireTools(t)
	dist := t.TempDir()
	release(t, dist, "amd64 arm64", version)

	list := sums(t, filepath.Join(dist, "SHA256SUMS"))
	names := make([]string, 0, len(list))
	for name := range list {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"serf-hb-linux-amd64", "serf-hb-linux-arm64"}; !slices.Equal(names, want) {
		t.Fatalf("SHA256SUMS lists %v, want %v", names, want)
	}
	if out, err := command(t, dist, nil, "sha256sum", "-c", "SHA256SUMS"); err != nil {
		t.Fatalf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
	}

	head := git(t, "rev-parse", "HEAD")
	modified := git(t, "status", "--porcelain") != ""
	for _, tc := range []struct {
		arch    string
		machine elf.Machine
	}{
		{"amd64", elf.EM_X86_64},
		{"arm64", elf.EM_AARCH64},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			path := filepath.Join(dist, "serf-hb-linux-"+tc.arch)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != list[filepath.Base(path)] {
				t.Errorf("SHA256SUMS says %s, the file's digest is %x", list[filepath.Base(path)], sum)
			}
			checkELF(t, path, tc.machine)
			checkBuildInfo(t, path, tc.arch, head, modified)
			if tc.arch == runtime.GOARCH && runtime.GOOS == "linux" {
				out, err := command(t, dist, nil, path, "--version")
				if err != nil {
					t.Fatalf("%s --version: %v\n%s", path, err, out)
				}
				if !slices.Contains(strings.Fields(out), version) {
					t.Errorf("%s --version printed %q, want the stamped %s", path, out, version)
				}
			}
		})
	}

	t.Run("reproducible", func(t *testing.T) {
		// Another run builds in another temporary clone: -trimpath must
		// keep that path, and anything else of the moment, out.
		again := t.TempDir()
		release(t, again, "amd64", version)
		if got, want := sums(t, filepath.Join(again, "SHA256SUMS"))["serf-hb-linux-amd64"], list["serf-hb-linux-amd64"]; got != want {
			t.Errorf("a second build of the same tree has sha256 %s, the first %s", got, want)
		}
	})

	t.Run("default version", func(t *testing.T) {
		if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
			t.Fatalf("no release binary runs on %s", runtime.GOARCH)
		}
		d := t.TempDir()
		release(t, d, runtime.GOARCH)
		want := git(t, "describe", "--tags", "--always", "--dirty")
		out, err := command(t, d, nil, filepath.Join(d, "serf-hb-linux-"+runtime.GOARCH), "--version")
		if err != nil {
			t.Fatalf("--version: %v\n%s", err, out)
		}
		if !slices.Contains(strings.Fields(out), want) {
			t.Errorf("--version printed %q, want git describe's %s", out, want)
		}
	})
}

// checkELF asserts path is a 64-bit ELF executable for machine, static
// (no program interpreter, no shared libraries) and stripped (-s -w).
func checkELF(t *testing.T, path string, machine elf.Machine) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != machine || f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC {
		t.Errorf("%s: %v %v %v, want %v ELFCLASS64 ET_EXEC", path, f.Machine, f.Class, f.Type, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v segment: not static", path, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", path, libs)
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_SYMTAB || strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("%s has section %s: not stripped (-s -w)", path, s.Name)
		}
	}
}

// checkBuildInfo asserts what the go command recorded in the binary.
func checkBuildInfo(t *testing.T, path, arch, head string, modified bool) {
	t.Helper()
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bi.Path != "github.com/serf-hb/serf-hb" || bi.GoVersion != runtime.Version() {
		t.Errorf("%s: built %s with %s, want github.com/serf-hb/serf-hb with %s", path, bi.Path, bi.GoVersion, runtime.Version())
	}
	got := map[string]string{}
	for _, s := range bi.Settings {
		got[s.Key] = s.Value
	}
	want := map[string]string{
		"-trimpath":    "true",
		"CGO_ENABLED":  "0",
		"GOOS":         "linux",
		"GOARCH":       arch,
		"vcs":          "git",
		"vcs.revision": head,
		"vcs.modified": map[bool]string{true: "true", false: "false"}[modified],
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: build setting %s=%q, want %q", path, k, got[k], v)
		}
	}
}

func TestReleaseRefusesBadVersion(t *testing.T) {
	requireTools(t)
	for _, v := range []string{"v1 -X main.x=y", "v1;id", "v1\n"} {
		t.Run(v, func(t *testing.T) {
			dist := t.TempDir()
			out, err := command(t, repoDir(t), []string{"DIST=" + dist}, "scripts/release.sh", v)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(out, "only letters, digits and ._+- are allowed") {
				t.Fatalf("release.sh %q: %v, want exit 2 and the rule\n%s", v, err, out)
			}
			if ents, _ := os.ReadDir(dist); len(ents) > 0 {
				t.Errorf("release.sh %q wrote %d files into DIST", v, len(ents))
			}
		})
	}
}
