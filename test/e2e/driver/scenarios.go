package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ambient-code/tokend/test/e2e/standin"
)

// openShiftUID is the user the OpenShift pod is assigned
// (staticpod.OpenShiftUID in test/e2e/staticpod).
const openShiftUID = "1000680000"

type status string

const (
	statusPass status = "PASS"
	statusFail status = "FAIL"
	statusSkip status = "SKIP"
)

// result is one scenario's row of the table.
type result struct {
	id, name string
	status   status
	steps    []step
	note     string
}

// step is one timed part of a scenario, for the table only: no assertion
// reads it.
type step struct {
	name string
	secs float64
}

type cost struct {
	name string
	secs float64
}

// scenarios runs the scenarios against one node and its stand-ins.
type scenarios struct {
	*config
	n  *node
	cp *standin.ControlPlane
	up *standin.Upstream
}

// scenario is one scenario on a running pod.
type scenario struct {
	id, name string
	fn       func(ctx context.Context, r *podRun) error
}

// podRun is a static pod in use by scenarios, and the row being filled.
type podRun struct {
	file, name string // the rendered file's name, and the pod's
	res        *result
}

func (s *scenarios) all(ctx context.Context) []result {
	var out []result
	out = append(out, s.onPod(ctx, "mcp-job", "session-job",
		scenario{"1b", "the first token gates the workload: control plane unreachable at first", s.unreachableFirst},
		scenario{"4", "the sidecars end after the main container; the pod Succeeds", s.sidecarsEndLast})...)
	out = append(out, s.onPod(ctx, "runner-pod", "session-runner",
		scenario{"1a", "the first token gates the workload: control plane up", s.reachableFirst},
		scenario{"2", "rotations: each token tokend wrote reaches the consumers, whole", s.rotations},
		scenario{"3", "SIGKILL of tokend; then the control plane down", s.sigkill})...)
	out = append(out, s.onPod(ctx, "credential-proxy", "tokend-example",
		scenario{"5", "credential proxy: the agent, without the token, reaches the API", s.proxy})...)
	out = append(out, s.onPod(ctx, "openshift", "mcp-server",
		scenario{"6", "OpenShift variant under an assigned user " + openShiftUID, s.openshift},
		scenario{"7", "revocation: a refusal makes the pod not ready, the consumer sees no token", s.revocation})...)
	return out
}

// skipped is a scenario's error when the tokend under test cannot do what
// the scenario checks: the row says SKIP and why.
type skipped string

func (s skipped) Error() string { return string(s) }

// onPod runs scenarios in order on the pod file (named name), then deletes
// the pod. After a failure the rest of the pod's scenarios fail unrun.
func (s *scenarios) onPod(ctx context.Context, file, name string, list ...scenario) []result {
	var out []result
	failed := ""
	for _, sc := range list {
		res := &result{id: sc.id, name: sc.name, status: statusPass}
		if failed != "" {
			res.status, res.note = statusFail, "not run: scenario "+failed+" on the same pod failed"
			out = append(out, *res)
			continue
		}
		err := sc.fn(ctx, &podRun{file: file, name: name, res: res})
		var skip skipped
		if errors.As(err, &skip) {
			res.status, res.note = statusSkip, skip.Error()
			out = append(out, *res)
			continue
		}
		if err != nil {
			res.status, res.note, failed = statusFail, err.Error(), sc.id
			s.log.Error("scenario failed", "scenario", sc.id, "error", err)
			s.dump(ctx, name)
		}
		out = append(out, *res)
	}
	last := &out[len(out)-1]
	if err := s.step(ctx, last, "pod deleted", func(ctx context.Context) error { return s.n.stop(ctx, file, name) }); err != nil {
		last.status, last.note = statusFail, strings.TrimPrefix(last.note+"; ", "; ")+err.Error()
	}
	return out
}

// step runs fn with the step's patience and records how long it took.
func (s *scenarios) step(ctx context.Context, res *result, name string, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.patience)
	defer cancel()
	start := time.Now()
	err := fn(ctx)
	res.steps = append(res.steps, step{name, time.Since(start).Seconds()})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// until polls cond until it holds, failing with what when ctx ends first.
func (s *scenarios) until(ctx context.Context, what string, cond func() (bool, error)) error {
	var last error
	for {
		ok, err := cond()
		if ok && err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(s.n.poll):
		}
	}
}

// dump logs the pod's status after a failure: fingerprints and the
// containers' output lines, never a token.
func (s *scenarios) dump(ctx context.Context, name string) {
	p, err := s.n.get(ctx, name)
	if err != nil || p == nil {
		s.log.Error("no pod to show", "pod", name, "error", err)
		return
	}
	s.log.Error("pod status", "pod", name, "status", describe(p))
	for _, list := range [][]containerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, c := range list {
			for r := 0; r <= c.RestartCount; r++ {
				lines, _ := s.n.log(p, c.Name, r)
				for _, l := range lines[max(0, len(lines)-15):] {
					s.log.Error("output", "container", c.Name, "run", r, "line", l.Text)
				}
			}
		}
	}
}

// tokendLine is a line of tokend's JSON log.
type tokendLine struct {
	Msg         string `json:"msg"`
	Fingerprint string `json:"fingerprint"`
}

// tokens returns the fingerprints of the tokens tokend wrote in each of
// its runs so far, in order.
func (s *scenarios) tokens(p *pod) ([]string, error) {
	var fps []string
	c := p.container("tokend")
	if c == nil {
		return nil, nil
	}
	for r := 0; r <= c.RestartCount; r++ {
		lines, err := s.n.log(p, "tokend", r)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			var t tokendLine
			if json.Unmarshal([]byte(l.Text), &t) == nil && t.Msg == "token updated" && !slices.Contains(fps, t.Fingerprint) {
				fps = append(fps, t.Fingerprint)
			}
		}
	}
	return fps, nil
}

// said returns tokend's lines in run restart whose msg is msg.
func (s *scenarios) said(p *pod, restart int, msg string) []logLine {
	lines, _ := s.n.log(p, "tokend", restart)
	var out []logLine
	for _, l := range lines {
		var t tokendLine
		if json.Unmarshal([]byte(l.Text), &t) == nil && t.Msg == msg {
			out = append(out, l)
		}
	}
	return out
}

// seen returns the token fingerprints a reader printed, in order, each
// once, and its lines.
func (s *scenarios) seen(p *pod, container string) ([]string, []logLine, error) {
	lines, err := s.n.log(p, container, 0)
	if err != nil {
		return nil, nil, err
	}
	var fps []string
	for _, l := range lines {
		if fp := hashIn(l.Text); fp != "" && !slices.Contains(fps, fp) {
			fps = append(fps, fp)
		}
	}
	return fps, lines, nil
}

// hashIn returns the fingerprint after "sha256 " in a reader's line.
func hashIn(line string) string {
	_, rest, ok := strings.Cut(line, "sha256 ")
	if !ok || len(rest) < 12 {
		return ""
	}
	return rest[:12]
}

// firstLines waits until each container printed its first line, and
// returns them.
func (s *scenarios) firstLines(ctx context.Context, name string, containers ...string) (map[string]string, error) {
	first := map[string]string{}
	err := s.until(ctx, "a first line from "+strings.Join(containers, " and "), func() (bool, error) {
		p, err := s.n.get(ctx, name)
		if err != nil || p == nil {
			return false, err
		}
		for _, c := range containers {
			lines, err := s.n.log(p, c, 0)
			if err != nil || len(lines) == 0 {
				return false, err
			}
			first[c] = lines[0].Text
		}
		return true, nil
	})
	return first, err
}

// startedWithToken checks a reader's first line: it found a token on
// disk, one that tokend wrote.
func startedWithToken(container, line string, tokens []string) error {
	fp := hashIn(line)
	switch {
	case !strings.HasPrefix(line, "start:") || fp == "":
		return fmt.Errorf("%s started without a token: %q", container, line)
	case !slices.Contains(tokens, fp):
		return fmt.Errorf("%s first read %s, which tokend never wrote (tokend wrote %v)", container, fp, tokens)
	}
	return nil
}

func (s *scenarios) unreachableFirst(ctx context.Context, r *podRun) error {
	if err := s.cp.Set(standin.Down); err != nil {
		return err
	}
	var p *pod
	err := s.step(ctx, r.res, "pod started, control plane down", func(ctx context.Context) error {
		if err := s.n.start(r.file); err != nil {
			return err
		}
		return s.until(ctx, "tokend to log two failed exchanges", func() (bool, error) {
			var err error
			if p, err = s.n.get(ctx, r.name); err != nil || p == nil {
				return false, err
			}
			return len(s.said(p, 0, "exchange failed, will retry")) >= 2, nil
		})
	})
	if err != nil {
		return err
	}
	for _, c := range []string{"clone", "mcp", "runner"} {
		if st := p.container(c); st != nil && (st.State.Running != nil || st.State.Terminated != nil) {
			return fmt.Errorf("%s started while tokend had no token: %s", c, describe(p))
		}
	}
	var first map[string]string
	err = s.step(ctx, r.res, "control plane up, workload started", func(ctx context.Context) error {
		if err := s.cp.Set(standin.Up); err != nil {
			return err
		}
		first, err = s.firstLines(ctx, r.name, "clone", "mcp", "runner")
		return err
	})
	if err != nil {
		return err
	}
	if p, err = s.n.get(ctx, r.name); err != nil {
		return err
	}
	tokens, err := s.tokens(p)
	if err != nil {
		return err
	}
	if want := "git (stand-in): clone https://example.com/repo.git /workspace"; first["clone"] != want {
		return fmt.Errorf("clone printed %q, want %q", first["clone"], want)
	}
	for _, c := range []string{"mcp", "runner"} {
		if err := startedWithToken(c, first[c], tokens); err != nil {
			return err
		}
	}
	r.res.note = "tokend retried while the control plane was down; clone, mcp (a native sidecar) and runner started after the first token, and read it first"
	return nil
}

func (s *scenarios) sidecarsEndLast(ctx context.Context, r *podRun) error {
	var p *pod
	err := s.step(ctx, r.res, "runner done, pod Succeeded", func(ctx context.Context) error {
		var err error
		if p, err = s.n.get(ctx, r.name); err != nil || p == nil {
			return fmt.Errorf("no pod: %v", err)
		}
		if err := s.n.signal(ctx, p.container("runner").ContainerID, "SIGUSR1"); err != nil {
			return err
		}
		p, err = s.n.wait(ctx, r.name, "phase Succeeded", func(p *pod) bool { return p != nil && p.Status.Phase == "Succeeded" })
		return err
	})
	if err != nil {
		return err
	}
	// Each container ended with status 0 and said so; the order is read
	// from the containers' own log lines (nanoseconds) and agrees with the
	// kubelet's finish times (seconds).
	type end struct{ container, says string }
	var at []time.Time
	var finished []time.Time
	for _, e := range []end{{"runner", "done: "}, {"mcp", "stopping: TERM"}, {"tokend", `"msg":"stopped"`}} {
		st := p.container(e.container)
		if st == nil || st.State.Terminated == nil || st.State.Terminated.ExitCode != 0 {
			return fmt.Errorf("%s did not end with status 0: %s", e.container, describe(p))
		}
		lines, err := s.n.log(p, e.container, st.RestartCount)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(lines, func(l logLine) bool { return strings.Contains(l.Text, e.says) })
		if i < 0 {
			return fmt.Errorf("%s never printed %q", e.container, e.says)
		}
		at = append(at, lines[i].Time)
		finished = append(finished, st.State.Terminated.FinishedAt)
	}
	if !(at[0].Before(at[1]) && at[1].Before(at[2])) || finished[0].After(finished[1]) || finished[1].After(finished[2]) {
		return fmt.Errorf("the containers did not end runner, then mcp, then tokend: their last lines at %v, finished at %v", at, finished)
	}
	r.res.note = "runner ended, then the kubelet stopped mcp, then tokend (reverse order); all exited 0"
	return nil
}

func (s *scenarios) reachableFirst(ctx context.Context, r *podRun) error {
	if err := s.cp.Set(standin.Up); err != nil {
		return err
	}
	var first map[string]string
	err := s.step(ctx, r.res, "pod started, consumers read", func(ctx context.Context) error {
		if err := s.n.start(r.file); err != nil {
			return err
		}
		var err error
		first, err = s.firstLines(ctx, r.name, "git-credentials", "runner", "mcp")
		return err
	})
	if err != nil {
		return err
	}
	p, err := s.n.get(ctx, r.name)
	if err != nil {
		return err
	}
	tokens, err := s.tokens(p)
	if err != nil {
		return err
	}
	for _, c := range []string{"runner", "mcp"} {
		if err := startedWithToken(c, first[c], tokens); err != nil {
			return err
		}
	}
	if first["git-credentials"] != "sidecar: up" {
		return fmt.Errorf("git-credentials printed %q", first["git-credentials"])
	}
	r.res.note = "runner and mcp read the first token at their first read"
	return nil
}

// wantRotations is how many tokens tokend must have written for scenario 2.
const wantRotations = 4

func (s *scenarios) rotations(ctx context.Context, r *podRun) error {
	var tokens []string
	err := s.step(ctx, r.res, fmt.Sprintf("tokend wrote %d tokens", wantRotations), func(ctx context.Context) error {
		return s.until(ctx, fmt.Sprintf("%d tokens from tokend", wantRotations), func() (bool, error) {
			p, err := s.n.get(ctx, r.name)
			if err != nil || p == nil {
				return false, err
			}
			tokens, err = s.tokens(p)
			return len(tokens) >= wantRotations, err
		})
	})
	if err != nil {
		return err
	}
	tokens = tokens[:wantRotations]
	err = s.step(ctx, r.res, "consumers read each", func(ctx context.Context) error {
		return s.until(ctx, "runner and mcp to print every token tokend wrote", func() (bool, error) {
			p, err := s.n.get(ctx, r.name)
			if err != nil || p == nil {
				return false, err
			}
			for _, c := range []string{"runner", "mcp"} {
				fps, _, err := s.seen(p, c)
				if err != nil {
					return false, err
				}
				for _, t := range tokens {
					if !slices.Contains(fps, t) {
						return false, nil
					}
				}
			}
			return true, nil
		})
	})
	if err != nil {
		return err
	}
	if err := s.wholeReads(ctx, r.name); err != nil {
		return err
	}
	served := s.cp.Served()
	for _, t := range tokens {
		if !slices.Contains(served, t) {
			return fmt.Errorf("tokend wrote %s, which the control plane never handed out (it handed out %v)", t, served)
		}
	}
	r.res.note = fmt.Sprintf("%d tokens, each handed out by the control plane and read by runner and mcp; no other content read", wantRotations)
	return nil
}

// wholeReads checks that every content the readers saw is a token tokend
// wrote: a partial or foreign file would hash to something else.
func (s *scenarios) wholeReads(ctx context.Context, name string) error {
	p, err := s.n.get(ctx, name)
	if err != nil || p == nil {
		return fmt.Errorf("no pod: %v", err)
	}
	tokens, err := s.tokens(p)
	if err != nil {
		return err
	}
	for _, c := range []string{"runner", "mcp"} {
		fps, lines, err := s.seen(p, c)
		if err != nil {
			return err
		}
		for _, fp := range fps {
			if !slices.Contains(tokens, fp) {
				return fmt.Errorf("%s read content with sha256 %s, which is no token tokend wrote: a partial or foreign file", c, fp)
			}
		}
		for _, l := range lines {
			if strings.HasPrefix(l.Text, "token gone") || strings.Contains(l.Text, "no token") {
				return fmt.Errorf("%s: %q", c, l.Text)
			}
		}
	}
	return nil
}

func (s *scenarios) sigkill(ctx context.Context, r *podRun) error {
	p, err := s.n.get(ctx, r.name)
	if err != nil || p == nil {
		return fmt.Errorf("no pod: %v", err)
	}
	started := map[string]time.Time{}
	for _, c := range []string{"runner", "mcp"} {
		if !p.running(c) {
			return fmt.Errorf("%s is not running: %s", c, describe(p))
		}
		started[c] = p.container(c).State.Running.StartedAt
	}
	err = s.step(ctx, r.res, "SIGKILL, tokend restarted", func(ctx context.Context) error {
		if err := s.n.signal(ctx, p.container("tokend").ContainerID, "SIGKILL"); err != nil {
			return err
		}
		// The next exchange, the restarted tokend's first, gets a token of
		// its own, so that its write is seen.
		s.cp.Rotate()
		p, err = s.n.wait(ctx, r.name, "tokend restarted and ready, and the pod Ready", func(p *pod) bool {
			c := p.container("tokend")
			return c != nil && c.RestartCount >= 1 && c.Ready && p.condition("Ready") == "True"
		})
		return err
	})
	if err != nil {
		return err
	}
	var fresh string
	err = s.step(ctx, r.res, "new token read", func(ctx context.Context) error {
		return s.until(ctx, "the restarted tokend's token in runner and mcp", func() (bool, error) {
			p, err := s.n.get(ctx, r.name)
			if err != nil || p == nil {
				return false, err
			}
			lines, err := s.n.log(p, "tokend", p.container("tokend").RestartCount)
			if err != nil {
				return false, err
			}
			fresh = ""
			for _, l := range lines {
				var t tokendLine
				if json.Unmarshal([]byte(l.Text), &t) == nil && t.Msg == "token updated" {
					fresh = t.Fingerprint
				}
			}
			if fresh == "" {
				return false, nil
			}
			for _, c := range []string{"runner", "mcp"} {
				fps, _, err := s.seen(p, c)
				if err != nil || !slices.Contains(fps, fresh) {
					return false, err
				}
			}
			return true, nil
		})
	})
	if err != nil {
		return err
	}
	if p, err = s.n.get(ctx, r.name); err != nil || p == nil {
		return fmt.Errorf("no pod: %v", err)
	}
	for _, c := range []string{"runner", "mcp"} {
		st := p.container(c)
		if st.RestartCount != 0 || st.State.Running == nil || !st.State.Running.StartedAt.Equal(started[c]) {
			return fmt.Errorf("%s stopped or restarted while tokend was killed: %s", c, describe(p))
		}
	}

	err = s.step(ctx, r.res, "control plane down, pod not ready", func(ctx context.Context) error {
		if err := s.cp.Set(standin.Down); err != nil {
			return err
		}
		p, err = s.n.wait(ctx, r.name, "the pod not Ready", func(p *pod) bool {
			return p != nil && p.condition("Ready") == "False" && !p.container("tokend").Ready
		})
		return err
	})
	if err != nil {
		return err
	}
	tokens, err := s.tokens(p)
	if err != nil {
		return err
	}
	lastToken := tokens[len(tokens)-1]
	err = s.step(ctx, r.res, "consumers keep the last token", func(ctx context.Context) error {
		ticks := map[string]int{}
		for _, c := range []string{"runner", "mcp"} {
			_, lines, err := s.seen(p, c)
			if err != nil {
				return err
			}
			ticks[c] = countPrefix(lines, "reading:")
		}
		return s.until(ctx, "a new read by runner and mcp after the pod turned not ready", func() (bool, error) {
			p, err := s.n.get(ctx, r.name)
			if err != nil || p == nil {
				return false, err
			}
			for _, c := range []string{"runner", "mcp"} {
				_, lines, err := s.seen(p, c)
				if err != nil {
					return false, err
				}
				if countPrefix(lines, "reading:") <= ticks[c] {
					return false, nil
				}
				if last := lastPrefixed(lines, "reading:"); hashIn(last) != lastToken {
					return false, fmt.Errorf("%s reads %q after the control plane went down, want the last token %s", c, last, lastToken)
				}
				if !p.running(c) {
					return false, fmt.Errorf("%s stopped", c)
				}
			}
			return true, nil
		})
	})
	if err != nil {
		return err
	}
	if err := s.wholeReads(ctx, r.name); err != nil {
		return err
	}
	r.res.note = "tokend restarted by the kubelet and wrote a new token that both consumers read, neither restarting; with the control plane down the pod turned not ready and both kept reading the last token"
	return nil
}

func countPrefix(lines []logLine, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l.Text, prefix) {
			n++
		}
	}
	return n
}

func lastPrefixed(lines []logLine, prefix string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i].Text, prefix) {
			return lines[i].Text
		}
	}
	return ""
}

func (s *scenarios) proxy(ctx context.Context, r *podRun) error {
	if err := s.cp.Set(standin.Up); err != nil {
		return err
	}
	var answer string
	err := s.step(ctx, r.res, "pod started, agent answered", func(ctx context.Context) error {
		if err := s.n.start(r.file); err != nil {
			return err
		}
		_, err := s.firstLines(ctx, r.name, "agent")
		if err != nil {
			return err
		}
		p, err := s.n.get(ctx, r.name)
		if err != nil || p == nil {
			return fmt.Errorf("no pod: %v", err)
		}
		lines, err := s.n.log(p, "agent", 0)
		if err != nil {
			return err
		}
		answer = strings.TrimSpace(lines[0].Text)
		return nil
	})
	if err != nil {
		return err
	}
	if answer != "HTTP/1.1 200 OK" {
		return fmt.Errorf("the agent's first answer is %q, want HTTP/1.1 200 OK", answer)
	}
	p, err := s.n.get(ctx, r.name)
	if err != nil || p == nil {
		return fmt.Errorf("no pod: %v", err)
	}
	tokens, err := s.tokens(p)
	if err != nil {
		return err
	}
	reqs := s.up.Requests()
	i := slices.IndexFunc(reqs, func(q standin.Request) bool { return q.Path == "/health" && q.Status == 200 })
	if i < 0 || !slices.Contains(tokens, reqs[i].Fingerprint) {
		return fmt.Errorf("the API server got no /health with a token tokend wrote: %v (tokend wrote %v)", reqs, tokens)
	}
	for _, c := range p.Spec.Containers {
		if c.Name != "agent" {
			continue
		}
		for _, m := range c.VolumeMounts {
			if strings.HasPrefix(m.MountPath, "/var/run/ambient") {
				return errors.New("the agent mounts the token directory")
			}
		}
	}
	r.res.note = "the agent, with no token volume, got 200 from the API server, which saw a token tokend wrote"
	return nil
}

func (s *scenarios) openshift(ctx context.Context, r *podRun) error {
	if err := s.cp.Set(standin.Up); err != nil {
		return err
	}
	var first map[string]string
	err := s.step(ctx, r.res, "pod started, consumer read", func(ctx context.Context) error {
		if err := s.n.start(r.file); err != nil {
			return err
		}
		var err error
		first, err = s.firstLines(ctx, r.name, "mcp")
		return err
	})
	if err != nil {
		return err
	}
	p, err := s.n.get(ctx, r.name)
	if err != nil || p == nil {
		return fmt.Errorf("no pod: %v", err)
	}
	tokens, err := s.tokens(p)
	if err != nil {
		return err
	}
	line := first["mcp"]
	if err := startedWithToken("mcp", line, tokens); err != nil {
		return err
	}
	// tokend wrote the file, so its owner is tokend's user.
	if !strings.HasPrefix(line, "start: uid "+openShiftUID+" ") || !strings.HasSuffix(line, "owner uid "+openShiftUID) {
		return fmt.Errorf("mcp printed %q, want uid and token owner %s", line, openShiftUID)
	}
	r.res.note = "tokend and mcp ran as uid " + openShiftUID + "; the token file tokend wrote is that user's"
	return nil
}

// healthURL is tokend's health port on the node (the Component's
// healthPort; the pods share the node's network).
const healthURL = "http://127.0.0.1:12081"

// fetch returns the status and body of GET url.
func fetch(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

func (s *scenarios) revocation(ctx context.Context, r *podRun) error {
	// A tokend that withdraws a refused token exports whether it did.
	_, metrics, err := fetch(ctx, healthURL+"/metrics")
	if err != nil {
		return fmt.Errorf("tokend's /metrics: %w", err)
	}
	if !strings.Contains(metrics, "tokend_token_withdrawn") {
		return skipped("this tokend does not withdraw a refused token (no tokend_token_withdrawn in /metrics): the revocation issue")
	}
	var withdrawnAt time.Time
	err = s.step(ctx, r.res, "control plane refusing, token withdrawn", func(ctx context.Context) error {
		if err := s.cp.Set(standin.Refusing); err != nil {
			return err
		}
		return s.until(ctx, "mcp to see the token withdrawn", func() (bool, error) {
			p, err := s.n.get(ctx, r.name)
			if err != nil || p == nil {
				return false, err
			}
			_, lines, err := s.seen(p, "mcp")
			i := slices.IndexFunc(lines, func(l logLine) bool { return l.Text == "token withdrawn" })
			if i >= 0 {
				withdrawnAt = lines[i].Time
			}
			return i >= 0, err
		})
	})
	if err != nil {
		return err
	}
	var p *pod
	err = s.step(ctx, r.res, "pod not ready", func(ctx context.Context) error {
		p, err = s.n.wait(ctx, r.name, "the pod not Ready", func(p *pod) bool {
			return p != nil && p.condition("Ready") == "False" && !p.container("tokend").Ready
		})
		return err
	})
	if err != nil {
		return err
	}
	_, lines, err := s.seen(p, "mcp")
	if err != nil {
		return err
	}
	for _, l := range lines {
		if l.Time.After(withdrawnAt) && hashIn(l.Text) != "" {
			return fmt.Errorf("mcp read a token after the withdrawal: %q", l.Text)
		}
	}
	code, body, err := fetch(ctx, healthURL+"/readyz")
	if err != nil {
		return err
	}
	if code == http.StatusOK || !strings.Contains(body, "withdrawn") {
		return fmt.Errorf("/readyz answered %d %q, want a failure that names the withdrawal", code, strings.TrimSpace(body))
	}
	r.res.note = "after a 403 the token file held a withdrawal record, mcp read no token after it, and the pod turned not ready (/readyz: " + strings.TrimSpace(body) + ")"
	return nil
}
