package manifests

import (
	"reflect"
	"slices"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// checkKept: every container, init container and volume of the workload is
// still there, in its order, unchanged but for the token mount of a reader.
func checkKept(t *testing.T, before, after *corev1.PodSpec, readers []string) {
	t.Helper()
	strip := func(cs []corev1.Container) []corev1.Container {
		var out []corev1.Container
		for _, c := range cs {
			if c.Name == "tokend" {
				continue
			}
			c = *c.DeepCopy()
			c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == componentTokenVolume })
			if len(c.VolumeMounts) == 0 {
				c.VolumeMounts = nil
			}
			out = append(out, c)
		}
		return out
	}
	if got, want := strip(after.InitContainers), before.InitContainers; !reflect.DeepEqual(got, want) {
		t.Errorf("init containers changed:\n%+v\nwant\n%+v", got, want)
	}
	if got, want := strip(after.Containers), before.Containers; !reflect.DeepEqual(got, want) {
		t.Errorf("containers changed:\n%+v\nwant\n%+v", got, want)
	}
	vols := slices.DeleteFunc(slices.Clone(after.Volumes), func(v corev1.Volume) bool { return v.Name == componentTokenVolume })
	if !reflect.DeepEqual(vols, before.Volumes) {
		t.Errorf("volumes changed: %v, want %v", names(vols), names(before.Volumes))
	}
	a, b := *after.DeepCopy(), *before.DeepCopy()
	a.InitContainers, a.Containers, a.Volumes = nil, nil, nil
	b.InitContainers, b.Containers, b.Volumes = nil, nil, nil
	if !reflect.DeepEqual(a, b) {
		t.Errorf("pod spec outside containers and volumes changed:\n%+v\nwant\n%+v", a, b)
	}
}

// checkTokendFirst: tokend is the first init container, a native sidecar
// whose startupProbe holds back every container after it.
func checkTokendFirst(t *testing.T, spec *corev1.PodSpec) *corev1.Container {
	t.Helper()
	if len(spec.InitContainers) == 0 || spec.InitContainers[0].Name != "tokend" {
		t.Fatalf("init containers %v: tokend is not first", names(spec.InitContainers))
	}
	c := &spec.InitContainers[0]
	if !isRun(c) || !isSidecar(c) {
		t.Errorf("tokend: image %s args %q restartPolicy %v, want a native sidecar running tokend run", c.Image, c.Args, c.RestartPolicy)
	}
	if p := c.StartupProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/startupz" {
		t.Error("tokend: no startupProbe on /startupz")
	}
	v := volumeNamed(spec, componentTokenVolume)
	switch {
	case v == nil || v.EmptyDir == nil:
		t.Errorf("no emptyDir volume %s", componentTokenVolume)
	case v.EmptyDir.Medium != corev1.StorageMediumMemory:
		t.Errorf("volume %s: medium %q, want Memory", v.Name, v.EmptyDir.Medium)
	case v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.Cmp(resource.MustParse("1Mi")) > 0:
		t.Errorf("volume %s: sizeLimit %v, want at most 1Mi", v.Name, v.EmptyDir.SizeLimit)
	}
	return c
}

// checkComponentMounts: tokend mounts the directory read-write; the readers,
// and no other container, mount it read-only, without a subPath.
func checkComponentMounts(t *testing.T, spec *corev1.PodSpec, readers []string) {
	t.Helper()
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		var mounts []corev1.VolumeMount
		for _, m := range c.VolumeMounts {
			if m.Name == componentTokenVolume {
				mounts = append(mounts, m)
			}
		}
		want := c.Name == "tokend" || slices.Contains(readers, c.Name)
		if len(mounts) != map[bool]int{true: 1}[want] {
			t.Errorf("%s: %d mounts of the token volume, want %d", c.Name, len(mounts), map[bool]int{true: 1}[want])
			continue
		}
		for _, m := range mounts {
			if m.MountPath != tokenDir || m.SubPath != "" || m.SubPathExpr != "" || m.ReadOnly == (c.Name == "tokend") {
				t.Errorf("%s: token mount %+v, want the directory %s, read-only for readers, no subPath", c.Name, m, tokenDir)
			}
		}
	}
}

// checkHealthPort: the health port is want in the container port and in
// TOKEND_HEALTH_ADDR, and no other container of the pod declares it.
func checkHealthPort(t *testing.T, spec *corev1.PodSpec, tokend *corev1.Container, want int32) {
	t.Helper()
	var port int32
	for _, p := range tokend.Ports {
		if p.Name == "health" {
			port = p.ContainerPort
		}
	}
	e, _ := env(tokend, "TOKEND_HEALTH_ADDR")
	if port != want || e.Value != ":"+strconv.Itoa(int(want)) {
		t.Errorf("health port %d, TOKEND_HEALTH_ADDR %q, want %d and :%d", port, e.Value, want, want)
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		for _, p := range c.Ports {
			if c.Name != "tokend" && p.ContainerPort == port {
				t.Errorf("%s also listens on %d", c.Name, port)
			}
		}
	}
}

// checkSecretRef: every reference of the pod resolves in its namespace,
// and tokend's settings Secret, named by its one envFrom, holds the
// settings the legacy exchange needs (and the proxy's upstream, with want).
func checkSecretRef(t *testing.T, w workload, tokend *corev1.Container, want ...string) {
	t.Helper()
	for _, p := range unresolvedRefs(w) {
		t.Error(p)
	}
	if len(tokend.EnvFrom) != 1 || tokend.EnvFrom[0].SecretRef == nil {
		t.Fatalf("tokend: envFrom %+v, want one secretRef", tokend.EnvFrom)
	}
	name := tokend.EnvFrom[0].SecretRef.Name
	o := w.find("Secret", name)
	if o == nil {
		return // reported above
	}
	for _, k := range append([]string{"AMBIENT_CP_TOKEN_URL", "SESSION_ID", "AMBIENT_CP_TOKEN_PUBLIC_KEY"}, want...) {
		if _, ok := o.obj.(*corev1.Secret).Data[k]; !ok {
			t.Errorf("Secret %s has no %s", name, k)
		}
	}
}

// checkTokendSecurity: the restricted standard in tokend's own
// securityContext; a fixed user and group except on OpenShift.
func checkTokendSecurity(t *testing.T, c *corev1.Container, openshift bool) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Fatalf("tokend: securityContext %+v is not restricted", sc)
	}
	fixed := sc.RunAsUser != nil && *sc.RunAsUser == nonRootID && sc.RunAsGroup != nil && *sc.RunAsGroup == nonRootID
	switch {
	case openshift && (sc.RunAsUser != nil || sc.RunAsGroup != nil):
		t.Errorf("tokend-openshift: runAsUser %v runAsGroup %v, want neither (restricted-v2 assigns them)", sc.RunAsUser, sc.RunAsGroup)
	case !openshift && !fixed:
		t.Errorf("tokend: runAsUser and runAsGroup are not %d", nonRootID)
	}
}

// checkComponentProxy: with agents, tokend's proxy listens on loopback and
// forwards to the https URL in its Secret, and every agent's
// AMBIENT_API_SERVER_URL points at the proxy; without, tokend runs no proxy.
func checkComponentProxy(t *testing.T, w workload, tokend *corev1.Container, agents []string) {
	t.Helper()
	listen, ok := env(tokend, "TOKEND_PROXY_LISTEN")
	if len(agents) == 0 {
		if ok {
			t.Errorf("tokend: TOKEND_PROXY_LISTEN %q without an agent", listen.Value)
		}
		return
	}
	if !ok {
		t.Fatal("tokend: no TOKEND_PROXY_LISTEN")
	}
	checkProxyListen(t, tokend.Name, listen.Value)
	if s := w.find("Secret", tokend.EnvFrom[0].SecretRef.Name); s != nil {
		checkProxyUpstream(t, "Secret "+s.name, string(s.obj.(*corev1.Secret).Data["AMBIENT_API_SERVER_URL"]))
	}
	for _, c := range w.spec.Containers {
		e, _ := env(&c, "AMBIENT_API_SERVER_URL")
		switch agent := slices.Contains(agents, c.Name); {
		case agent && e.Value != "http://"+listen.Value:
			t.Errorf("%s: AMBIENT_API_SERVER_URL %q, want the proxy, http://%s", c.Name, e.Value, listen.Value)
		case !agent && e.Value == "http://"+listen.Value:
			t.Errorf("%s: points at the proxy but is not one of the agents %v", c.Name, agents)
		}
	}
}
