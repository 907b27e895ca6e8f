package health

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// StatusPath is where the probe listener answers with Status, for `tokend
// check` in another process. It is read-only, like every path there.
const StatusPath = "/statusz"

// Status is what the running daemon knows about the token it last stored,
// as JSON. It never holds the token: Fingerprint identifies it.
type Status struct {
	// LastSuccess is the wall time of the last successful exchange (or
	// store of a token exchanged earlier), changed token or not.
	LastSuccess time.Time `json:"last_success"`
	// Fingerprint identifies the token stored last.
	Fingerprint string `json:"fingerprint"`
	// Expiry of that token on this node's clock; zero when unknown.
	Expiry time.Time `json:"expires_at,omitzero"`
	// Withdrawn is why the token was withdrawn after a definitive refusal
	// (no secret; the other fields describe the token held before), or
	// empty while a token is held.
	Withdrawn string `json:"withdrawn,omitempty"`
}

func (m *Monitor) serveStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	cur := m.current.Load()
	if cur == nil {
		http.Error(w, "no token stored yet", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	st := *cur
	if why := m.withdrawn.Load(); why != nil {
		st.Withdrawn = *why
	}
	_ = json.NewEncoder(w).Encode(st)
}

// FetchStatus asks the daemon whose probe listener is at addr (host:port as
// configured; an empty or unspecified host means this host) for its Status.
// It gives up after timeout, and never blocks longer.
func FetchStatus(addr string, timeout time.Duration) (Status, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Status{}, fmt.Errorf("health address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + StatusPath
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil, MaxResponseHeaderBytes: 16 << 10}}
	resp, err := client.Get(url)
	if err != nil {
		return Status{}, fmt.Errorf("asking tokend run at %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return Status{}, fmt.Errorf("reading %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		line, _, _ := strings.Cut(string(body[:min(len(body), 200)]), "\n")
		return Status{}, fmt.Errorf("%s answered %d: %s", url, resp.StatusCode, line)
	}
	var st Status
	if err := json.Unmarshal(body, &st); err != nil || st.LastSuccess.IsZero() {
		return Status{}, errors.Join(fmt.Errorf("%s: not a tokend status", url), err)
	}
	return st, nil
}
