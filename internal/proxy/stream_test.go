package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestSSEDeliversEachEvent: each event the upstream writes reaches the
// client while the stream stays open; the upstream writes the next one
// only after the client has read the last, so a buffering proxy hangs.
func TestSSEDeliversEachEvent(t *testing.T) {
	next := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := range 3 {
			if i > 0 {
				<-next
			}
			fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
			if err := rc.Flush(); err != nil {
				t.Error(err)
				return
			}
		}
		<-r.Context().Done() // the stream stays open until the client leaves
	})
	src := newSource()
	src.set("tok-sse", noExpiry)
	r := start(t, up, src, nil, nil)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		if i > 0 {
			next <- struct{}{}
		}
		ev, err := readEvent(br)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := fmt.Sprintf("id: %d\ndata: event %d\n", i, i); ev != want {
			t.Fatalf("event %d = %q, want %q", i, ev, want)
		}
	}
}

// readEvent reads one server-sent event, up to its blank line.
func readEvent(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return b.String(), err
		}
		if line == "\n" {
			return b.String(), nil
		}
		b.WriteString(line)
	}
}

// TestUploadStreams: a chunked upload reaches the upstream while the client
// is still sending: the client writes the next chunk only after the
// upstream has read the last one, so a buffering proxy hangs.
func TestUploadStreams(t *testing.T) {
	got := make(chan string)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				got <- string(buf[:n])
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
		close(got)
		fmt.Fprint(w, "done")
	})
	src := newSource()
	src.set("tok-upload", noExpiry)
	r := start(t, up, src, nil, nil)

	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, r.url+"/upload", pr)
	res := async(req)
	chunk := strings.Repeat("x", 256<<10) // larger than any buffer on the way
	for i := range 4 {
		if _, err := io.WriteString(pw, chunk); err != nil {
			t.Fatal(err)
		}
		var seen int
		for seen < len(chunk) {
			s := <-got
			seen += len(s)
		}
		if seen != len(chunk) {
			t.Fatalf("chunk %d: upstream saw %d bytes, want %d", i, seen, len(chunk))
		}
	}
	pw.Close()
	if s, open := <-got; open {
		t.Fatalf("upstream got %d bytes after the end", len(s))
	}
	if r := <-res; r.err != nil || r.code != http.StatusOK || r.body != "done" {
		t.Fatalf("client got %d %q %v", r.code, r.body, r.err)
	}
}

// TestClientCancelCancelsUpstream: when the client goes away, the
// upstream's request context ends.
func TestClientCancelCancelsUpstream(t *testing.T) {
	entered, canceled := make(chan struct{}), make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
		close(canceled)
	})
	src := newSource()
	src.set("tok-cancel", noExpiry)
	r := start(t, up, src, nil, nil)

	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/slow", nil)
	res := async(req)
	<-entered
	cancel()
	<-canceled
	if err := (<-res).err; err == nil {
		t.Fatal("the canceled request succeeded")
	}
	if n := r.counter(t, "tokend_proxy_requests_total", map[string]string{"outcome": OutcomeCanceled, "code_class": "none"}); n != 1 {
		t.Errorf("canceled = %v, want 1", n)
	}
}
