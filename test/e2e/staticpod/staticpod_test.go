package staticpod

import (
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const (
	manifests = "../../../manifests"
	testKey   = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtest\n-----END PUBLIC KEY-----\n"
	testSID   = "e2e-session-secret-0001"
	testCA    = "/node/ca.pem"
)

func options(p E2EPod) Options {
	return Options{PublicKey: testKey, SessionID: testSID, CAFile: testCA, RunAsUser: p.RunAsUser}
}

// TestE2EPodsAreStaticPods: each pod the end-to-end test runs references
// no Secret, ServiceAccount or ConfigMap, shares the node's network with
// every in-cluster Service name of its env values pointed at the node's
// loopback, pulls no image, keeps no placeholder, and has tokend first
// among its init containers; the change lines never hold a value.
func TestE2EPodsAreStaticPods(t *testing.T) {
	for _, p := range E2EPods {
		t.Run(p.Name, func(t *testing.T) {
			pod, changes, err := Render(filepath.Join(manifests, p.Dir), options(p))
			if err != nil {
				t.Fatal(err)
			}
			s := pod.Spec
			if s.ServiceAccountName != "" || !s.HostNetwork {
				t.Errorf("serviceAccountName %q, hostNetwork %v", s.ServiceAccountName, s.HostNetwork)
			}
			if len(s.InitContainers) == 0 || s.InitContainers[0].Name != "tokend" {
				t.Errorf("tokend is not the first init container")
			}
			aliases := map[string]bool{}
			for _, a := range s.HostAliases {
				for _, h := range a.Hostnames {
					aliases[h] = a.IP == "127.0.0.1"
				}
			}
			for _, v := range s.Volumes {
				if v.Secret != nil || v.ConfigMap != nil || v.Projected != nil {
					t.Errorf("volume %s references an API object", v.Name)
				}
			}
			for _, c := range slices.Concat(s.InitContainers, s.Containers) {
				if c.ImagePullPolicy != corev1.PullNever {
					t.Errorf("%s: imagePullPolicy %q", c.Name, c.ImagePullPolicy)
				}
				if len(c.EnvFrom) > 0 {
					t.Errorf("%s: envFrom left", c.Name)
				}
				for _, e := range c.Env {
					if e.ValueFrom != nil || strings.HasPrefix(e.Value, "REPLACE-") {
						t.Errorf("%s: env %s is a reference or a placeholder", c.Name, e.Name)
					}
					if u, err := url.Parse(e.Value); err == nil && strings.HasSuffix(u.Hostname(), ".svc") && !aliases[u.Hostname()] {
						t.Errorf("%s: env %s names %s, which no host alias points at 127.0.0.1", c.Name, e.Name, u.Hostname())
					}
				}
			}
			tokend := s.InitContainers[0]
			if env(tokend, "AMBIENT_CP_TOKEN_PUBLIC_KEY") != testKey || env(tokend, "SESSION_ID") == "" {
				t.Error("tokend lacks the stand-in's key or a session id")
			}
			for _, c := range changes {
				if strings.Contains(c, testSID) || strings.Contains(c, "MIIB") {
					t.Errorf("a change line holds a value: %q", c)
				}
			}
			if len(changes) == 0 {
				t.Error("no change reported")
			}
		})
	}
}

func env(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// TestStandInsWhereNeeded: the proxy's tokend trusts the node's CA file by
// hostPath, and no other pod gets it; the OpenShift pod runs as the
// assigned user with that fsGroup, and no other pod sets a user.
func TestStandInsWhereNeeded(t *testing.T) {
	for _, p := range E2EPods {
		pod, changes, err := Render(filepath.Join(manifests, p.Dir), options(p))
		if err != nil {
			t.Fatal(err)
		}
		tokend := pod.Spec.InitContainers[0]
		hasCA := env(tokend, "TOKEND_CA_FILE") == caMount
		if want := p.Name == "credential-proxy"; hasCA != want {
			t.Errorf("%s: TOKEND_CA_FILE set %v, want %v", p.Name, hasCA, want)
		}
		if hasCA {
			v := pod.Spec.Volumes[len(pod.Spec.Volumes)-1]
			if v.HostPath == nil || v.HostPath.Path != testCA || *v.HostPath.Type != corev1.HostPathFile {
				t.Errorf("%s: the CA volume is %+v", p.Name, v)
			}
			if !strings.Contains(strings.Join(changes, "\n"), "TOKEND_CA_FILE") {
				t.Errorf("%s: the CA is not among the changes", p.Name)
			}
		}
		sc := pod.Spec.SecurityContext
		if p.RunAsUser != nil {
			if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != OpenShiftUID || sc.FSGroup == nil || *sc.FSGroup != OpenShiftUID {
				t.Errorf("%s: securityContext %+v, want user and fsGroup %d", p.Name, sc, OpenShiftUID)
			}
			if tokend.SecurityContext.RunAsUser != nil {
				t.Errorf("%s: tokend has a user of its own", p.Name)
			}
		}
	}
}

// TestOnlyWhatAStaticPodNeeds: converting the credential-proxy Job keeps
// every container as the Job's template has it (command, image, probes,
// resources, security context, mounts, ports), apart from the listed
// changes.
func TestOnlyWhatAStaticPodNeeds(t *testing.T) {
	dir := filepath.Join(manifests, "overlays/credential-proxy")
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var job batchv1.Job
	for _, r := range m.Resources() {
		if r.GetKind() == "Job" {
			b, err := r.AsYAML()
			if err != nil {
				t.Fatal(err)
			}
			if err := decode(b, &job); err != nil {
				t.Fatal(err)
			}
		}
	}
	pod, _, err := Render(dir, Options{PublicKey: testKey, SessionID: testSID, CAFile: testCA})
	if err != nil {
		t.Fatal(err)
	}
	want := job.Spec.Template.Spec
	got := pod.Spec
	if len(got.InitContainers) != len(want.InitContainers) || len(got.Containers) != len(want.Containers) {
		t.Fatal("the containers changed in number")
	}
	for i, g := range slices.Concat(got.InitContainers, got.Containers) {
		w := slices.Concat(want.InitContainers, want.Containers)[i]
		g.Env, w.Env, g.EnvFrom, w.EnvFrom = nil, nil, nil, nil
		g.ImagePullPolicy, w.ImagePullPolicy = "", ""
		if n := len(g.VolumeMounts); n > 0 && g.VolumeMounts[n-1].Name == "e2e-ca" {
			g.VolumeMounts = g.VolumeMounts[:n-1]
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("container %s changed beyond env, pull policy and the CA:\n got %+v\nwant %+v", g.Name, g, w)
		}
	}
	if got.RestartPolicy != corev1.RestartPolicyNever || !reflect.DeepEqual(got.SecurityContext, want.SecurityContext) {
		t.Error("the pod's restart policy or security context changed")
	}
}

// TestConvertRefuses: what a static pod cannot carry is an error naming
// the object and the way out.
func TestConvertRefuses(t *testing.T) {
	dir := func(d string) [][]byte {
		m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(manifests, d))
		if err != nil {
			t.Fatal(err)
		}
		var docs [][]byte
		for _, r := range m.Resources() {
			b, err := r.AsYAML()
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, b)
		}
		return docs
	}
	service := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: cp\nspec:\n  ports: [{port: 8080}]\n")
	for _, c := range []struct {
		name string
		docs [][]byte
		o    Options
		want []string
	}{
		{"a Secret volume", dir("overlays/secret-key-file"), Options{PublicKey: testKey}, []string{"volume public-key", "Secret volume", "inline"}},
		{"a placeholder without a value", dir("components/examples/runner-pod"), Options{SessionID: testSID}, []string{"AMBIENT_CP_TOKEN_PUBLIC_KEY", "placeholder", "Options.PublicKey"}},
		{"two workloads", append(dir("overlays/native-sidecar"), dir("components/examples/runner-pod")...), Options{PublicKey: testKey, SessionID: testSID}, []string{"two workloads", "one per static pod"}},
		{"another kind", append(dir("overlays/native-sidecar"), service), Options{PublicKey: testKey}, []string{"Service cp", "add its handling"}},
		{"no workload", nil, Options{}, []string{"no workload"}},
	} {
		_, _, err := Convert(c.docs, c.o)
		if err == nil {
			t.Errorf("%s: converted", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v does not say %q", c.name, err, w)
			}
		}
	}
}
