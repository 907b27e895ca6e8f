package manifests

import (
	"os"
	"slices"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
)

// TestExecExample holds examples/exec-job.yaml, which is not an overlay
// (its image is a placeholder to build), to the pod rules that apply to a
// single container, and to the shape of a tokend exec command line.
func TestExecExample(t *testing.T) {
	data, err := os.ReadFile("examples/exec-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var job batchv1.Job
	if err := decodeStrict(data, &job); err != nil {
		t.Fatal(err)
	}
	w := workload{layout: layout{dir: "examples/exec-job.yaml", kind: "Job"}, meta: &job.Spec.Template.ObjectMeta, spec: &job.Spec.Template.Spec}
	for name, check := range map[string]func(*testing.T, workload){
		"restricted": checkRestricted, "pod security": checkPodSecurity, "container security": checkContainerSecurity,
		"token volume": checkTokenVolume, "resources": checkResources,
	} {
		t.Run(name, func(t *testing.T) { check(t, w) })
	}
	if n := len(w.spec.Containers) + len(w.spec.InitContainers); n != 1 {
		t.Fatalf("%d containers, want the one that runs tokend exec", n)
	}
	c := w.spec.Containers[0]
	sep := slices.Index(c.Args, "--")
	if len(c.Command) != 1 || len(c.Args) == 0 || c.Args[0] != "exec" || sep < 0 || sep == len(c.Args)-1 {
		t.Errorf("command %q args %q, want tokend exec [flags] -- CMD", c.Command, c.Args)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if sid, ok := env(&c, "SESSION_ID"); !ok || sid.ValueFrom == nil || sid.ValueFrom.SecretKeyRef == nil {
		t.Error("SESSION_ID must come from a Secret")
	}
	for _, m := range c.VolumeMounts {
		if m.Name == tokenVolume && (m.ReadOnly || m.MountPath != tokenDir || m.SubPath != "") {
			t.Errorf("token volume mount %+v: tokend writes it, at %s, without subPath", m, tokenDir)
		}
	}
}
