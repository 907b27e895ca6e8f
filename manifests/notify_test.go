package manifests

import "testing"

// checkNotify: a tokend that signals a consumer (TOKEND_NOTIFY_SIGNAL) needs
// the pod's shared process namespace, and reads the pid file from a volume
// it mounts read-only and a consumer mounts writable.
func checkNotify(t *testing.T, w workload) {
	for _, c := range w.containers() {
		if _, ok := env(c, "TOKEND_NOTIFY_SIGNAL"); !isTokend(c) || !ok {
			continue
		}
		if p := w.spec.ShareProcessNamespace; p == nil || !*p {
			t.Errorf("%s: TOKEND_NOTIFY_SIGNAL without shareProcessNamespace: true", c.Name)
		}
		pid, _ := env(c, "TOKEND_NOTIFY_PID_FILE")
		m, _ := w.mountHolding(c, pid.Value)
		if m == nil || !m.ReadOnly {
			t.Errorf("%s: TOKEND_NOTIFY_PID_FILE %q is not in a read-only mount", c.Name, pid.Value)
			continue
		}
		if !writtenBy(w, m.Name) {
			t.Errorf("%s: no consumer mounts volume %s writable to write its pid", c.Name, m.Name)
		}
	}
}

func writtenBy(w workload, volume string) bool {
	for _, c := range w.containers() {
		if isTokend(c) {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.Name == volume && !m.ReadOnly {
				return true
			}
		}
	}
	return false
}
