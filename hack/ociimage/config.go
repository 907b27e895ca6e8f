package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"
)

// config is the parsed command line.
type config struct {
	out, name   string
	adds        []add
	symlinks    []symlink
	entrypoint  []string
	cmd         []string
	env         []string
	uid, gid    int
	platform    platform // zero until read from an executable
	platformSet bool     // -platform given
	created     time.Time
}

type add struct{ src, dst string }

type symlink struct{ link, target string }

// textFlags are the flags parsed after the flag set is done.
type textFlags struct{ user, platform, created string }

// parse reads the flags and reports every problem at once.
func parse(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	cfg := &config{name: "ghcr.io/ambient-code/tokend:latest"}
	fs, text := newFlagSet(cfg, stderr)
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	var problems []error
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Errorf("unexpected argument %q: every input is a flag (-add SRC:DST)", fs.Arg(0)))
	}
	problems = append(problems, cfg.validate(text, getenv)...)
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %w", errUsage, errors.Join(problems...))
	}
	return cfg, nil
}

// newFlagSet defines the flags: the repeated ones append to cfg as they
// are parsed, the rest land in cfg or in the returned textFlags.
func newFlagSet(cfg *config, stderr io.Writer) (*flag.FlagSet, *textFlags) {
	fs := flag.NewFlagSet("ociimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	text := new(textFlags)
	fs.StringVar(&cfg.out, "o", "", "the archive to write")
	fs.StringVar(&cfg.name, "name", cfg.name, "the image's name, REPOSITORY[:TAG]")
	fs.StringVar(&text.user, "user", "65532:65532", "UID:GID to run as, numeric and non-root")
	fs.StringVar(&text.platform, "platform", "", "OS/ARCH, e.g. linux/arm64; default: read from the first ELF executable added")
	fs.StringVar(&text.created, "created", "", "RFC 3339 time stamp; default SOURCE_DATE_EPOCH, else the Unix epoch")
	fs.Func("add", "SRC:DST, a file to add (repeatable)", func(v string) error {
		i := strings.LastIndex(v, ":")
		if i <= 0 {
			return fmt.Errorf("%q is not SRC:DST, e.g. -add bin/tokend:/tokend", v)
		}
		cfg.adds = append(cfg.adds, add{src: v[:i], dst: v[i+1:]})
		return nil
	})
	fs.Func("symlink", "LINK:TARGET, a symbolic link (repeatable)", func(v string) error {
		link, target, ok := strings.Cut(v, ":")
		if !ok || link == "" || target == "" {
			return fmt.Errorf("%q is not LINK:TARGET, e.g. -symlink /bin/sh:busybox", v)
		}
		cfg.symlinks = append(cfg.symlinks, symlink{link, target})
		return nil
	})
	appendTo := func(list *[]string) func(string) error {
		return func(v string) error { *list = append(*list, v); return nil }
	}
	fs.Func("entrypoint", "one element of the entrypoint (repeatable)", appendTo(&cfg.entrypoint))
	fs.Func("cmd", "one default argument (repeatable)", appendTo(&cfg.cmd))
	fs.Func("env", "KEY=VALUE (repeatable)", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return fmt.Errorf("%q is not KEY=VALUE", v)
		}
		cfg.env = append(cfg.env, v)
		return nil
	})
	return fs, text
}

// validate checks the parsed flags, completes cfg from text, and returns
// every problem.
func (cfg *config) validate(text *textFlags, getenv func(string) string) []error {
	var problems []error
	bad := func(format string, a ...any) { problems = append(problems, fmt.Errorf(format, a...)) }
	if cfg.out == "" {
		bad("-o is required: the archive to write, e.g. -o tokend-image.tar")
	}
	if err := checkName(cfg.name); err != nil {
		bad("-name %q: %v", cfg.name, err)
	} else if !strings.Contains(cfg.name[strings.LastIndex(cfg.name, "/")+1:], ":") {
		cfg.name += ":latest"
	}
	if len(cfg.adds) == 0 {
		bad("no -add: give at least the executable, e.g. -add bin/tokend:/tokend")
	}
	problems = append(problems, cfg.checkPaths()...)
	var err error
	if cfg.uid, cfg.gid, err = parseUser(text.user); err != nil {
		bad("-user %q: %v", text.user, err)
	}
	if text.platform != "" {
		if cfg.platform, err = parsePlatform(text.platform); err != nil {
			bad("-platform %q: %v", text.platform, err)
		}
		cfg.platformSet = true
	}
	if cfg.created, err = parseCreated(text.created, getenv("SOURCE_DATE_EPOCH")); err != nil {
		problems = append(problems, err)
	}
	return problems
}

// checkPaths: every path made in the image is a clean absolute path, and
// given once.
func (cfg *config) checkPaths() []error {
	var problems []error
	given := make(map[string]string)
	claim := func(flagName, p string) {
		switch {
		case !path.IsAbs(p) || path.Clean(p) != p || p == "/":
			problems = append(problems, fmt.Errorf("%s: %q must be a clean absolute path in the image, such as /tokend", flagName, p))
		case given[p] != "":
			problems = append(problems, fmt.Errorf("%s: %s is given twice (also by %s)", flagName, p, given[p]))
		default:
			given[p] = flagName
		}
	}
	for _, a := range cfg.adds {
		claim("-add "+a.src, a.dst)
	}
	for _, s := range cfg.symlinks {
		claim("-symlink", s.link)
	}
	return problems
}

// checkName accepts REPOSITORY[:TAG]: a lower-case repository, no digest.
func checkName(name string) error {
	repo := name
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		repo = name[:i]
	}
	switch {
	case repo == "" || strings.ContainsAny(name, " \t\n@"):
		return errors.New("want REPOSITORY[:TAG], such as ghcr.io/ambient-code/tokend:v1.2.3, without spaces or a digest")
	case strings.ToLower(repo) != repo:
		return errors.New("the repository must be lower case")
	}
	return nil
}

func parseUser(s string) (uid, gid int, err error) {
	u, g, ok := strings.Cut(s, ":")
	if uid, err = strconv.Atoi(u); ok && err == nil {
		gid, err = strconv.Atoi(g)
	}
	switch {
	case !ok || err != nil || uid < 0 || gid < 0:
		return 0, 0, errors.New("want numeric UID:GID, such as 65532:65532 (a name needs /etc/passwd lookups a runtime may not do)")
	case uid == 0:
		return 0, 0, errors.New("the image must run as a non-root user (the restricted Pod Security Standard): use 65532:65532")
	}
	return uid, gid, nil
}

func parseCreated(flagValue, epoch string) (time.Time, error) {
	switch {
	case flagValue != "":
		t, err := time.Parse(time.RFC3339, flagValue)
		if err != nil {
			return time.Time{}, fmt.Errorf("-created %q: want an RFC 3339 time, such as 2026-01-02T15:04:05Z", flagValue)
		}
		return t.UTC(), nil
	case epoch != "":
		s, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since the Unix epoch, or unset it", epoch)
		}
		return time.Unix(s, 0).UTC(), nil
	}
	return time.Unix(0, 0).UTC(), nil
}
