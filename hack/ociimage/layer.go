package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// platform is an image's OS and architecture, as the OCI image config
// names them (GOOS and GOARCH values).
type platform struct{ os, arch, variant string }

func (p platform) String() string {
	if p.variant != "" {
		return p.os + "/" + p.arch + "/" + p.variant
	}
	return p.os + "/" + p.arch
}

func parsePlatform(s string) (platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return platform{}, errors.New("want OS/ARCH[/VARIANT], such as linux/amd64 or linux/arm/v7")
	}
	p := platform{os: parts[0], arch: parts[1]}
	if len(parts) == 3 {
		p.variant = parts[2]
	}
	return p, nil
}

// elfArch maps an ELF machine to its GOARCH.
var elfArch = map[elf.Machine]string{
	elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64", elf.EM_386: "386", elf.EM_ARM: "arm",
	elf.EM_PPC64: "ppc64le", elf.EM_S390: "s390x", elf.EM_RISCV: "riscv64", elf.EM_LOONGARCH: "loong64",
}

// inspectELF reports the platform of an ELF executable, ok false when the
// file is not ELF, and an error when it is an ELF executable that needs a
// program interpreter, which an image without a C library lacks.
func inspectELF(name string) (p platform, ok bool, err error) {
	f, err := elf.Open(name)
	if err != nil {
		return platform{}, false, nil // not ELF: a data file, a script
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return platform{}, true, fmt.Errorf("-add %s: a dynamically linked executable (it needs a program interpreter), "+
				"and the image has no C library: build it static (CGO_ENABLED=0, as hack/build.sh does)", name)
		}
	}
	arch, known := elfArch[f.Machine]
	if !known {
		return platform{}, true, fmt.Errorf("-add %s: ELF machine %v: set -platform", name, f.Machine)
	}
	return platform{os: "linux", arch: arch}, true, nil
}

// entry is one file, directory or symbolic link of the layer.
type entry struct {
	hdr  tar.Header
	data []byte
}

// tree is the layer's entries by name ("etc/passwd", "tmp/").
type tree map[string]entry

func (t tree) file(name string, mode int64, uid, gid int, data []byte) {
	t[name] = entry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: uid, Gid: gid, Size: int64(len(data))}, data}
}

func (t tree) dir(name string, mode int64, uid, gid int) {
	t[name+"/"] = entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: gid}}
}

// addParents adds every missing parent directory, root-owned.
func (t tree) addParents() {
	for name := range t {
		for d := path.Dir(strings.TrimSuffix(name, "/")); d != "."; d = path.Dir(d) {
			if _, ok := t[d+"/"]; !ok {
				t.dir(d, 0o755, 0, 0)
			}
		}
	}
}

// layer is the image's one layer: its gzip-compressed tar and the digest
// of the uncompressed tar (the config's diff_id).
type layer struct {
	data   []byte
	diffID string
}

// buildLayer assembles the layer from cfg. It reads every added file, and
// sets cfg.platform from the first ELF executable unless -platform did.
func buildLayer(cfg *config) (*layer, error) {
	t := tree{}
	// What distroless's nonroot image has for its user, with the user of -user.
	t.file("etc/passwd", 0o644, 0, 0, fmt.Appendf(nil,
		"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", cfg.uid, cfg.gid))
	t.file("etc/group", 0o644, 0, 0, fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", cfg.gid))
	t.dir("home/nonroot", 0o700, cfg.uid, cfg.gid)
	t.dir("tmp", 0o1777, 0, 0)
	errs := cfg.addFiles(t)
	for _, s := range cfg.symlinks {
		t[s.link[1:]] = entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: s.link[1:], Linkname: s.target, Mode: 0o777}}
	}
	if cfg.platform == (platform{}) && len(errs) == 0 {
		errs = append(errs, errors.New("no ELF executable among the files added: set -platform, such as -platform linux/amd64"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	t.addParents()
	return writeLayer(t, cfg.created)
}

// addFiles reads each -add file into t, root-owned with its source's
// permission bits, and takes the platform from the first ELF executable.
func (cfg *config) addFiles(t tree) []error {
	var errs []error
	for _, a := range cfg.adds {
		fi, err := os.Stat(a.src)
		if err == nil && !fi.Mode().IsRegular() {
			err = fmt.Errorf("not a regular file (%v): add files one by one", fi.Mode().Type())
		}
		var data []byte
		if err == nil {
			data, err = os.ReadFile(a.src)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("-add %s: %w", a.src, err))
			continue
		}
		p, isELF, err := inspectELF(a.src)
		switch {
		case err != nil:
			errs = append(errs, err)
		case !isELF || cfg.platformSet:
		case cfg.platform == (platform{}):
			cfg.platform = p
		case p != cfg.platform:
			errs = append(errs, fmt.Errorf("-add %s: built for %v, but an earlier executable for %v: add executables of one platform", a.src, p, cfg.platform))
		}
		t.file(a.dst[1:], int64(fi.Mode().Perm()), 0, 0, data)
	}
	return errs
}

// writeLayer writes the entries in name order, each stamped with mtime,
// and compresses the tar with gzip, with no name or time in its header.
func writeLayer(files tree, mtime time.Time) (*layer, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, n := range names {
		e := files[n]
		e.hdr.ModTime = mtime
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", n, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return &layer{data: gz.Bytes(), diffID: digestOf(raw.Bytes())}, nil
}
