package manifests

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// kindsWorkloads is one workload of each kind the Components patch, with a
// single container and no volume of its own.
const kindsWorkloads = `apiVersion: v1
kind: Pod
metadata: {name: w}
spec:
  containers: [{name: app, image: registry.example/app:1}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: w}
spec:
  selector: {matchLabels: {app: w}}
  template:
    metadata: {labels: {app: w}}
    spec:
      containers: [{name: app, image: registry.example/app:1}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: w}
spec:
  selector: {matchLabels: {app: w}}
  template:
    metadata: {labels: {app: w}}
    spec:
      containers: [{name: app, image: registry.example/app:1}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: w}
spec:
  selector: {matchLabels: {app: w}}
  template:
    metadata: {labels: {app: w}}
    spec:
      containers: [{name: app, image: registry.example/app:1}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: w}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: app, image: registry.example/app:1}]
`

// TestComponentSameForEveryKind renders each Component, and each with the
// proxy, on a Pod and on every kind with a pod template, and finds the same
// tokend container and volume in all: each Component's pod.yaml and
// template.yaml, kept in step by hand, agree.
func TestComponentSameForEveryKind(t *testing.T) {
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(componentsDir)); err != nil {
		t.Fatal(err)
	}
	for _, components := range [][]string{
		{"tokend"}, {"tokend-openshift"}, {"tokend", "tokend-proxy"}, {"tokend-openshift", "tokend-proxy"},
	} {
		t.Run(strings.Join(components, "+"), func(t *testing.T) {
			dir, err := os.MkdirTemp(root, "kinds")
			if err != nil {
				t.Fatal(err)
			}
			k := "resources: [workloads.yaml]\ncomponents:\n"
			for _, c := range components {
				k += fmt.Sprintf("  - ../%s\n", c)
			}
			k += "secretGenerator:\n  - name: tokend\n    literals: [AMBIENT_CP_TOKEN_URL=http://cp/token]\n"
			for name, body := range map[string]string{"kustomization.yaml": k, "workloads.yaml": kindsWorkloads} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var first *corev1.PodSpec
			var patched int
			for _, o := range render(t, dir) {
				_, spec := podTemplate(o.obj)
				if spec == nil {
					continue
				}
				patched++
				tokend := checkTokendFirst(t, spec)
				if _, proxy := env(tokend, "TOKEND_PROXY_LISTEN"); proxy != (len(components) == 2) {
					t.Errorf("%s: TOKEND_PROXY_LISTEN set %v, want %v", o.gvk.Kind, proxy, len(components) == 2)
				}
				switch {
				case first == nil:
					first = spec
				case !reflect.DeepEqual(*tokend, first.InitContainers[0]):
					t.Errorf("%s: tokend differs from the Pod's: pod.yaml and template.yaml are out of step\n%+v\nwant\n%+v", o.gvk.Kind, *tokend, first.InitContainers[0])
				case !reflect.DeepEqual(spec.Volumes, first.Volumes):
					t.Errorf("%s: volumes %+v, the Pod's %+v", o.gvk.Kind, spec.Volumes, first.Volumes)
				}
			}
			if patched != 5 {
				t.Fatalf("rendered %d workloads, want 5", patched)
			}
		})
	}
}
