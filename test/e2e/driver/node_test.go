package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestParseCRILog: full lines are kept with their time; a line the runtime
// split (tag P) is joined to the rest of it.
func TestParseCRILog(t *testing.T) {
	in := "2026-01-02T03:04:05.000000001Z stdout F start: uid 65532 gid 65532, token sha256 0123456789ab, owner uid 65532\n" +
		"2026-01-02T03:04:06Z stdout P {\"msg\":\"token \n" +
		"2026-01-02T03:04:06.5Z stdout F updated\",\"fingerprint\":\"ba9876543210\"}\n" +
		"2026-01-02T03:04:07Z stderr F \n"
	lines, err := parseCRILog(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3: %q", len(lines), lines)
	}
	if want := time.Date(2026, 1, 2, 3, 4, 5, 1, time.UTC); !lines[0].Time.Equal(want) {
		t.Errorf("time %v, want %v", lines[0].Time, want)
	}
	if got := hashIn(lines[0].Text); got != "0123456789ab" {
		t.Errorf("hashIn = %q", got)
	}
	if lines[1].Text != `{"msg":"token updated","fingerprint":"ba9876543210"}` {
		t.Errorf("joined line %q", lines[1].Text)
	}
	if lines[2].Text != "" {
		t.Errorf("empty line read as %q", lines[2].Text)
	}
	if _, err := parseCRILog(strings.NewReader("yesterday stdout F x\n")); err == nil {
		t.Error("a line without a time was accepted")
	}
}

// TestGetFindsTheStaticPod: the node finds a static pod by its name with
// the node's suffix in the kubelet's /pods, and reads its containers'
// status.
func TestGetFindsTheStaticPod(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/pods" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"kind":"PodList","items":[
			{"metadata":{"name":"session-job-other","namespace":"default","uid":"u0"}},
			{"metadata":{"name":"session-job-e2e-node","namespace":"default","uid":"u1"},
			 "status":{"phase":"Running","conditions":[{"type":"Ready","status":"False"}],
			  "initContainerStatuses":[{"name":"tokend","ready":false,"started":true,"restartCount":1,
			   "containerID":"containerd://abc","state":{"running":{"startedAt":"2026-01-02T03:04:05Z"}}}]}}]}`))
	}))
	defer srv.Close()
	n := &node{kubelet: srv.URL, name: "e2e-node"}
	p, err := n.get(t.Context(), "session-job")
	if err != nil || p == nil {
		t.Fatalf("get: %v, %v", p, err)
	}
	if p.Metadata.UID != "u1" || p.condition("Ready") != "False" || !p.running("tokend") || p.container("tokend").RestartCount != 1 {
		t.Errorf("read %s", describe(p))
	}
	if p, err := n.get(t.Context(), "runner"); p != nil || err != nil {
		t.Errorf("an absent pod: %v, %v", p, err)
	}
}
