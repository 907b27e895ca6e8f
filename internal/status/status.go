// Package status records what the daemon knows about the token on disk, for
// `tokend check` running in another process.
//
// The record lives beside the token file as ".<name>.tokend-status" (JSON),
// written with the same atomic writer. It never holds the token: only a
// fingerprint, so that a record left over from an older token is recognised
// and ignored.
package status

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ambient-code/tokend/internal/filewriter"
)

// Record is the content of the status file.
type Record struct {
	// LastSuccess is the wall time of the last successful exchange, whether
	// or not it changed the token.
	LastSuccess time.Time `json:"last_success"`
	// Fingerprint identifies the token the record describes.
	Fingerprint string `json:"fingerprint"`
	// Expiry of that token; zero when unknown.
	Expiry time.Time `json:"expires_at,omitzero"`
}

// Path returns the status file's path for a token file.
func Path(tokenFile string) string {
	return filepath.Join(filepath.Dir(tokenFile), "."+filepath.Base(tokenFile)+".tokend-status")
}

// Save writes r for tokenFile atomically with the given mode.
func Save(tokenFile string, mode fs.FileMode, r Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	_, err = filewriter.New(Path(tokenFile), mode).Write(data)
	return err
}

// CleanTemp removes the temporary files that a crash in the middle of Save
// left beside tokenFile, and returns how many it removed. Call it before
// the first Save, from the only process writing the record.
func CleanTemp(tokenFile string) (int, error) {
	return filewriter.New(Path(tokenFile), 0).CleanTemp()
}

// Load reads the record for tokenFile. It returns an error wrapping
// fs.ErrNotExist when there is none.
func Load(tokenFile string) (Record, error) {
	var r Record
	data, err := os.ReadFile(Path(tokenFile))
	if err != nil {
		return r, fmt.Errorf("status: %w", err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("status: %s is corrupt: %w", Path(tokenFile), err)
	}
	return r, nil
}
