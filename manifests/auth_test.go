package manifests

import (
	"strings"
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
			for _, name := range []string{"SESSION_ID", "AMBIENT_CP_TOKEN_PUBLIC_KEY", "AMBIENT_RUNNER_BOOTSTRAP_TOKEN"} {
				if _, ok := env(c, name); ok {
					t.Errorf("%s: a consumer has %s", c.Name, name)
				}
			}
			continue
		}
		if _, ok := env(c, "AMBIENT_CP_TOKEN_URL"); !ok {
			t.Errorf("%s: no AMBIENT_CP_TOKEN_URL", c.Name)
		}
		switch w.auth {
		case encryptedSession:
			checkSessionAuth(t, w, c)
		case bearer:
			checkBearerAuth(t, w, c)
		}
	}
}

// checkBearerAuth: the successor's settings, as its reconciler gives them
// (protocol.md section 3): the run capability from a Secret in
// AMBIENT_RUNNER_BOOTSTRAP_TOKEN, the CA bundle in a read-only directory
// mount named by AMBIENT_CP_CA_CERT_FILE, https, and none of the deployed
// mode's settings.
func checkBearerAuth(t *testing.T, w workload, c *corev1.Container) {
	if e, ok := env(c, "TOKEND_AUTH"); !ok || e.Value != bearer {
		t.Errorf("%s: TOKEND_AUTH is not %s", c.Name, bearer)
	}
	if e, ok := env(c, "AMBIENT_RUNNER_BOOTSTRAP_TOKEN"); !ok || e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Errorf("%s: AMBIENT_RUNNER_BOOTSTRAP_TOKEN must come from a Secret", c.Name)
	}
	for _, name := range []string{"SESSION_ID", "AMBIENT_CP_TOKEN_PUBLIC_KEY", "TOKEND_PUBLIC_KEY_FILE", "TOKEND_CREDENTIAL"} {
		if _, ok := env(c, name); ok {
			t.Errorf("%s: %s set in bearer mode", c.Name, name)
		}
	}
	if u, _ := env(c, "AMBIENT_CP_TOKEN_URL"); !strings.HasPrefix(u.Value, "https://") {
		t.Errorf("%s: the token URL is not https", c.Name)
	}
	ca, ok := env(c, "AMBIENT_CP_CA_CERT_FILE")
	if !ok {
		t.Fatalf("%s: no AMBIENT_CP_CA_CERT_FILE", c.Name)
	}
	if m, v := w.mountHolding(c, ca.Value); m == nil || !m.ReadOnly || m.SubPath != "" || v == nil || (v.ConfigMap == nil && v.Secret == nil) {
		t.Errorf("%s: %s is not in a read-only ConfigMap or Secret directory mount", c.Name, ca.Value)
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
