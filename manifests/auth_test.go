package manifests

import (
	"slices"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// checkAuth: how each auth mode gets its settings. The public key and the
// session id reach tokend only, never the consumer.
func checkAuth(t *testing.T, w workload) {
	for _, c := range w.containers() {
		if len(c.EnvFrom) > 0 {
			t.Errorf("%s: envFrom hides what reaches the environment", c.Name)
		}
		if !isTokend(c) {
			for _, name := range []string{"SESSION_ID", "AMBIENT_CP_TOKEN_PUBLIC_KEY"} {
				if _, ok := env(c, name); ok {
					t.Errorf("%s: a consumer has %s", c.Name, name)
				}
			}
			continue
		}
		if _, ok := env(c, "AMBIENT_CP_TOKEN_URL"); !ok {
			t.Errorf("%s: no AMBIENT_CP_TOKEN_URL", c.Name)
		}
		if w.auth == encryptedSession {
			checkSessionAuth(t, w, c)
		}
	}
}

func checkSessionAuth(t *testing.T, w workload, c *corev1.Container) {
	if e, ok := env(c, "TOKEND_AUTH"); ok && e.Value != encryptedSession {
		t.Errorf("%s: TOKEND_AUTH = %q", c.Name, e.Value)
	}
	if sid, ok := env(c, "SESSION_ID"); !ok || sid.Value != "" || sid.ValueFrom == nil || sid.ValueFrom.SecretKeyRef == nil {
		t.Errorf("%s: SESSION_ID must come from a Secret", c.Name)
	}
	_, inEnv := env(c, "AMBIENT_CP_TOKEN_PUBLIC_KEY")
	file, inFile := env(c, "TOKEND_PUBLIC_KEY_FILE")
	if inEnv == w.keyFile || inFile != w.keyFile {
		t.Errorf("%s: public key in env %v, from a file %v; want exactly one, the file = %v", c.Name, inEnv, inFile, w.keyFile)
	}
	if inFile {
		m, v := w.mountHolding(c, file.Value)
		if m == nil || !m.ReadOnly || m.SubPath != "" || v == nil || v.Secret == nil {
			t.Errorf("%s: %s is not in a read-only Secret directory mount", c.Name, file.Value)
		}
	}
}

// externalConfigMaps are provided by the platform, not by these manifests.
var externalConfigMaps = []string{"ambient-control-plane-ca"}

// checkReferences: every Secret, ConfigMap and ServiceAccount the pod names
// is rendered beside it (or provided by the platform), and every rendered
// Secret is used.
func checkReferences(t *testing.T, w workload) {
	used := make(map[string]bool)
	for _, c := range w.containers() {
		for _, e := range c.Env {
			if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				continue
			}
			ref := e.ValueFrom.SecretKeyRef
			used[ref.Name] = true
			if o := w.find("Secret", ref.Name); o == nil {
				t.Errorf("%s: Secret %s is not rendered", c.Name, ref.Name)
			} else if _, ok := o.obj.(*corev1.Secret).Data[ref.Key]; !ok {
				t.Errorf("%s: Secret %s has no key %s", c.Name, ref.Name, ref.Key)
			}
		}
	}
	for _, v := range w.spec.Volumes {
		if s := v.Secret; s != nil {
			used[s.SecretName] = true
			if w.find("Secret", s.SecretName) == nil {
				t.Errorf("volume %s: Secret %s is not rendered", v.Name, s.SecretName)
			}
		}
		if cm := v.ConfigMap; cm != nil && w.find("ConfigMap", cm.Name) == nil && !slices.Contains(externalConfigMaps, cm.Name) {
			t.Errorf("volume %s: ConfigMap %s is not rendered", v.Name, cm.Name)
		}
	}
	for _, o := range w.objs {
		if o.gvk.Kind == "Secret" && !used[o.name] {
			t.Errorf("Secret %s is rendered but not used", o.name)
		}
	}
	sa := w.find("ServiceAccount", w.spec.ServiceAccountName)
	if sa == nil {
		t.Fatalf("ServiceAccount %q is not rendered", w.spec.ServiceAccountName)
	}
	if a := sa.obj.(*corev1.ServiceAccount).AutomountServiceAccountToken; a == nil || *a {
		t.Errorf("ServiceAccount %s: automountServiceAccountToken is not false", sa.name)
	}
}

var restrictedEvaluator = sync.OnceValues(func() (policy.Evaluator, error) {
	return policy.NewEvaluator(policy.DefaultChecks(), nil)
})

// checkRestricted evaluates the pod template with the Pod Security
// Admission library's own checks, at the restricted level, latest version.
func checkRestricted(t *testing.T, w workload) {
	e, err := restrictedEvaluator()
	if err != nil {
		t.Fatal(err)
	}
	lv := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	if r := policy.AggregateCheckResults(e.EvaluatePod(lv, w.meta, w.spec)); !r.Allowed {
		t.Errorf("restricted Pod Security Standard: %s", r.ForbiddenDetail())
	}
}
