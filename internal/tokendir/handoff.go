package tokendir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ambient-code/tokend/internal/exchange"
	"github.com/ambient-code/tokend/internal/secret"
)

// Handoff is the note `tokend init` leaves for the `tokend run` (or exec)
// that starts after it in the same pod, so that run can take the token
// instead of exchanging again at once: which token init wrote, when, from
// which issuer, and when it expires (on this node's clock; absent when
// unknown). It is the hidden file ".<token file's name>.tokend-init" beside
// the token file, with its mode, holding one JSON object and no secret:
//
//	{"fingerprint":"3f9a0c21d4e7","expires_at":"2026-11-29T12:30:00.5Z","written_at":"2026-11-29T12:15:00.1Z","issuer":"encrypted-session http://cp:8080/token"}
type Handoff struct {
	Fingerprint string    `json:"fingerprint"`
	Expiry      time.Time `json:"expires_at,omitzero"`
	WrittenAt   time.Time `json:"written_at"`
	Issuer      string    `json:"issuer"`
}

// ErrNoHandoff is TakeHandoff's error when there is no handoff: run was
// not preceded by init, or another run took it.
var ErrNoHandoff = errors.New("no handoff from tokend init")

// handoffPath is the handoff's path, beside the token file.
func (d *Dir) handoffPath() string {
	tf := d.TokenFile()
	return filepath.Join(filepath.Dir(tf), "."+filepath.Base(tf)+".tokend-init")
}

// WriteHandoff writes, atomically (WriteFile, whose errors it returns),
// the handoff for tok, which the last Store wrote, obtained from issuer (a
// name the reader compares with its own).
func (d *Dir) WriteHandoff(tok exchange.Token, issuer string) error {
	data, err := json.Marshal(Handoff{Fingerprint: tok.Value.Fingerprint(), Expiry: tok.Expiry.Round(0),
		WrittenAt: d.now().Round(0), Issuer: issuer})
	if err != nil {
		return err
	}
	_, err = WriteFile(d.handoffPath(), append(data, '\n'), d.mode)
	return err
}

// TakeHandoff reads the handoff, removes it (it is for one reader), and
// returns it with the token the token file holds now. It fails with
// ErrNoHandoff when there is none, and with an error naming the file when
// the handoff is unreadable or malformed, when the token file cannot be
// read (ReadToken), or when the token file no longer holds the token the
// handoff describes (it was written since).
func (d *Dir) TakeHandoff() (Handoff, secret.String, error) {
	path := d.handoffPath()
	data, err := readFile(path, maxRead)
	if errors.Is(err, fs.ErrNotExist) {
		return Handoff{}, secret.String{}, ErrNoHandoff
	}
	if rmErr := os.Remove(path); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) && err == nil {
		err = fmt.Errorf("removing it: %w", rmErr)
	}
	if err != nil {
		return Handoff{}, secret.String{}, fmt.Errorf("handoff %s: %w", path, err)
	}
	var h Handoff
	if err := json.Unmarshal(data, &h); err != nil || h.Fingerprint == "" || h.WrittenAt.IsZero() {
		return Handoff{}, secret.String{}, fmt.Errorf("handoff %s is not the JSON tokend init writes", path)
	}
	tok, err := ReadToken(d.TokenFile())
	if err != nil {
		return Handoff{}, secret.String{}, err
	}
	if fp := tok.Fingerprint(); fp != h.Fingerprint {
		return Handoff{}, secret.String{}, fmt.Errorf("token file holds %s, not the token %s tokend init wrote", fp, h.Fingerprint)
	}
	return h, tok, nil
}
