package manifests

import (
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

// checkReferences: every Secret, ConfigMap and ServiceAccount the pod names
// is rendered beside it, in its namespace (or provided by the platform), and
// every rendered Secret is used.
func checkReferences(t *testing.T, w workload) {
	for _, p := range unresolvedRefs(w) {
		t.Error(p)
	}
	used := make(map[string]bool)
	for _, r := range podRefs(w.spec) {
		used[r.kind+"/"+r.name] = true
	}
	for _, o := range w.objs {
		if o.gvk.Kind == "Secret" && !used["Secret/"+o.name] {
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
