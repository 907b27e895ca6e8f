package manifests

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/ambient-code/tokend/podspec"
	"k8s.io/apimachinery/pkg/api/equality"
)

// TestPodspecMatchesComponent applies the Go package podspec to each
// example workload's own pod spec, with the readers, agents and variant the
// example's kustomization names, and finds exactly the pod spec the
// Component renders: the Go builder and the manifests cannot drift apart.
func TestPodspecMatchesComponent(t *testing.T) {
	for _, ex := range componentExamples {
		t.Run(ex.dir, func(t *testing.T) {
			dir := filepath.Join(componentsDir, "examples", ex.dir)
			spec := podSpecOf(t, readWorkload(t, filepath.Join(dir, ex.workload)))
			rendered := onlyWorkload(t, render(t, dir)).spec
			opts := podspec.Options{
				// kustomize renames the generated Secret; the Go builder is
				// given the name.
				SecretName: rendered.InitContainers[0].EnvFrom[0].SecretRef.Name,
				Readers:    ex.readers,
				OpenShift:  ex.openshift,
			}
			if len(ex.agents) > 0 {
				opts.Proxy = &podspec.Proxy{Agents: ex.agents}
			}
			if err := podspec.Apply(spec, opts); err != nil {
				t.Fatal(err)
			}
			if !equality.Semantic.DeepEqual(spec, rendered) {
				got, _ := json.MarshalIndent(spec, "", "  ")
				want, _ := json.MarshalIndent(rendered, "", "  ")
				t.Fatalf("podspec.Apply gave\n%s\nthe Component renders\n%s", got, want)
			}
		})
	}
}
