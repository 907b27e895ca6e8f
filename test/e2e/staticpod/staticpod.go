// Package staticpod turns a rendered kustomization of manifests/ into
// a static pod, a Pod that a standalone kubelet reads from its
// staticPodPath with no API server (scripts/e2e-kubelet.sh). It changes
// only what a static pod requires, and what stands in for the cluster
// around it, and says each change:
//
//  1. a Job, Deployment, StatefulSet or DaemonSet becomes a Pod of its
//     template (a static pod has no controller);
//  2. Secrets are inlined: envFrom and secretKeyRef become env values
//     (static pods may not reference Secrets);
//  3. serviceAccountName goes (static pods may not reference
//     ServiceAccounts);
//  4. hostNetwork: true (a node without CNI), and hostAliases that point
//     every in-cluster Service name in an env value at the node's loopback;
//  5. imagePullPolicy: Never (the images are loaded into the node, no
//     registry serves them);
//  6. placeholders ("REPLACE-...") get the stand-in control plane's public
//     key and a session id;
//  7. where tokend talks https, a CA file from the node, by hostPath, named
//     by TOKEND_CA_FILE (the stand-in API server's CA, which a cluster
//     would have trusted another way);
//  8. optionally the user and fsGroup an admission policy would assign
//     (OpenShift's restricted-v2).
//
// Changes are described by name, never by value: an inlined value may be a
// secret.
package staticpod

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Options are the values that stand in for the cluster around the pod.
type Options struct {
	// PublicKey replaces an AMBIENT_CP_TOKEN_PUBLIC_KEY placeholder: the
	// stand-in control plane's key, PEM.
	PublicKey string
	// SessionID replaces a SESSION_ID placeholder.
	SessionID string
	// CAFile is a CA bundle on the node that tokend trusts where it talks
	// https (TOKEND_CA_FILE); empty adds none.
	CAFile string
	// RunAsUser, when not nil, is the pod's runAsUser and fsGroup, as an
	// admission policy that assigns them (OpenShift's restricted-v2) would
	// set them.
	RunAsUser *int64
}

// tokendImage is the repository of tokend's image in the manifests.
const tokendImage = "ghcr.io/ambient-code/tokend"

// caMount is where tokend finds Options.CAFile.
const caMount = "/etc/tokend/e2e-ca.pem"

// loopback is the address the node's stand-ins listen on.
const loopback = "127.0.0.1"

// Render runs kustomize on dir and converts its one workload to a static
// pod; see Convert.
func Render(dir string, o Options) (*corev1.Pod, []string, error) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, nil, fmt.Errorf("staticpod: kustomize %s: %w", dir, err)
	}
	var docs [][]byte
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			return nil, nil, fmt.Errorf("staticpod: %s: %w", dir, err)
		}
		docs = append(docs, b)
	}
	pod, changes, err := Convert(docs, o)
	if err != nil {
		return nil, nil, fmt.Errorf("staticpod: %s: %w", dir, err)
	}
	return pod, changes, nil
}

// Convert turns rendered objects (one YAML document each) into a static
// pod: exactly one workload, the Secrets it names, and objects a static
// pod does without (a ServiceAccount). It returns the pod and one line per
// change. An object of another kind, a reference it cannot inline, or a
// placeholder it has no value for is an error that names it.
func Convert(docs [][]byte, o Options) (*corev1.Pod, []string, error) {
	c := converter{opts: o, secrets: map[string]map[string]string{}}
	var pod *corev1.Pod
	for _, doc := range docs {
		p, err := c.object(doc)
		if err != nil {
			return nil, nil, err
		}
		if p != nil && pod != nil {
			return nil, nil, fmt.Errorf("two workloads, %s and %s: render one per static pod", pod.Name, p.Name)
		}
		if p != nil {
			pod = p
		}
	}
	if pod == nil {
		return nil, nil, errors.New("no workload (Pod, Job, Deployment, StatefulSet or DaemonSet) rendered")
	}
	if err := c.pod(pod); err != nil {
		return nil, nil, err
	}
	return pod, c.changes, nil
}

type converter struct {
	opts    Options
	secrets map[string]map[string]string // name -> key -> value
	changes []string
	// caVolume: a container mounts Options.CAFile.
	caVolume bool
}

func (c *converter) note(format string, args ...any) {
	c.changes = append(c.changes, fmt.Sprintf(format, args...))
}

// object decodes one rendered object, keeps what the pod needs, and
// returns the pod when the object is a workload.
func (c *converter) object(doc []byte) (*corev1.Pod, error) {
	var meta struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return nil, err
	}
	what := meta.Kind + " " + meta.Metadata.Name
	if meta.Kind == "ServiceAccount" {
		c.note("%s: not created; a static pod may not reference a ServiceAccount", what)
		return nil, nil
	}
	typed, ok := map[string]any{"Secret": &corev1.Secret{}, "Pod": &corev1.Pod{}, "Job": &batchv1.Job{},
		"Deployment": &appsv1.Deployment{}, "StatefulSet": &appsv1.StatefulSet{}, "DaemonSet": &appsv1.DaemonSet{}}[meta.Kind]
	if !ok {
		return nil, fmt.Errorf("%s: a kind a static pod cannot use; add its handling to test/e2e/staticpod", what)
	}
	if err := decode(doc, typed); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	switch meta.Kind {
	case "Secret":
		s := typed.(*corev1.Secret)
		vals := map[string]string{}
		maps.Copy(vals, s.StringData)
		for k, v := range s.Data {
			vals[k] = string(v)
		}
		c.secrets[s.Name] = vals
		return nil, nil
	case "Pod":
		return typed.(*corev1.Pod), nil
	case "Job":
		c.note("%s: becomes Pod %s, its template; a static pod has no controller (backoffLimit and ttlSecondsAfterFinished go with the Job)", what, meta.Metadata.Name)
	default:
		c.note("%s: becomes Pod %s, one replica of its template; a static pod has no controller", what, meta.Metadata.Name)
	}
	// Every workload kind keeps its pod template at spec.template; decode
	// has checked the whole object already.
	var w struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(doc, &w); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	p := &corev1.Pod{ObjectMeta: w.Spec.Template.ObjectMeta, Spec: w.Spec.Template.Spec}
	p.APIVersion, p.Kind = "v1", "Pod"
	p.Name, p.Namespace = meta.Metadata.Name, meta.Metadata.Namespace
	return p, nil
}

// decode decodes one YAML document strictly: an unknown or duplicate field
// is an error, as with the API server's strict field validation.
func decode(doc []byte, into any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := json.UnmarshalStrict(j, into)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// pod applies the changes to the pod's spec.
func (c *converter) pod(p *corev1.Pod) error {
	s := &p.Spec
	if s.ServiceAccountName != "" || s.DeprecatedServiceAccount != "" {
		c.note("serviceAccountName %s: removed; a static pod may not reference a ServiceAccount", s.ServiceAccountName)
		s.ServiceAccountName, s.DeprecatedServiceAccount = "", ""
	}
	for _, v := range s.Volumes {
		switch {
		case v.Secret != nil:
			return fmt.Errorf("volume %s: a Secret volume, which a static pod may not use; inline the file as an env value (e.g. TOKEND_PUBLIC_KEY_FILE's key as AMBIENT_CP_TOKEN_PUBLIC_KEY)", v.Name)
		case v.ConfigMap != nil, v.Projected != nil:
			return fmt.Errorf("volume %s: a ConfigMap or projected volume, which a static pod may not use; use an emptyDir or a hostPath", v.Name)
		}
	}
	hosts := map[string]bool{}
	for _, list := range [][]corev1.Container{s.InitContainers, s.Containers} {
		for i := range list {
			if err := c.container(&list[i], hosts); err != nil {
				return fmt.Errorf("container %s: %w", list[i].Name, err)
			}
		}
	}
	if c.caVolume {
		s.Volumes = append(s.Volumes, corev1.Volume{Name: "e2e-ca", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: c.opts.CAFile, Type: new(corev1.HostPathFile)}}})
	}
	if !s.HostNetwork {
		s.HostNetwork = true
		c.note("hostNetwork: true; the node has no CNI, so the pod shares the node's network namespace")
	}
	if len(hosts) > 0 {
		names := slices.Sorted(maps.Keys(hosts))
		s.HostAliases = append(s.HostAliases, corev1.HostAlias{IP: loopback, Hostnames: names})
		c.note("hostAliases %s: %s; the node's stand-ins serve these Services on its loopback", loopback, strings.Join(names, ", "))
	}
	if c.opts.RunAsUser != nil {
		if s.SecurityContext == nil {
			s.SecurityContext = &corev1.PodSecurityContext{}
		}
		uid := *c.opts.RunAsUser
		s.SecurityContext.RunAsUser, s.SecurityContext.FSGroup = &uid, &uid
		c.note("securityContext runAsUser and fsGroup %d, as an admission policy that assigns them (OpenShift's restricted-v2) sets them", uid)
	}
	return nil
}

// container inlines the container's Secret references and placeholders,
// adds the CA where tokend talks https, pins the image, and collects the
// Service host names of its env values into hosts.
func (c *converter) container(ctr *corev1.Container, hosts map[string]bool) error {
	var env []corev1.EnvVar
	for _, from := range ctr.EnvFrom {
		if from.SecretRef == nil {
			return errors.New("envFrom a ConfigMap, which a static pod may not reference; render its values as env values")
		}
		vals, ok := c.secrets[from.SecretRef.Name]
		if !ok {
			return fmt.Errorf("envFrom Secret %s: not among the rendered objects; render it with the workload (a secretGenerator)", from.SecretRef.Name)
		}
		keys := slices.Sorted(maps.Keys(vals))
		for _, k := range keys {
			env = append(env, corev1.EnvVar{Name: from.Prefix + k, Value: vals[k]})
		}
		c.note("container %s: envFrom Secret %s becomes env values %s; a static pod may not reference a Secret", ctr.Name, from.SecretRef.Name, strings.Join(keys, ", "))
	}
	ctr.EnvFrom = nil
	for _, e := range ctr.Env {
		if from := e.ValueFrom; from != nil && from.SecretKeyRef == nil && from.FieldRef == nil && from.ResourceFieldRef == nil {
			return fmt.Errorf("env %s: a reference a static pod may not use; give the value", e.Name)
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			v, ok := c.secrets[ref.Name][ref.Key]
			if !ok {
				return fmt.Errorf("env %s: Secret %s key %s is not among the rendered objects", e.Name, ref.Name, ref.Key)
			}
			c.note("container %s: env %s from Secret %s key %s becomes its value; a static pod may not reference a Secret", ctr.Name, e.Name, ref.Name, ref.Key)
			e = corev1.EnvVar{Name: e.Name, Value: v}
		}
		env = append(env, e)
	}
	https := false
	for i := range env {
		e := &env[i]
		if strings.HasPrefix(e.Value, "REPLACE-") {
			v := map[string]string{"AMBIENT_CP_TOKEN_PUBLIC_KEY": c.opts.PublicKey, "SESSION_ID": c.opts.SessionID}[e.Name]
			if v == "" {
				return fmt.Errorf("env %s: a placeholder, and no value stands in for it; set Options.PublicKey or Options.SessionID, or give the value in the kustomization", e.Name)
			}
			e.Value = v
			c.note("container %s: env %s placeholder replaced by the stand-in's value", ctr.Name, e.Name)
		}
		if u, err := url.Parse(e.Value); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
			if h := u.Hostname(); strings.HasSuffix(h, ".svc") || strings.HasSuffix(h, ".svc.cluster.local") {
				hosts[h] = true
				https = https || u.Scheme == "https"
			}
		}
	}
	ctr.Env = env
	if https && c.opts.CAFile != "" && strings.HasPrefix(ctr.Image, tokendImage) {
		ctr.Env = append(ctr.Env, corev1.EnvVar{Name: "TOKEND_CA_FILE", Value: caMount})
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: "e2e-ca", MountPath: caMount, ReadOnly: true})
		c.caVolume = true
		c.note("container %s: TOKEND_CA_FILE %s, the stand-in API server's CA from the node (hostPath %s)", ctr.Name, caMount, c.opts.CAFile)
	}
	if ctr.ImagePullPolicy != corev1.PullNever {
		ctr.ImagePullPolicy = corev1.PullNever
		c.note("container %s: imagePullPolicy Never; image %s is loaded into the node, no registry serves it", ctr.Name, ctr.Image)
	}
	return nil
}

// OpenShiftUID is the user the e2e's OpenShift pod runs as: a user from
// the range OpenShift assigns a namespace (1000000000 and up), not the
// image's and not 65532.
const OpenShiftUID int64 = 1000680000

// E2EPod is one static pod of scripts/e2e-kubelet.sh: a kustomization of
// manifests/ and what stands in for its cluster.
type E2EPod struct {
	// Name is the pod's file name, without .yaml.
	Name string
	// Dir is the kustomization, relative to the manifests directory.
	Dir string
	// RunAsUser is the pod's Options.RunAsUser.
	RunAsUser *int64
}

// E2EPods are the pods scripts/e2e-kubelet.sh runs, in the order it runs
// them.
var E2EPods = []E2EPod{
	{Name: "mcp-job", Dir: "components/examples/mcp-job"},
	{Name: "runner-pod", Dir: "components/examples/runner-pod"},
	{Name: "credential-proxy", Dir: "overlays/credential-proxy"},
	{Name: "openshift", Dir: "components/examples/openshift", RunAsUser: new(OpenShiftUID)},
}
