package manifests

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

const (
	componentTokenVolume = "tokend-token"
	componentsDir        = "components"
)

// componentExample is one workload under components/examples, rendered with
// a tokend Component, and what the render must show.
type componentExample struct {
	dir       string   // under components/examples
	workload  string   // the workload's file, as it was before tokend
	readers   []string // the containers given the token mount
	agents    []string // the containers pointed at the credential proxy
	openshift bool     // rendered with tokend-openshift
	namespace string   // the workload's namespace, "" for none
}

var componentExamples = []componentExample{
	{dir: "runner-pod", workload: "pod.yaml", readers: []string{"runner", "mcp"}, namespace: "sessions"},
	{dir: "mcp-job", workload: "job.yaml", readers: []string{"mcp", "runner"}},
	{dir: "openshift", workload: "deployment.yaml", readers: []string{"mcp"}, openshift: true},
	{dir: "proxy-pod", workload: "pod.yaml", readers: []string{"mcp"}, agents: []string{"runner"}, namespace: "sessions"},
}

// TestComponent renders each example with the Component and compares the
// pod with the workload's own file: nothing of the workload is lost or
// reordered, tokend is the first init container, exactly the named
// readers mount the token directory read-only, and exactly the named
// agents are pointed at the credential proxy.
func TestComponent(t *testing.T) {
	for _, ex := range componentExamples {
		t.Run(ex.dir, func(t *testing.T) {
			dir := filepath.Join(componentsDir, "examples", ex.dir)
			before := podSpecOf(t, readWorkload(t, filepath.Join(dir, ex.workload)))
			objs := render(t, dir)
			w := onlyWorkload(t, objs)
			if w.namespace != ex.namespace {
				t.Errorf("namespace %q, want %q", w.namespace, ex.namespace)
			}
			var proxyURL string
			if len(ex.agents) > 0 {
				proxyURL = "http://127.0.0.1:8082"
			}
			checkKept(t, withAgentURL(before, ex.agents, proxyURL), w.spec, ex.readers)
			tokend := checkTokendFirst(t, w.spec)
			checkComponentMounts(t, w.spec, ex.readers)
			checkHealthPort(t, w.spec, tokend, 12081)
			if len(ex.agents) > 0 {
				checkSecretRef(t, w, tokend, "AMBIENT_API_SERVER_URL")
			} else {
				checkSecretRef(t, w, tokend)
			}
			checkComponentProxy(t, w, tokend, ex.agents)
			checkTokendSecurity(t, tokend, ex.openshift)
			if !reflect.DeepEqual(before.SecurityContext, w.spec.SecurityContext) {
				t.Errorf("pod securityContext changed:\n%+v\nwant\n%+v", w.spec.SecurityContext, before.SecurityContext)
			}
			e, err := restrictedEvaluator()
			if err != nil {
				t.Fatal(err)
			}
			lv := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
			if r := policy.AggregateCheckResults(e.EvaluatePod(lv, w.meta, w.spec)); !r.Allowed {
				t.Errorf("restricted Pod Security Standard: %s", r.ForbiddenDetail())
			}
		})
	}
}

// TestComponentExamplesListed keeps the examples table complete.
func TestComponentExamplesListed(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(componentsDir, "examples"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.ContainsFunc(componentExamples, func(ex componentExample) bool { return ex.dir == e.Name() }) {
			t.Errorf("components/examples/%s is not in the componentExamples table", e.Name())
		}
	}
}

// TestComponentHealthPortIsOneChange edits healthPort in a copy of the
// Component, and only there, and finds the new port in both places tokend
// needs it.
func TestComponentHealthPortIsOneChange(t *testing.T) {
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(componentsDir)); err != nil {
		t.Fatal(err)
	}
	settings := filepath.Join(root, "tokend", "settings.yaml")
	data, err := os.ReadFile(settings)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), "\nhealthPort: 12081\n", "\nhealthPort: 23456\n", 1)
	if edited == string(data) {
		t.Fatal(`settings.yaml has no line "healthPort: 12081"`)
	}
	if err := os.WriteFile(settings, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ex := range componentExamples {
		w := onlyWorkload(t, render(t, filepath.Join(root, "examples", ex.dir)))
		checkHealthPort(t, w.spec, &w.spec.InitContainers[0], 23456)
	}
}

// TestComponentNamespace shows why the walkthrough sets the kustomization's
// namespace: without it, a namespaced pod's reference to the generated
// Secret is left as "tokend" while the Secret is "tokend-<hash>" in no
// namespace, and the reference check reports it.
func TestComponentNamespace(t *testing.T) {
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(componentsDir)); err != nil {
		t.Fatal(err)
	}
	k := filepath.Join(root, "examples", "runner-pod", "kustomization.yaml")
	data, err := os.ReadFile(k)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), "\nnamespace: sessions\n", "\n", 1)
	if bad == string(data) {
		t.Fatal(`runner-pod's kustomization has no line "namespace: sessions"`)
	}
	if err := os.WriteFile(k, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	w := onlyWorkload(t, render(t, filepath.Dir(k)))
	problems := unresolvedRefs(w)
	if len(problems) != 1 || !strings.Contains(problems[0], `tokend: envFrom: Secret tokend is not rendered in the workload's namespace "sessions"`) {
		t.Fatalf("unresolvedRefs = %q, want the one about tokend's envFrom", problems)
	}
	t.Log(problems[0])
}

// TestComponentMisspeltReader shows what a misspelt container name in the
// mount replacement renders: a container without an image, which the API
// server rejects ("image: Required value") and this check reports.
func TestComponentMisspeltReader(t *testing.T) {
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(componentsDir)); err != nil {
		t.Fatal(err)
	}
	k := filepath.Join(root, "examples", "runner-pod", "kustomization.yaml")
	data, err := os.ReadFile(k)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), "[name=runner]", "[name=runnr]", 1)
	if err := os.WriteFile(k, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	w := onlyWorkload(t, render(t, filepath.Dir(k)))
	var noImage []string
	for _, c := range append(w.spec.InitContainers, w.spec.Containers...) {
		if c.Image == "" {
			noImage = append(noImage, c.Name)
		}
	}
	if !slices.Equal(noImage, []string{"runnr"}) {
		t.Fatalf("containers without an image = %q, want [runnr]", noImage)
	}
}

// withAgentURL returns a copy of spec whose agents' AMBIENT_API_SERVER_URL
// is url, as the proxy's replacement sets it.
func withAgentURL(spec *corev1.PodSpec, agents []string, url string) *corev1.PodSpec {
	spec = spec.DeepCopy()
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if !slices.Contains(agents, c.Name) {
			continue
		}
		i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "AMBIENT_API_SERVER_URL" })
		if i < 0 {
			c.Env = append(c.Env, corev1.EnvVar{})
			i = len(c.Env) - 1
		}
		c.Env[i] = corev1.EnvVar{Name: "AMBIENT_API_SERVER_URL", Value: url}
	}
	return spec
}

func readWorkload(t *testing.T, path string) object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tm struct{ APIVersion, Kind string }
	if err := yaml.Unmarshal(data, &tm); err != nil {
		t.Fatal(err)
	}
	for gvk, newObj := range kinds {
		if gvk.Kind == tm.Kind && gvk.GroupVersion().String() == tm.APIVersion {
			o := object{gvk: gvk, yaml: data, obj: newObj()}
			if err := decodeStrict(data, o.obj); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return o
		}
	}
	t.Fatalf("%s: kind %s %s not known to this test", path, tm.APIVersion, tm.Kind)
	return object{}
}

func onlyWorkload(t *testing.T, objs []object) workload {
	t.Helper()
	var ws []object
	for _, o := range objs {
		if o.gvk.Kind != "Secret" {
			ws = append(ws, o)
		}
	}
	if len(ws) != 1 {
		t.Fatalf("rendered %d objects besides Secrets, want the one workload", len(ws))
	}
	w := workload{objs: objs, namespace: ws[0].namespace}
	w.meta, w.spec = podTemplate(ws[0].obj)
	if w.spec == nil {
		t.Fatalf("%s %s has no pod spec", ws[0].gvk.Kind, ws[0].name)
	}
	return w
}

func podSpecOf(t *testing.T, o object) *corev1.PodSpec {
	t.Helper()
	_, spec := podTemplate(o.obj)
	if spec == nil {
		t.Fatalf("%s has no pod spec", o.gvk.Kind)
	}
	return spec
}

func volumeNamed(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

func names[T corev1.Container | corev1.Volume](items []T) []string {
	var out []string
	for _, it := range items {
		switch v := any(it).(type) {
		case corev1.Container:
			out = append(out, v.Name)
		case corev1.Volume:
			out = append(out, v.Name)
		}
	}
	return out
}

// podTemplate returns the pod metadata and spec of a Pod or of a workload
// with a pod template; nil for any other object.
func podTemplate(obj any) (*metav1.ObjectMeta, *corev1.PodSpec) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return &o.ObjectMeta, &o.Spec
	case *appsv1.Deployment:
		return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec
	case *appsv1.StatefulSet:
		return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec
	case *appsv1.DaemonSet:
		return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec
	case *batchv1.Job:
		return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec
	}
	return nil, nil
}

// TestComponentProxyListenIsOneChange edits proxyListen in a copy of the
// proxy Component, and only there, and finds the new address in tokend's
// TOKEND_PROXY_LISTEN and in the agent's AMBIENT_API_SERVER_URL.
func TestComponentProxyListenIsOneChange(t *testing.T) {
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(componentsDir)); err != nil {
		t.Fatal(err)
	}
	settings := filepath.Join(root, "tokend-proxy", "settings.yaml")
	data, err := os.ReadFile(settings)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), "\nproxyListen: 127.0.0.1:8082\n", "\nproxyListen: 127.0.0.1:9099\n", 1)
	if edited == string(data) {
		t.Fatal(`settings.yaml has no line "proxyListen: 127.0.0.1:8082"`)
	}
	if err := os.WriteFile(settings, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	w := onlyWorkload(t, render(t, filepath.Join(root, "examples", "proxy-pod")))
	tokend := &w.spec.InitContainers[0]
	if e, _ := env(tokend, "TOKEND_PROXY_LISTEN"); e.Value != "127.0.0.1:9099" {
		t.Errorf("TOKEND_PROXY_LISTEN %q, want 127.0.0.1:9099", e.Value)
	}
	checkComponentProxy(t, w, tokend, []string{"runner"})
}

// TestComponentImageOverride: the kustomization's own images: entry, as
// README.md's "The image" shows, names the image tokend runs.
func TestComponentImageOverride(t *testing.T) {
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(componentsDir)); err != nil {
		t.Fatal(err)
	}
	k := filepath.Join(root, "examples", "runner-pod", "kustomization.yaml")
	f, err := os.OpenFile(k, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("images:\n  - name: ghcr.io/ambient-code/tokend\n    newName: registry.example/tokend\n    newTag: v1\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	w := onlyWorkload(t, render(t, filepath.Dir(k)))
	if got := w.spec.InitContainers[0].Image; got != "registry.example/tokend:v1" {
		t.Fatalf("tokend image %s, want registry.example/tokend:v1", got)
	}
}
