// Command elfcheck reports whether Linux executables are statically linked:
// no program interpreter (PT_INTERP) and no shared library dependencies
// (DT_NEEDED). Such a binary runs on an image with no C library, like
// distroless static.
//
//	go run ./hack/elfcheck bin/tokend
//
// It exits 0 when every file is static, 1 when one is not (naming what it
// needs), 2 on a usage error.
package main

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: elfcheck FILE...")
		return 2
	}
	code := 0
	for _, name := range args {
		if err := checkStatic(name); err != nil {
			fmt.Fprintf(stderr, "elfcheck: %v\n", err)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: static ELF executable (no PT_INTERP, no DT_NEEDED)\n", name)
	}
	return code
}

// checkStatic returns nil when name is an ELF executable that needs neither
// a program interpreter nor shared libraries.
func checkStatic(name string) error {
	f, err := elf.Open(name)
	if err != nil {
		return fmt.Errorf("%s: not an ELF file: %w", name, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s: ELF type %v is not an executable", name, f.Type)
	}
	var problems []string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(io.LimitReader(p.Open(), 4096))
			problems = append(problems, fmt.Sprintf("program interpreter %q", trimNUL(interp)))
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: reading DT_NEEDED: %w", name, err)
	}
	for _, lib := range libs {
		problems = append(problems, "shared library "+lib)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: not static: needs %s", name, strings.Join(problems, ", "))
	}
	return nil
}

func trimNUL(b []byte) string {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return string(b)
}
