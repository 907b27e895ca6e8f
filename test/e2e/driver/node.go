package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// node is the standalone kubelet and its containerd, as the driver sees
// them: pods start and stop by a file in the static pod directory, their
// status comes from the kubelet's read-only /pods, their output from the
// kubelet's pod log files, and signals go to a container through ctr.
type node struct {
	kubelet  string   // base URL of the kubelet's read-only port
	name     string   // the node's name, the suffix of every static pod's name
	rendered string   // directory of the rendered static pods, NAME.yaml
	static   string   // the kubelet's staticPodPath
	logs     string   // the kubelet's podLogsDir
	ctr      []string // ctr with its address and namespace
	poll     time.Duration
}

// pod is the part of a Pod the driver reads.
type pod struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
		UID       string `json:"uid"`
	} `json:"metadata"`
	Spec struct {
		InitContainers []containerSpec `json:"initContainers"`
		Containers     []containerSpec `json:"containers"`
	} `json:"spec"`
	Status struct {
		Phase                 string            `json:"phase"`
		Conditions            []condition       `json:"conditions"`
		InitContainerStatuses []containerStatus `json:"initContainerStatuses"`
		ContainerStatuses     []containerStatus `json:"containerStatuses"`
	} `json:"status"`
}

type containerSpec struct {
	Name         string `json:"name"`
	VolumeMounts []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
	} `json:"volumeMounts"`
	Env []struct {
		Name string `json:"name"`
	} `json:"env"`
}

type condition struct {
	Type   string `json:"type"`
	Status string `json:"status"`
}

type containerStatus struct {
	Name         string `json:"name"`
	Ready        bool   `json:"ready"`
	Started      *bool  `json:"started"`
	RestartCount int    `json:"restartCount"`
	ContainerID  string `json:"containerID"`
	State        struct {
		Waiting *struct {
			Reason string `json:"reason"`
		} `json:"waiting"`
		Running *struct {
			StartedAt time.Time `json:"startedAt"`
		} `json:"running"`
		Terminated *struct {
			ExitCode   int       `json:"exitCode"`
			Reason     string    `json:"reason"`
			FinishedAt time.Time `json:"finishedAt"`
		} `json:"terminated"`
	} `json:"state"`
}

// container returns the status of the named container, init or main; nil
// when the kubelet reports none yet.
func (p *pod) container(name string) *containerStatus {
	for _, list := range [][]containerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// running reports whether the named container runs now.
func (p *pod) running(name string) bool {
	c := p.container(name)
	return c != nil && c.State.Running != nil
}

// condition returns the status of the pod's condition typ ("" when absent).
func (p *pod) condition(typ string) string {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

// start puts the rendered pod NAME into the static pod directory.
func (n *node) start(name string) error {
	b, err := os.ReadFile(filepath.Join(n.rendered, name+".yaml"))
	if err != nil {
		return err
	}
	tmp := filepath.Join(n.static, "."+name+".yaml")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(n.static, name+".yaml"))
}

// stop removes the pod NAME from the static pod directory and waits until
// the kubelet no longer reports the pod podName and none of its containers
// runs: the next pod may then take the same host ports.
func (n *node) stop(ctx context.Context, name, podName string) error {
	p, err := n.get(ctx, podName)
	if err != nil {
		return err
	}
	var ids []string
	if p != nil {
		for _, list := range [][]containerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
			for _, c := range list {
				if id, ok := strings.CutPrefix(c.ContainerID, "containerd://"); ok {
					ids = append(ids, id)
				}
			}
		}
	}
	if err := os.Remove(filepath.Join(n.static, name+".yaml")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if _, err := n.wait(ctx, podName, "the pod to be gone", func(p *pod) bool { return p == nil }); err != nil {
		return err
	}
	for {
		running, err := n.running(ctx)
		if err == nil && !slices.ContainsFunc(ids, func(id string) bool { return running[id] }) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the pod's containers to end: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(n.poll):
		}
	}
}

// running returns the ids of the containers that run now, from ctr's task
// list ("TASK PID STATUS" lines).
func (n *node) running(ctx context.Context) (map[string]bool, error) {
	args := append(append([]string(nil), n.ctr[1:]...), "tasks", "ls")
	out, err := exec.CommandContext(ctx, n.ctr[0], args...).Output()
	if err != nil {
		return nil, fmt.Errorf("ctr tasks ls: %w", err)
	}
	ids := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[2] == "RUNNING" {
			ids[f[0]] = true
		}
	}
	return ids, nil
}

// get returns the static pod podName (its name without the node suffix),
// or nil when the kubelet does not report it.
func (n *node) get(ctx context.Context, podName string) (*pod, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.kubelet+"/pods", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("kubelet /pods: %s", resp.Status)
	}
	var list struct {
		Items []pod `json:"items"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&list); err != nil {
		return nil, fmt.Errorf("kubelet /pods: %w", err)
	}
	for i := range list.Items {
		if list.Items[i].Metadata.Name == podName+"-"+n.name {
			return &list.Items[i], nil
		}
	}
	return nil, nil
}

// wait polls the kubelet until cond holds for the pod (nil when the
// kubelet does not report it), and returns the pod then. It fails when ctx
// ends first, saying what it waited for.
func (n *node) wait(ctx context.Context, podName, what string, cond func(*pod) bool) (*pod, error) {
	var last *pod
	for {
		p, err := n.get(ctx, podName)
		if err == nil {
			last = p
			if cond(p) {
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("waiting for %s: %w (last status: %s)", what, ctx.Err(), describe(last))
		case <-time.After(n.poll):
		}
	}
}

// describe summarises a pod's status for an error message.
func describe(p *pod) string {
	if p == nil {
		return "no pod"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase %s, ready %s", p.Status.Phase, p.condition("Ready"))
	for _, list := range [][]containerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, c := range list {
			state := "unknown"
			switch {
			case c.State.Running != nil:
				state = "running"
			case c.State.Terminated != nil:
				state = fmt.Sprintf("terminated %d %s", c.State.Terminated.ExitCode, c.State.Terminated.Reason)
			case c.State.Waiting != nil:
				state = "waiting " + c.State.Waiting.Reason
			}
			fmt.Fprintf(&b, "; %s %s ready=%v restarts=%d", c.Name, state, c.Ready, c.RestartCount)
		}
	}
	return b.String()
}

// logLine is one line a container wrote.
type logLine struct {
	Time time.Time
	Text string
}

// log returns what the container wrote in its run number restart (0 for
// the first), from the kubelet's log file, or nothing before the file
// exists.
func (n *node) log(p *pod, container string, restart int) ([]logLine, error) {
	dir := fmt.Sprintf("%s_%s_%s", p.Metadata.Namespace, p.Metadata.Name, p.Metadata.UID)
	f, err := os.Open(filepath.Join(n.logs, dir, container, strconv.Itoa(restart)+".log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseCRILog(f)
}

// parseCRILog reads the CRI log format: "TIME STREAM TAG TEXT" per line,
// TAG F for a full line or P for a part of one that the next line goes on.
func parseCRILog(r io.Reader) ([]logLine, error) {
	var out []logLine
	var partial strings.Builder
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		fields := strings.SplitN(s.Text(), " ", 4)
		if len(fields) < 3 {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, fields[0])
		if err != nil {
			return nil, fmt.Errorf("a log line without a time: %q", fields[0])
		}
		text := ""
		if len(fields) == 4 {
			text = fields[3]
		}
		partial.WriteString(text)
		if fields[2] == "P" {
			continue
		}
		out = append(out, logLine{Time: t, Text: partial.String()})
		partial.Reset()
	}
	return out, s.Err()
}

// signal sends sig (a name such as SIGKILL) to the first process of the
// container whose CRI id is containerID ("containerd://ID").
func (n *node) signal(ctx context.Context, containerID, sig string) error {
	id, ok := strings.CutPrefix(containerID, "containerd://")
	if !ok {
		return fmt.Errorf("container id %q is not containerd's", containerID)
	}
	args := append(append([]string(nil), n.ctr[1:]...), "tasks", "kill", "--signal", sig, id)
	if out, err := exec.CommandContext(ctx, n.ctr[0], args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ctr tasks kill %s: %v: %s", sig, err, out)
	}
	return nil
}
