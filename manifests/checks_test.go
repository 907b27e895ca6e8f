package manifests

import (
	"path"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// checkPodSecurity: the restricted Pod Security Standard at pod level, plus
// the fsGroup that lets other containers read tokend's 0640 file.
func checkPodSecurity(t *testing.T, w workload) {
	sc := w.spec.SecurityContext
	if sc == nil {
		t.Fatal("no pod securityContext")
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("runAsNonRoot is not true")
	}
	for name, id := range map[string]*int64{"runAsUser": sc.RunAsUser, "runAsGroup": sc.RunAsGroup, "fsGroup": sc.FSGroup} {
		if id == nil {
			t.Errorf("%s is not set, want %d", name, nonRootID)
		} else if *id != nonRootID {
			t.Errorf("%s = %d, want %d", name, *id, nonRootID)
		}
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("seccompProfile is not RuntimeDefault")
	}
	if a := w.spec.AutomountServiceAccountToken; a == nil || *a {
		t.Error("automountServiceAccountToken is not false")
	}
	if w.spec.HostNetwork || w.spec.HostPID || w.spec.HostIPC {
		t.Error("pod shares a host namespace")
	}
}

// checkContainerSecurity: the restricted standard in every container, and a
// read-only root filesystem for tokend.
func checkContainerSecurity(t *testing.T, w workload) {
	for _, c := range w.containers() {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: no securityContext", c.Name)
			continue
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities must drop ALL and add none", c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", c.Name)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			t.Errorf("%s: runs as root", c.Name)
		}
		if isTokend(c) && (sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem) {
			t.Errorf("%s: readOnlyRootFilesystem is not true", c.Name)
		}
	}
}

func checkTokenVolume(t *testing.T, w workload) {
	v := w.volume(tokenVolume)
	if v == nil || v.EmptyDir == nil {
		t.Fatalf("no emptyDir volume %q", tokenVolume)
	}
	if v.EmptyDir.Medium != corev1.StorageMediumMemory {
		t.Errorf("medium = %q, want Memory", v.EmptyDir.Medium)
	}
	if l := v.EmptyDir.SizeLimit; l == nil || l.Cmp(resource.MustParse("1Mi")) > 0 {
		t.Errorf("sizeLimit = %v, want at most 1Mi", l)
	}
}

// checkTokenMounts: tokend writes the directory; everyone else mounts it
// read-only; nobody uses subPath, which would pin a replaced file. Behind
// the credential proxy, no consumer mounts it at all.
func checkTokenMounts(t *testing.T, w workload) {
	var readers int
	for _, c := range w.containers() {
		var mounted bool
		for _, m := range c.VolumeMounts {
			if m.Name != tokenVolume {
				continue
			}
			mounted = true
			if m.SubPath != "" || m.SubPathExpr != "" {
				t.Errorf("%s: mounts the token volume with a subPath", c.Name)
			}
			if m.MountPath != tokenDir {
				t.Errorf("%s: mounts the token volume at %s, want %s", c.Name, m.MountPath, tokenDir)
			}
			if isTokend(c) == m.ReadOnly {
				t.Errorf("%s: token volume readOnly = %v, want %v", c.Name, m.ReadOnly, !isTokend(c))
			}
		}
		switch {
		case isTokend(c) && !mounted, !isTokend(c) && !mounted && !w.proxy:
			t.Errorf("%s: does not mount the token volume", c.Name)
		case !isTokend(c) && mounted && w.proxy:
			t.Errorf("%s: mounts the token volume behind the credential proxy", c.Name)
		case !isTokend(c) && mounted:
			readers++
		}
		if e, ok := env(c, "TOKEND_TOKEN_FILE"); ok && path.Dir(e.Value) != tokenDir {
			t.Errorf("%s: TOKEND_TOKEN_FILE %s is not in %s", c.Name, e.Value, tokenDir)
		}
	}
	if readers == 0 && !w.proxy {
		t.Error("no consumer container reads the token")
	}
}

func checkProbes(t *testing.T, w workload) {
	for _, c := range w.spec.InitContainers {
		if !isSidecar(&c) && (c.LivenessProbe != nil || c.ReadinessProbe != nil || c.StartupProbe != nil) {
			t.Errorf("%s: probes on a run-to-completion init container", c.Name)
		}
	}
	for _, c := range w.containers() {
		if !isRun(c) {
			continue
		}
		if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
			return p.Name == "health" && p.ContainerPort == 12081
		}) {
			t.Errorf("%s: no port health 12081", c.Name)
		}
		probes := map[string]*corev1.Probe{"/livez": c.LivenessProbe, "/readyz": c.ReadinessProbe}
		if isSidecar(c) {
			probes["/startupz"] = c.StartupProbe
		}
		for want, p := range probes {
			switch {
			case p == nil || p.HTTPGet == nil:
				t.Errorf("%s: no httpGet probe on %s", c.Name, want)
			case p.HTTPGet.Path != want || p.HTTPGet.Port.String() != "health":
				t.Errorf("%s: probe %s on port %s, want %s on health", c.Name, p.HTTPGet.Path, p.HTTPGet.Port.String(), want)
			case p.PeriodSeconds < 1 || p.FailureThreshold < 1:
				t.Errorf("%s: probe %s without periodSeconds and failureThreshold", c.Name, want)
			}
		}
	}
}

// checkShape: how tokend is placed for each way of running it.
func checkShape(t *testing.T, w workload) {
	var inits, runs, sidecars []string
	for _, c := range w.spec.InitContainers {
		switch {
		case isTokend(&c) && slices.Equal(c.Args, []string{"init"}) && !isSidecar(&c):
			inits = append(inits, c.Name)
		case isRun(&c) && isSidecar(&c) && c.StartupProbe != nil:
			sidecars = append(sidecars, c.Name)
		case isTokend(&c):
			t.Errorf("%s: unexpected tokend init container", c.Name)
		}
	}
	for _, c := range w.spec.Containers {
		if isRun(&c) && c.RestartPolicy == nil {
			runs = append(runs, c.Name)
		} else if isTokend(&c) {
			t.Errorf("%s: unexpected tokend container", c.Name)
		}
	}
	want := [3]int{1, 1, 0} // initSidecar: init, run, native sidecar
	if w.shape == nativeSidecar {
		want = [3]int{0, 0, 1}
		if rp := w.spec.RestartPolicy; rp != corev1.RestartPolicyNever && rp != corev1.RestartPolicyOnFailure {
			t.Errorf("Job pod restartPolicy = %q", rp)
		}
	}
	if got := [3]int{len(inits), len(runs), len(sidecars)}; got != want {
		t.Errorf("tokend init containers, run sidecars, native sidecars = %v, want %v", got, want)
	}
}

// checkResources: every container requests cpu and memory and has a memory
// limit; tokend's stay small.
func checkResources(t *testing.T, w workload) {
	for _, c := range w.containers() {
		req, lim := c.Resources.Requests, c.Resources.Limits
		if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() {
			t.Errorf("%s: needs cpu and memory requests and a memory limit", c.Name)
			continue
		}
		if req.Memory().Cmp(*lim.Memory()) > 0 {
			t.Errorf("%s: memory request above its limit", c.Name)
		}
		if isTokend(c) && lim.Memory().Cmp(resource.MustParse("64Mi")) > 0 {
			t.Errorf("%s: memory limit %s is not small", c.Name, lim.Memory())
		}
	}
}

// checkImages: tokend's image is set by kustomize images:; other images are
// pinned.
func checkImages(t *testing.T, w workload) {
	for _, c := range w.containers() {
		if isTokend(c) {
			if c.Image != tokendImage+":latest" {
				t.Errorf("%s: image %s, want %s:latest", c.Name, c.Image, tokendImage)
			}
			continue
		}
		name, digest, _ := strings.Cut(c.Image, "@")
		_, tag, _ := strings.Cut(name[strings.LastIndex(name, "/")+1:], ":")
		if digest == "" && (tag == "" || tag == "latest") {
			t.Errorf("%s: image %s is not pinned", c.Name, c.Image)
		}
	}
}
