package podspec_test

import (
	"fmt"

	"github.com/ambient-code/tokend/podspec"
	corev1 "k8s.io/api/core/v1"
)

// An operator adds tokend to the session pod it builds, before it creates
// the pod. The Secret "tokend", in the pod's namespace, holds tokend's
// settings (AMBIENT_CP_TOKEN_URL, SESSION_ID, AMBIENT_CP_TOKEN_PUBLIC_KEY).
func ExampleApply() {
	pod := corev1.Pod{Spec: corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Containers: []corev1.Container{
			{Name: "runner", Image: "registry.example/runner:2.3"},
			{Name: "mcp", Image: "registry.example/mcp-server:0.9"},
		},
	}}
	if err := podspec.Apply(&pod.Spec, podspec.Options{Readers: []string{"runner", "mcp"}}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("init containers:", pod.Spec.InitContainers[0].Name)
	for _, c := range pod.Spec.Containers {
		m := c.VolumeMounts[0]
		fmt.Printf("%s reads %s/token (read-only %v)\n", c.Name, m.MountPath, m.ReadOnly)
	}
	// Output:
	// init containers: tokend
	// runner reads /var/run/ambient/token (read-only true)
	// mcp reads /var/run/ambient/token (read-only true)
}
