package podspec

import (
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// check reports every reason Apply cannot change spec, at once.
func check(spec *corev1.PodSpec, opts Options) error {
	all := slices.Concat(spec.InitContainers, spec.Containers)
	names := make([]string, len(all))
	for i, c := range all {
		names[i] = c.Name
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("podspec: "+format, a...)) }
	if slices.Contains(names, ContainerName) {
		bad("the pod already has a container named %s: apply tokend once, to a pod spec without it", ContainerName)
	}
	if slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == VolumeName }) {
		bad("the pod already has a volume named %s: apply tokend once, or rename that volume", VolumeName)
	}
	for n, r := range opts.Readers {
		i := slices.Index(names, r)
		switch {
		case slices.Index(opts.Readers, r) < n:
			bad("Options.Readers names %s twice: name each container once", r)
		case r == ContainerName:
			bad("Options.Readers names %s itself: list the containers that read the token", ContainerName)
		case i < 0:
			bad("Options.Readers: the pod has no container %q: name one of %v", r, names)
		case slices.ContainsFunc(all[i].VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == TokenDir }):
			bad("Options.Readers: container %s already mounts a volume at %s: remove that mount", r, TokenDir)
		}
	}
	if opts.HealthPort < 1 || opts.HealthPort > 65535 {
		bad("Options.HealthPort %d is not a port: use 1 to 65535, or 0 for %d", opts.HealthPort, DefaultHealthPort)
	} else if c := declaring(all, opts.HealthPort); c != "" {
		bad("Options.HealthPort %d: container %s listens on it too, and all containers of a pod share one network namespace: choose another port", opts.HealthPort, c)
	}
	if opts.Proxy != nil {
		checkProxy(all, names, opts, bad)
	}
	return errors.Join(errs...)
}

// checkProxy reports through bad every reason opts.Proxy cannot be applied.
func checkProxy(all []corev1.Container, names []string, opts Options, bad func(format string, a ...any)) {
	port, err := portOf(opts.Proxy.Listen)
	switch {
	case err != nil:
		bad("Proxy.Listen %q: %v: use a loopback host:port, such as %s (tokend refuses any other)", opts.Proxy.Listen, err, DefaultProxyListen)
	case port == opts.HealthPort:
		bad("Proxy.Listen %q: the health port's: choose another port", opts.Proxy.Listen)
	case declaring(all, port) != "":
		bad("Proxy.Listen %q: container %s listens on port %d too: choose another port", opts.Proxy.Listen, declaring(all, port), port)
	}
	if len(opts.Proxy.Agents) == 0 {
		bad("Proxy.Agents is empty: name the containers that call the API through the proxy")
	}
	for _, a := range opts.Proxy.Agents {
		switch {
		case a == ContainerName || !slices.Contains(names, a):
			bad("Proxy.Agents: the pod has no container %q: name one of %v", a, names)
		case slices.Contains(opts.Readers, a):
			bad("Proxy.Agents: %s is also in Options.Readers: an agent must not see the token, remove it from Readers", a)
		}
	}
}

// declaring returns the name of a container that declares port, or "".
func declaring(all []corev1.Container, port int32) string {
	for _, c := range all {
		if slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == port }) {
			return c.Name
		}
	}
	return ""
}
