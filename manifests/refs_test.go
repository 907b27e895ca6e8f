package manifests

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// externalConfigMaps are provided by the platform, not by these manifests.
var externalConfigMaps = []string{"ambient-control-plane-ca"}

// podRef is one Secret or ConfigMap a pod spec names.
type podRef struct {
	kind, name string
	key        string // "" for a whole object (envFrom, a volume)
	from       string // where the pod names it, for the message
}

// podRefs lists every Secret and ConfigMap the pod spec names: env
// valueFrom, envFrom and volumes, in every container.
func podRefs(spec *corev1.PodSpec) []podRef {
	var refs []podRef
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		for _, e := range c.Env {
			switch f := e.ValueFrom; {
			case f == nil:
			case f.SecretKeyRef != nil:
				refs = append(refs, podRef{"Secret", f.SecretKeyRef.Name, f.SecretKeyRef.Key, c.Name + ": env " + e.Name})
			case f.ConfigMapKeyRef != nil:
				refs = append(refs, podRef{"ConfigMap", f.ConfigMapKeyRef.Name, f.ConfigMapKeyRef.Key, c.Name + ": env " + e.Name})
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				refs = append(refs, podRef{kind: "Secret", name: e.SecretRef.Name, from: c.Name + ": envFrom"})
			}
			if e.ConfigMapRef != nil {
				refs = append(refs, podRef{kind: "ConfigMap", name: e.ConfigMapRef.Name, from: c.Name + ": envFrom"})
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			refs = append(refs, podRef{kind: "Secret", name: v.Secret.SecretName, from: "volume " + v.Name})
		}
		if v.ConfigMap != nil && !slices.Contains(externalConfigMaps, v.ConfigMap.Name) {
			refs = append(refs, podRef{kind: "ConfigMap", name: v.ConfigMap.Name, from: "volume " + v.Name})
		}
	}
	return refs
}

// unresolvedRefs returns a message for each Secret or ConfigMap the pod
// names that is not rendered in the workload's namespace (a pod can name
// nothing outside it), or lacks the key the pod reads. A generated Secret
// whose namespace differs from the pod's keeps kustomize from rewriting the
// pod's reference to the Secret's hashed name: the pod would then wait in
// CreateContainerConfigError.
func unresolvedRefs(w workload) []string {
	var problems []string
	for _, r := range podRefs(w.spec) {
		o := w.find(r.kind, r.name)
		if o == nil {
			var elsewhere []string
			for _, o := range w.objs {
				if o.gvk.Kind == r.kind {
					elsewhere = append(elsewhere, fmt.Sprintf("%s in namespace %q", o.name, o.namespace))
				}
			}
			problems = append(problems, fmt.Sprintf("%s: %s %s is not rendered in the workload's namespace %q (rendered: %v)",
				r.from, r.kind, r.name, w.namespace, elsewhere))
			continue
		}
		if r.key == "" {
			continue
		}
		var has bool
		switch obj := o.obj.(type) {
		case *corev1.Secret:
			_, has = obj.Data[r.key]
		case *corev1.ConfigMap:
			_, has = obj.Data[r.key]
		}
		if !has {
			problems = append(problems, fmt.Sprintf("%s: %s %s has no key %s", r.from, r.kind, r.name, r.key))
		}
	}
	return problems
}
