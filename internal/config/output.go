package config

import (
	"flag"
	"path/filepath"

	"github.com/ambient-code/tokend/internal/tokendir"
)

// Outputs are the files written besides the token file (init, run, exec),
// each off while its path is empty.
type Outputs struct {
	// JSONFile is where the token and its expiry are written as one JSON
	// document (tokendir.JSON), with the token file's mode.
	JSONFile string
}

// jsonFile is listed among fileSpecs: every command that writes the token
// file takes it.
var jsonFile = &setting{name: "json-file", env: "TOKEND_JSON_FILE",
	usage: "also write the token with its expiry as a JSON document to this file (empty disables)",
	value: func(c *Config) flag.Value { return stringVar(&c.Outputs.JSONFile) }}

// buildOutputs reads the outputs' settings. A path follows the token
// file's rules: its directory exists and is writable, and the file is
// regular or absent (a full volume is found when writing); it must not be
// the token file.
func (c *Config) buildOutputs(p *problems) {
	path := c.Outputs.JSONFile
	if path == "" {
		return
	}
	if c.TokenFile != "" && filepath.Clean(path) == filepath.Clean(c.TokenFile) {
		p.add(jsonFile, "%s is the token file: name another file, e.g. %s.json", path, c.TokenFile)
		c.Outputs.JSONFile = ""
		return
	}
	if c.FileMode != 0 {
		if err := tokendir.CheckFile(path); err != nil && !volumeFull(err) {
			p.add(jsonFile, "%v", err)
			c.Outputs.JSONFile = ""
		}
	}
}
