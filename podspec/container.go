package podspec

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

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
