package manifests

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	tokendImage = "ghcr.io/ambient-code/tokend"
	tokenVolume = "token"
	tokenDir    = "/var/run/ambient"
	nonRootID   = 65532

	initSidecar   = "init-sidecar"   // `tokend init` init container, `tokend run` regular sidecar
	nativeSidecar = "native-sidecar" // `tokend run` as an init container with restartPolicy: Always

	encryptedSession = "encrypted-session"
	bearer           = "bearer" // the successor control plane's run capability
)

// layout is what one kustomization directory must render.
type layout struct {
	dir     string
	kind    string // the workload's kind; "" for the base, which has none
	shape   string // initSidecar or nativeSidecar
	auth    string // encryptedSession or bearer
	keyFile bool   // the public key is a file from a Secret, not an env value
	proxy   bool   // consumers reach the API through tokend's credential proxy, without the token
}

var layouts = []layout{
	{dir: "base"},
	{dir: "overlays/init-sidecar", kind: "Deployment", shape: initSidecar, auth: encryptedSession},
	{dir: "overlays/native-sidecar", kind: "Job", shape: nativeSidecar, auth: encryptedSession},
	{dir: "overlays/secret-key-file", kind: "Deployment", shape: initSidecar, auth: encryptedSession, keyFile: true},
	{dir: "overlays/notify-signal", kind: "Job", shape: nativeSidecar, auth: encryptedSession},
	{dir: "overlays/credential-proxy", kind: "Job", shape: nativeSidecar, auth: encryptedSession, proxy: true},
	{dir: "overlays/successor", kind: "Job", shape: nativeSidecar, auth: bearer},
}

// workload is the rendered output of one layout, with its one pod template.
type workload struct {
	layout
	objs      []object
	namespace string             // the workload object's
	meta      *metav1.ObjectMeta // the pod template's
	spec      *corev1.PodSpec
}

// rules are checked against every layout that has a workload.
var rules = []struct {
	name  string
	check func(t *testing.T, w workload)
}{
	{"restricted Pod Security Standard", checkRestricted},
	{"pod security context", checkPodSecurity},
	{"container security contexts", checkContainerSecurity},
	{"token volume is a small memory emptyDir", checkTokenVolume},
	{"token directory mounts", checkTokenMounts},
	{"probes", checkProbes},
	{"init container shape", checkShape},
	{"resources", checkResources},
	{"auth settings", checkAuth},
	{"references resolve", checkReferences},
	{"images", checkImages},
	{"notify signal", checkNotify},
	{"credential proxy", checkProxy},
}

func TestRules(t *testing.T) {
	for _, l := range layouts {
		if l.kind == "" {
			continue
		}
		w := load(t, l)
		for _, r := range rules {
			t.Run(l.dir+"/"+r.name, func(t *testing.T) { r.check(t, w) })
		}
	}
}

// load renders l and finds its single workload.
func load(t *testing.T, l layout) workload {
	t.Helper()
	w := workload{layout: l, objs: render(t, l.dir)}
	var found int
	for _, o := range w.objs {
		var tmpl *corev1.PodTemplateSpec
		switch obj := o.obj.(type) {
		case *appsv1.Deployment:
			tmpl = &obj.Spec.Template
		case *batchv1.Job:
			tmpl = &obj.Spec.Template
		default:
			continue
		}
		found++
		if o.gvk.Kind != l.kind {
			t.Fatalf("%s: workload is a %s, want a %s", l.dir, o.gvk.Kind, l.kind)
		}
		w.namespace, w.meta, w.spec = o.namespace, &tmpl.ObjectMeta, &tmpl.Spec
	}
	if found != 1 {
		t.Fatalf("%s: rendered %d workloads, want 1", l.dir, found)
	}
	return w
}

// containers returns the init containers, then the main containers.
func (w workload) containers() []*corev1.Container {
	var cs []*corev1.Container
	for i := range w.spec.InitContainers {
		cs = append(cs, &w.spec.InitContainers[i])
	}
	for i := range w.spec.Containers {
		cs = append(cs, &w.spec.Containers[i])
	}
	return cs
}

func (w workload) volume(name string) *corev1.Volume {
	for i := range w.spec.Volumes {
		if w.spec.Volumes[i].Name == name {
			return &w.spec.Volumes[i]
		}
	}
	return nil
}

// mountHolding returns the mount of c whose directory holds path, and its
// volume.
func (w workload) mountHolding(c *corev1.Container, path string) (*corev1.VolumeMount, *corev1.Volume) {
	for i, m := range c.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return &c.VolumeMounts[i], w.volume(m.Name)
		}
	}
	return nil, nil
}

// find returns the rendered object of kind and name in the workload's
// namespace: the only one a pod can refer to.
func (w workload) find(kind, name string) *object {
	for i, o := range w.objs {
		if o.gvk.Kind == kind && o.name == name && o.namespace == w.namespace {
			return &w.objs[i]
		}
	}
	return nil
}

func isTokend(c *corev1.Container) bool {
	return c.Image == tokendImage || strings.HasPrefix(c.Image, tokendImage+":")
}

// isRun reports whether c is the long-running `tokend run`.
func isRun(c *corev1.Container) bool { return isTokend(c) && slices.Equal(c.Args, []string{"run"}) }

// isSidecar reports whether c is a native sidecar.
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func env(c *corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}
