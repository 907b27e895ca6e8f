package podspec_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ambient-code/tokend/podspec"
	corev1 "k8s.io/api/core/v1"
)

// sessionPod is the upstream layout: a credential sidecar, a runner and an
// MCP server listening on 8081, with volumes and a pod securityContext.
func sessionPod() *corev1.PodSpec {
	id := int64(1000)
	return &corev1.PodSpec{
		RestartPolicy:   corev1.RestartPolicyNever,
		SecurityContext: &corev1.PodSecurityContext{RunAsUser: &id, RunAsGroup: &id, FSGroup: &id},
		InitContainers: []corev1.Container{{
			Name: "git-credentials", Image: "registry.example/git-credentials:1.4",
			RestartPolicy: new(corev1.ContainerRestartPolicyAlways),
			VolumeMounts:  []corev1.VolumeMount{{Name: "git", MountPath: "/var/run/git"}},
		}},
		Containers: []corev1.Container{
			{
				Name: "runner", Image: "registry.example/runner:2.3",
				Env:          []corev1.EnvVar{{Name: "AMBIENT_API_SERVER_URL", Value: "https://api.example:8443"}, {Name: "MODE", Value: "x"}},
				VolumeMounts: []corev1.VolumeMount{{Name: "workspace", MountPath: "/workspace"}},
			},
			{Name: "mcp", Image: "registry.example/mcp-server:0.9", Ports: []corev1.ContainerPort{{Name: "mcp", ContainerPort: 8081}}},
		},
		Volumes: []corev1.Volume{{Name: "workspace"}, {Name: "git"}},
	}
}

func find(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

func env(c *corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// TestApply: tokend first, its volume first, the readers' read-only mounts
// appended, and everything else of the pod as it was.
func TestApply(t *testing.T) {
	before := sessionPod()
	spec := sessionPod()
	if err := podspec.Apply(spec, podspec.Options{Readers: []string{"git-credentials", "mcp"}}); err != nil {
		t.Fatal(err)
	}
	tokend := spec.InitContainers[0]
	if tokend.Name != "tokend" || tokend.Image != podspec.DefaultImage || !slices.Equal(tokend.Args, []string{"run"}) ||
		tokend.RestartPolicy == nil || *tokend.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("first init container %s %s %q, want the tokend native sidecar", tokend.Name, tokend.Image, tokend.Args)
	}
	if p := tokend.StartupProbe; p == nil || p.HTTPGet.Path != "/startupz" || p.HTTPGet.Port.StrVal != "health" {
		t.Errorf("startupProbe %+v, want /startupz on health", p)
	}
	if env(&tokend, "TOKEND_HEALTH_ADDR") != ":12081" || tokend.Ports[0].ContainerPort != 12081 {
		t.Errorf("health port: env %q, port %d; want 12081", env(&tokend, "TOKEND_HEALTH_ADDR"), tokend.Ports[0].ContainerPort)
	}
	if tokend.EnvFrom[0].SecretRef.Name != "tokend" || env(&tokend, "TOKEND_PROXY_LISTEN") != "" {
		t.Errorf("envFrom %+v, proxy %q: want the Secret tokend and no proxy", tokend.EnvFrom, env(&tokend, "TOKEND_PROXY_LISTEN"))
	}
	if sc := tokend.SecurityContext; *sc.RunAsUser != 65532 || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation {
		t.Errorf("securityContext %+v, want the restricted standard as 65532", sc)
	}
	if v := spec.Volumes[0]; v.Name != podspec.VolumeName || v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory || v.EmptyDir.SizeLimit.String() != "1Mi" {
		t.Errorf("first volume %+v, want the 1Mi memory emptyDir", v)
	}
	readOnly := corev1.VolumeMount{Name: podspec.VolumeName, MountPath: podspec.TokenDir, ReadOnly: true}
	for _, c := range []*corev1.Container{find(spec.InitContainers, "git-credentials"), find(spec.Containers, "mcp")} {
		if got := c.VolumeMounts[len(c.VolumeMounts)-1]; !reflect.DeepEqual(got, readOnly) {
			t.Errorf("%s: last mount %+v, want %+v", c.Name, got, readOnly)
		}
	}
	// Remove what Apply added: the pod as it was remains.
	spec.InitContainers = spec.InitContainers[1:]
	spec.Volumes = spec.Volumes[1:]
	for _, c := range []*corev1.Container{&spec.InitContainers[0], &spec.Containers[1]} {
		c.VolumeMounts = c.VolumeMounts[:len(c.VolumeMounts)-1]
		if len(c.VolumeMounts) == 0 {
			c.VolumeMounts = nil
		}
	}
	if !reflect.DeepEqual(spec, before) {
		t.Errorf("beyond its additions, Apply changed the pod:\n%+v\nwant\n%+v", spec, before)
	}
}

// TestApplyProxy: the proxy's address in tokend and in each agent's
// AMBIENT_API_SERVER_URL, replacing the value it had or added.
func TestApplyProxy(t *testing.T) {
	spec := sessionPod()
	err := podspec.Apply(spec, podspec.Options{Readers: []string{"mcp"}, Proxy: &podspec.Proxy{Listen: "127.0.0.1:9000", Agents: []string{"runner", "git-credentials"}}})
	if err != nil {
		t.Fatal(err)
	}
	tokend := &spec.InitContainers[0]
	if got := env(tokend, "TOKEND_PROXY_LISTEN"); got != "127.0.0.1:9000" {
		t.Errorf("TOKEND_PROXY_LISTEN %q", got)
	}
	if lim := tokend.Resources.Limits.Memory(); lim.String() != "48Mi" {
		t.Errorf("memory limit %s, want the proxy's 48Mi", lim)
	}
	runner := find(spec.Containers, "runner")
	if !reflect.DeepEqual(runner.Env, []corev1.EnvVar{{Name: "AMBIENT_API_SERVER_URL", Value: "http://127.0.0.1:9000"}, {Name: "MODE", Value: "x"}}) {
		t.Errorf("runner env %+v: want its URL replaced in place", runner.Env)
	}
	if got := find(spec.InitContainers, "git-credentials").Env; !reflect.DeepEqual(got, []corev1.EnvVar{{Name: "AMBIENT_API_SERVER_URL", Value: "http://127.0.0.1:9000"}}) {
		t.Errorf("git-credentials env %+v: want the URL added", got)
	}
	if slices.ContainsFunc(runner.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == podspec.VolumeName }) {
		t.Error("an agent mounts the token")
	}
}

func TestApplyOpenShift(t *testing.T) {
	spec := sessionPod()
	if err := podspec.Apply(spec, podspec.Options{OpenShift: true, Image: "registry.example/tokend:v1", SecretName: "s", HealthPort: 13000}); err != nil {
		t.Fatal(err)
	}
	c := spec.InitContainers[0]
	if sc := c.SecurityContext; sc.RunAsUser != nil || sc.RunAsGroup != nil || !*sc.RunAsNonRoot {
		t.Errorf("securityContext %+v, want no user or group, non-root", sc)
	}
	if c.Image != "registry.example/tokend:v1" || c.EnvFrom[0].SecretRef.Name != "s" || env(&c, "TOKEND_HEALTH_ADDR") != ":13000" || c.Ports[0].ContainerPort != 13000 {
		t.Errorf("image %s, secret %s, health %s %d: want the options'", c.Image, c.EnvFrom[0].SecretRef.Name, env(&c, "TOKEND_HEALTH_ADDR"), c.Ports[0].ContainerPort)
	}
}

// TestApplyErrors: each bad option is named, with what to change, and the
// pod spec is left as it was.
func TestApplyErrors(t *testing.T) {
	applied := sessionPod()
	if err := podspec.Apply(applied, podspec.Options{}); err != nil {
		t.Fatal(err)
	}
	withVolume := sessionPod()
	withVolume.Volumes = append(withVolume.Volumes, corev1.Volume{Name: podspec.VolumeName})
	withMount := sessionPod()
	withMount.Containers[1].VolumeMounts = []corev1.VolumeMount{{Name: "other", MountPath: podspec.TokenDir}}
	tests := []struct {
		name string
		spec *corev1.PodSpec
		opts podspec.Options
		want []string
	}{
		{"applied twice", applied, podspec.Options{}, []string{"already has a container named tokend", "apply tokend once"}},
		{"volume taken", withVolume, podspec.Options{}, []string{"volume named tokend-token", "rename that volume"}},
		{"unknown reader", sessionPod(), podspec.Options{Readers: []string{"runer"}}, []string{`Options.Readers: the pod has no container "runer"`, "[git-credentials runner mcp]"}},
		{"reader twice", sessionPod(), podspec.Options{Readers: []string{"mcp", "runner", "mcp"}}, []string{"Options.Readers names mcp twice"}},
		{"tokend as reader", sessionPod(), podspec.Options{Readers: []string{"tokend"}}, []string{"Options.Readers names tokend itself"}},
		{"reader mounts the directory", withMount, podspec.Options{Readers: []string{"mcp"}}, []string{"mcp already mounts a volume at /var/run/ambient", "remove that mount"}},
		{"health port taken", sessionPod(), podspec.Options{HealthPort: 8081}, []string{"Options.HealthPort 8081", "mcp listens on it", "choose another port"}},
		{"health port out of range", sessionPod(), podspec.Options{HealthPort: 70000}, []string{"Options.HealthPort 70000", "1 to 65535"}},
		{"proxy not loopback", sessionPod(), podspec.Options{Proxy: &podspec.Proxy{Listen: "0.0.0.0:8082", Agents: []string{"runner"}}}, []string{`Proxy.Listen "0.0.0.0:8082"`, "loopback"}},
		{"proxy port taken", sessionPod(), podspec.Options{Proxy: &podspec.Proxy{Listen: "127.0.0.1:8081", Agents: []string{"runner"}}}, []string{"mcp listens on port 8081"}},
		{"no agents", sessionPod(), podspec.Options{Proxy: &podspec.Proxy{}}, []string{"Proxy.Agents is empty"}},
		{"agent reads the token", sessionPod(), podspec.Options{Readers: []string{"runner"}, Proxy: &podspec.Proxy{Agents: []string{"runner"}}}, []string{"runner is also in Options.Readers", "remove it from Readers"}},
		{"unknown agent", sessionPod(), podspec.Options{Proxy: &podspec.Proxy{Agents: []string{"agent"}}}, []string{`Proxy.Agents: the pod has no container "agent"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.spec.DeepCopy()
			err := podspec.Apply(tt.spec, tt.opts)
			if err == nil {
				t.Fatal("Apply succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !reflect.DeepEqual(tt.spec, before) {
				t.Error("Apply changed the pod spec before failing")
			}
		})
	}
	if err := podspec.Apply(nil, podspec.Options{}); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Errorf("Apply(nil) = %v", err)
	}
}
