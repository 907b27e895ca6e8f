// Package podspec adds tokend to a Kubernetes pod spec built in Go: the
// same change the kustomize Component manifests/components/tokend (with
// manifests/components/tokend-proxy for the credential proxy) makes to a
// manifest, for an operator that builds its pods from k8s.io/api structs.
// A test in the manifests module holds the two to the same pod.
//
// Apply makes these changes, and nothing else:
//
//  1. tokend becomes the first init container, a native sidecar
//     (restartPolicy Always, Kubernetes 1.29 and later) running `tokend
//     run`, whose startup probe on /startupz holds back every container
//     after it until the first token is on disk. It reads its settings
//     (AMBIENT_CP_TOKEN_URL, SESSION_ID, AMBIENT_CP_TOKEN_PUBLIC_KEY, ...)
//     from a Secret, one environment variable per key, and runs under the
//     restricted Pod Security Standard with its own securityContext.
//  2. A memory emptyDir volume named tokend-token, the token directory,
//     becomes the pod's first volume.
//  3. Each container named in Options.Readers mounts that directory,
//     read-only, at /var/run/ambient, and reads /var/run/ambient/token.
//  4. With Options.Proxy, tokend also runs its credential proxy on a
//     loopback address, and each container named in Proxy.Agents gets
//     AMBIENT_API_SERVER_URL pointing at it (the proxy forwards to the
//     AMBIENT_API_SERVER_URL in tokend's Secret).
//
// The pod's own containers, init containers, volumes and securityContext
// are kept, in their order.
//
// The package is a module of its own, so that importing tokenfile does not
// bring in k8s.io/api.
package podspec

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Names and defaults, the same as the Component's.
const (
	ContainerName = "tokend"            // tokend's init container
	VolumeName    = "tokend-token"      // the token directory's volume
	TokenDir      = "/var/run/ambient"  // where every container mounts it
	TokenFile     = TokenDir + "/token" // the token, replaced by a rename on each refresh
	DefaultImage  = "ghcr.io/ambient-code/tokend:latest"
	// DefaultSecretName is the Secret tokend's settings come from.
	DefaultSecretName = "tokend"
	// DefaultHealthPort serves /startupz, /livez, /readyz and /metrics. All
	// containers of a pod share one network namespace, so no other
	// container of the pod may listen on it.
	DefaultHealthPort = 12081
	// DefaultProxyListen is the credential proxy's loopback address.
	DefaultProxyListen = "127.0.0.1:8082"
)

// nonRootID is the user and group tokend runs as: distroless's nonroot,
// the Dockerfile's USER.
const nonRootID = 65532

// Options says how tokend joins the pod. The zero value is valid: tokend
// with the defaults, and no container reading the token yet.
type Options struct {
	// Image is tokend's image; "" means DefaultImage.
	Image string
	// SecretName names the Secret, in the pod's namespace, whose every key
	// becomes an environment variable of tokend (and of tokend only);
	// "" means DefaultSecretName.
	SecretName string
	// HealthPort is tokend's probe and metrics port, 1 to 65535; 0 means
	// DefaultHealthPort.
	HealthPort int32
	// Readers names the containers, init or main, that read the token:
	// each mounts the token directory read-only at TokenDir.
	Readers []string
	// OpenShift leaves tokend's user and group unset, for OpenShift's
	// restricted-v2, which assigns them from the namespace's range.
	OpenShift bool
	// Proxy, when not nil, runs tokend's credential proxy.
	Proxy *Proxy
}

// Proxy configures tokend's credential proxy: a container can call the
// platform's API through it without ever holding the token. The upstream,
// the API server's https URL, is AMBIENT_API_SERVER_URL in tokend's Secret.
type Proxy struct {
	// Listen is the proxy's loopback host:port; "" means
	// DefaultProxyListen.
	Listen string
	// Agents names the containers whose AMBIENT_API_SERVER_URL becomes
	// http://Listen (replacing any value they had). An agent must not
	// also be a reader.
	Agents []string
}

// Apply adds tokend to spec as the package documentation describes.
//
// It checks everything first and changes nothing when it returns an
// error: spec already has a container named ContainerName or a volume
// named VolumeName; a reader or agent names no container of spec, or a
// container that already mounts something at TokenDir; an agent is also a
// reader; the health port or the proxy's address is out of range, not
// loopback, or declared by another container. Each error names the option
// and says what to change.
//
// Apply modifies spec in place; it is safe for concurrent use on distinct
// specs.
func Apply(spec *corev1.PodSpec, opts Options) error {
	if spec == nil {
		return errors.New("podspec: Apply needs a pod spec, got nil")
	}
	opts.Image = cmp.Or(opts.Image, DefaultImage)
	opts.SecretName = cmp.Or(opts.SecretName, DefaultSecretName)
	opts.HealthPort = cmp.Or(opts.HealthPort, DefaultHealthPort)
	if opts.Proxy != nil {
		p := *opts.Proxy // the caller's Proxy is not modified
		p.Listen = cmp.Or(p.Listen, DefaultProxyListen)
		opts.Proxy = &p
	}
	if err := check(spec, opts); err != nil {
		return err
	}
	spec.InitContainers = slices.Insert(spec.InitContainers, 0, container(opts))
	spec.Volumes = slices.Insert(spec.Volumes, 0, corev1.Volume{
		Name: VolumeName,
		VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium:    corev1.StorageMediumMemory,
			SizeLimit: new(resource.MustParse("1Mi")), // a token and the temporary file of its replacement
		}},
	})
	forEach(spec, opts.Readers, func(c *corev1.Container) {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: VolumeName, MountPath: TokenDir, ReadOnly: true})
	})
	if opts.Proxy != nil {
		url := corev1.EnvVar{Name: "AMBIENT_API_SERVER_URL", Value: "http://" + opts.Proxy.Listen}
		forEach(spec, opts.Proxy.Agents, func(c *corev1.Container) {
			if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == url.Name }); i >= 0 {
				c.Env[i] = url
			} else {
				c.Env = append(c.Env, url)
			}
		})
	}
	return nil
}

// forEach calls f with each container of spec, init or main, named in names.
func forEach(spec *corev1.PodSpec, names []string, f func(*corev1.Container)) {
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range list {
			if slices.Contains(names, list[i].Name) {
				f(&list[i])
			}
		}
	}
}

// portOf returns the port of a host:port address, or an error.
func portOf(addr string) (int32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return 0, fmt.Errorf("%s is not a loopback IP address", host)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not 1 to 65535", port)
	}
	return int32(n), nil
}

// healthProbe is an HTTP GET of path on the health port.
func healthProbe(path string, period, timeout, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("health")}},
		PeriodSeconds:    period,
		TimeoutSeconds:   timeout,
		FailureThreshold: failures,
	}
}

// container is tokend's init container, as the Component's pod.yaml
// (and tokend-proxy's) writes it.
func container(opts Options) corev1.Container {
	env := []corev1.EnvVar{
		{Name: "TOKEND_HEALTH_ADDR", Value: fmt.Sprintf(":%d", opts.HealthPort)},
		{Name: "TOKEND_TOKEN_FILE", Value: TokenFile},
		// Readable by every container given the mount, whatever its user:
		// the pod's fsGroup is left as it is.
		{Name: "TOKEND_FILE_MODE", Value: "0644"},
		{Name: "LOG_FORMAT", Value: "json"},
	}
	// Measured with hack/measure.sh: 15.5 MiB resident, 3 millicores; the
	// proxy adds about 75 KiB per idle client connection.
	cpu, mem, limit := "5m", "16Mi", "32Mi"
	if opts.Proxy != nil {
		env = slices.Insert(env, 0, corev1.EnvVar{Name: "TOKEND_PROXY_LISTEN", Value: opts.Proxy.Listen})
		cpu, mem, limit = "10m", "24Mi", "48Mi"
	}
	sc := &corev1.SecurityContext{
		RunAsNonRoot:             new(true),
		RunAsUser:                new(int64(nonRootID)),
		RunAsGroup:               new(int64(nonRootID)),
		AllowPrivilegeEscalation: new(false),
		ReadOnlyRootFilesystem:   new(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if opts.OpenShift {
		sc.RunAsUser, sc.RunAsGroup = nil, nil
	}
	return corev1.Container{
		Name:          ContainerName,
		Image:         opts.Image,
		Args:          []string{"run"},
		RestartPolicy: new(corev1.ContainerRestartPolicyAlways),
		EnvFrom:       []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: opts.SecretName}}}},
		Env:           env,
		Ports:         []corev1.ContainerPort{{Name: "health", ContainerPort: opts.HealthPort, Protocol: corev1.ProtocolTCP}},
		// 1s x 90 outlasts the first exchange's TOKEND_INIT_TIMEOUT (60s).
		StartupProbe:   healthProbe("/startupz", 1, 1, 90),
		LivenessProbe:  healthProbe("/livez", 10, 2, 3),
		ReadinessProbe: healthProbe("/readyz", 5, 2, 2),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(limit)},
		},
		SecurityContext: sc,
		VolumeMounts:    []corev1.VolumeMount{{Name: VolumeName, MountPath: TokenDir}},
	}
}
