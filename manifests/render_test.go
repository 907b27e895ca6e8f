package manifests

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kinds maps every kind the manifests may contain to its API type. A rendered
// object of any other kind fails the test: add its type here first.
var kinds = map[schema.GroupVersionKind]func() any{
	{Version: "v1", Kind: "ServiceAccount"}:             func() any { return new(corev1.ServiceAccount) },
	{Version: "v1", Kind: "Secret"}:                     func() any { return new(corev1.Secret) },
	{Version: "v1", Kind: "ConfigMap"}:                  func() any { return new(corev1.ConfigMap) },
	{Version: "v1", Kind: "Pod"}:                        func() any { return new(corev1.Pod) },
	{Group: "apps", Version: "v1", Kind: "Deployment"}:  func() any { return new(appsv1.Deployment) },
	{Group: "apps", Version: "v1", Kind: "StatefulSet"}: func() any { return new(appsv1.StatefulSet) },
	{Group: "apps", Version: "v1", Kind: "DaemonSet"}:   func() any { return new(appsv1.DaemonSet) },
	{Group: "batch", Version: "v1", Kind: "Job"}:        func() any { return new(batchv1.Job) },
}

// object is one rendered Kubernetes object, decoded into its API type.
type object struct {
	gvk       schema.GroupVersionKind
	name      string
	namespace string // "" when the object names none
	yaml      []byte
	obj       any // *corev1.Secret, *appsv1.Deployment, ...
}

// render builds the kustomization in dir with the kustomize Go API, as
// `kubectl kustomize dir` does, and decodes every object strictly.
func render(t *testing.T, dir string) []object {
	t.Helper()
	objs, err := renderDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func renderDir(dir string) ([]object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	var objs []object
	for _, r := range m.Resources() {
		g := r.GetGvk()
		o := object{gvk: schema.GroupVersionKind{Group: g.Group, Version: g.Version, Kind: g.Kind}, name: r.GetName(), namespace: r.GetNamespace()}
		if o.yaml, err = r.AsYAML(); err != nil {
			return nil, fmt.Errorf("%s: %s %s: %w", dir, o.gvk.Kind, o.name, err)
		}
		newObj, ok := kinds[o.gvk]
		if !ok {
			return nil, fmt.Errorf("%s: %s %s: kind not known to this test", dir, o.gvk, o.name)
		}
		o.obj = newObj()
		if err := decodeStrict(o.yaml, o.obj); err != nil {
			return nil, fmt.Errorf("%s: %s %s: %w", dir, o.gvk.Kind, o.name, err)
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// decodeStrict decodes YAML into an API type the way the API server's strict
// field validation does: an unknown field, a field whose name matches only
// case-insensitively, or a duplicate field is an error.
func decodeStrict(data []byte, into any) error {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return err
	}
	strictErrs, err := json.UnmarshalStrict(j, into)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

// TestRenderStrict renders the base and every overlay and decodes every
// object strictly into the Kubernetes API types.
func TestRenderStrict(t *testing.T) {
	for _, o := range layouts {
		t.Run(o.dir, func(t *testing.T) {
			objs := render(t, o.dir)
			if len(objs) == 0 {
				t.Fatal("rendered no objects")
			}
			for _, obj := range objs {
				t.Logf("%s %s", obj.gvk.Kind, obj.name)
			}
		})
	}
}

// TestLayoutsCoverEveryOverlay keeps the rules table complete: an overlay
// directory the table does not list would escape every rule.
func TestLayoutsCoverEveryOverlay(t *testing.T) {
	entries, err := os.ReadDir("overlays")
	if err != nil {
		t.Fatal(err)
	}
	listed := make(map[string]bool)
	for _, o := range layouts {
		listed[o.dir] = true
	}
	for _, e := range entries {
		if dir := filepath.Join("overlays", e.Name()); e.IsDir() && !listed[dir] {
			t.Errorf("%s is not in the layouts table", dir)
		}
	}
}

// TestDecodeStrictRejects proves the strict decode fails where a lenient one
// would silently drop a field the API server would then also ignore.
func TestDecodeStrictRejects(t *testing.T) {
	var deploy []byte
	for _, o := range render(t, "overlays/init-sidecar") {
		if o.gvk.Kind == "Deployment" {
			deploy = o.yaml
		}
	}
	if err := decodeStrict(deploy, new(appsv1.Deployment)); err != nil {
		t.Fatalf("the rendered Deployment itself: %v", err)
	}
	tests := []struct {
		name, old, new, wantErr string
	}{
		{"unknown field", "sizeLimit: 1Mi", "sizeLimit: 1Mi\n          sizeLimits: 2Mi", "sizeLimits"},
		{"field name in the wrong case", "readOnly: true", "readonly: true", "readonly"},
		{"duplicate field", "medium: Memory", "medium: Memory\n          medium: \"\"", "medium"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := strings.Replace(string(deploy), tt.old, tt.new, 1)
			if bad == string(deploy) {
				t.Fatalf("%q not found in the rendered Deployment", tt.old)
			}
			err := decodeStrict([]byte(bad), new(appsv1.Deployment))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("decodeStrict = %v, want an error naming %q", err, tt.wantErr)
			}
		})
	}
}

// TestRenderRejectsUnknownField shows that kustomize alone accepts a
// misspelt field, and that rendering through this test's decode does not.
func TestRenderRejectsUnknownField(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"kustomization.yaml": "resources:\n- sa.yaml\n",
		"sa.yaml":            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: x\nautomountServiceAccountTokens: false\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err := renderDir(dir)
	if err == nil || !strings.Contains(err.Error(), "automountServiceAccountTokens") {
		t.Fatalf("renderDir = %v, want an unknown field error", err)
	}
}
