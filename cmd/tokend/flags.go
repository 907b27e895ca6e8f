package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// flags is one command's settings, each a flag with an environment
// fallback: a flag wins over its variable, which wins over the default; a
// variable set but empty is unset (but --health-addr's: empty disables).
type flags struct {
	*flag.FlagSet
	env      map[string]string // flag name → its variable
	order    []string          // flag names, in help order
	fromFlag map[string]bool   // given on the command line
	given    map[string]bool   // given by a flag or a variable
	errs     []error           // the problems, each naming its setting
}

// add registers a setting: its typed target (*string, *bool, positive
// *time.Duration, *slog.Level, or a func that parses into its own), flag,
// variable, default ("" none) and usage ("" hidden). A problem with the
// trimmed text is recorded, never returned, so the parse reports every one.
func (f *flags) add(target any, name, env, def, usage string) {
	var set func(string) error
	switch p := target.(type) {
	case *string:
		set = func(s string) error { *p = s; return nil }
	case *bool:
		set = func(s string) (err error) {
			if *p, err = strconv.ParseBool(s); err != nil {
				return fmt.Errorf("must be true or false, not %q", s)
			}
			return nil
		}
	case *time.Duration:
		set = func(s string) error {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("must be a Go duration such as 30s or 5m, not %q", s)
			} else if d <= 0 {
				return fmt.Errorf("must be positive, not %s", s)
			}
			*p = d
			return nil
		}
	case *slog.Level:
		set = func(s string) error {
			if p.UnmarshalText([]byte(s)) != nil {
				return fmt.Errorf("must be debug, info, warn or error, not %q", s)
			}
			return nil
		}
	case func(string) error:
		set = p
	default:
		panic(fmt.Sprintf("flags: no setter for %T", target))
	}
	parse := func(s string) error {
		f.given[name] = true
		if err := set(strings.TrimSpace(s)); err != nil {
			f.problemf(name, "%w", err)
		}
		return nil
	}
	if _, isBool := target.(*bool); isBool {
		f.BoolFunc(name, usage, parse)
	} else {
		f.Func(name, usage, parse)
	}
	f.Lookup(name).DefValue = def
	f.env[name] = env
	f.order = append(f.order, name)
	if def != "" {
		set(def)
	}
}

// fromEnv gives every setting that no flag set the value of its variable
// in env, when set.
func (f *flags) fromEnv(env map[string]string) {
	f.Visit(func(fl *flag.Flag) { f.fromFlag[fl.Name] = true })
	for _, name := range f.order {
		v, ok := env[f.env[name]]
		if ok && !f.fromFlag[name] && (v != "" || name == "health-addr") {
			f.Set(name, v)
		}
	}
}

// label names a setting as every message does: "VARIABLE (--flag)".
func (f *flags) label(name string) string { return label(name, f.env[name]) }

func label(name, env string) string { return env + " (--" + name + ")" }

// problemf adds a problem with the setting name: its label, then format.
func (f *flags) problemf(name, format string, args ...any) {
	f.errs = append(f.errs, fmt.Errorf("%s: "+format, append([]any{f.label(name)}, args...)...))
}

// usage prints a command's help: static defaults only, never a value
// taken from the environment.
func (f *flags) usage(w io.Writer, command string) {
	args := ""
	if command == "exec" {
		args = " -- CMD [ARGS...]"
	}
	fmt.Fprintf(w, "Usage: tokend %s [flags]%s\n\n%s\n\nFlags (each falls back to its environment variable):\n", command, args, summaries[command])
	for _, name := range f.order {
		fl, def := f.Lookup(name), ""
		if fl.Usage == "" {
			continue
		}
		if fl.DefValue != "" {
			def = " (default " + fl.DefValue + ")"
		}
		fmt.Fprintf(w, "  --%-20s %s%s [$%s]\n", name, fl.Usage, def, f.env[name])
	}
}

// invalidError is invalid configuration or usage, every problem at once
// (errors.Join); exitCode maps it to status 2.
type invalidError struct{ problems error }

func invalid(errs ...error) error { return &invalidError{errors.Join(errs...)} }

func (e *invalidError) Error() string {
	return "invalid configuration:\n  - " + strings.ReplaceAll(e.problems.Error(), "\n", "\n  - ")
}

func (e *invalidError) Unwrap() error { return e.problems }

// tokendVar matches the variables that are tokend's: one that no setting
// knows is a mistake (a typo, or a setting that went), not a variable of
// another program.
var tokendVar = regexp.MustCompile(`^(TOKEND|AMBIENT_CP_TOKEN|AMBIENT_CP_CA)_`)

// serviceLink matches the variables Kubernetes sets for each Service of
// the namespace (a Service named tokend gives TOKEND_SERVICE_HOST).
var serviceLink = regexp.MustCompile(`_SERVICE_(HOST|PORT)(_.*)?$|_PORT(_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?$`)

// unknownVariables adds a problem for each variable of env that tokendVar
// matches and no setting of any command reads, naming the closest
// setting. known maps every variable a setting reads to its label.
func (f *flags) unknownVariables(env, known map[string]string) {
	settings := slices.Sorted(maps.Keys(known)) // MinFunc keeps the first of a tie
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if known[name] != "" || !tokendVar.MatchString(name) || serviceLink.MatchString(name) {
			continue
		}
		best := slices.MinFunc(settings, func(a, b string) int { return cmp.Compare(distance(name, a), distance(name, b)) })
		f.errs = append(f.errs, fmt.Errorf("%s: tokend has no such setting (the closest is %s): rename or remove the variable", name, known[best]))
	}
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	row := make([]int, len(b)+1)
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(a); i++ {
		prev := row[0]
		row[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			prev, row[j] = row[j], min(row[j]+1, row[j-1]+1, prev+cost)
		}
	}
	return row[len(b)]
}
